package batch

import (
	"strings"
	"testing"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

func code(c int32) *int32 { return &c }

func TestSummaryPrint(t *testing.T) {
	s := Summary{Results: []Result{
		{Command: "true", Task: "b-0", State: agorav1.TaskFinished, ExitCode: code(0)},
		{Command: "true", Task: "b-1", State: agorav1.TaskFinished, ExitCode: code(0)},
		{Command: "exit 3", Task: "b-2", State: agorav1.TaskFailed, ExitCode: code(3), Reason: "REASON_COMMAND_EXECUTOR_FAILED"},
		{Command: "sleep 9", Task: "b-3", State: agorav1.TaskLost, Reason: "REASON_AGENT_REMOVED"},
		{Command: "never", Task: ""},
	}}
	var out strings.Builder
	s.Print(&out)
	want := `5 tasks: unfinished 1, TASK_FAILED 1, TASK_FINISHED 2, TASK_LOST 1
exit codes: 0×2, 3×1
failed:
  b-2  TASK_FAILED  exit 3  REASON_COMMAND_EXECUTOR_FAILED  "exit 3"
  b-3  TASK_LOST    exit -  REASON_AGENT_REMOVED            "sleep 9"
       unfinished   exit -                                  "never"
`
	if out.String() != want {
		t.Errorf("summary:\n%s\nwant:\n%s", out.String(), want)
	}
	if s.Failed() != 3 {
		t.Errorf("Failed() = %d, want 3", s.Failed())
	}
}
