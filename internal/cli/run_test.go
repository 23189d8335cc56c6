package cli

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/pkg/sdk"
)

// execute runs the agora command with args and returns its error and output.
func execute(args ...string) (string, error) {
	root := NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestRunArgumentErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "agora run needs a command: agora run [flags] -- CMD [ARGS...]"},
		{[]string{"run", "--", ""}, "the command must not be empty"},
		{[]string{"run", "--cpus", "lots", "--", "true"}, `invalid cpus "lots"`},
		{[]string{"run", "--mem", "-1Gi", "--", "true"}, `invalid mem "-1Gi": must not be negative`},
		{[]string{"run", "--cpus", "0", "--mem", "0", "--", "true"}, "a task needs some cpus or mem"},
		{[]string{"run", "--framework", "", "--", "true"}, "--framework must not be empty"},
		{[]string{"run", "--timeout", "-1s", "--", "true"}, "--timeout must not be negative"},
		{[]string{"run", "--name", "UPPER", "--", "true"}, `task name "UPPER" is not a valid object name`},
		{[]string{"run", "--name", "UPPER", "--", "true"}, "change --name"},
		{[]string{"run", "--framework", "Bad_Name", "--", "true"}, `--framework "Bad_Name" is not a valid object name`},
		{[]string{"run", "--framework", strings.Repeat("f", 250), "--", "true"}, "change --framework"},
		{[]string{"local", "--port", "99999"}, "--port must be between 1 and 65535, or 0 to pick a free one; got 99999"},
		{[]string{"logs"}, "agora logs needs exactly one task name, got 0"},
		{[]string{"logs", "a", "b"}, "agora logs needs exactly one task name, got 2"},
		{[]string{"top", "--interval", "0s", "--once"}, "--interval must be positive"},
		{[]string{"top", "extra"}, `unknown command "extra"`},
	}
	for _, c := range cases {
		_, err := execute(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("agora %s: err = %v, want it to say %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func TestRunTaskInfo(t *testing.T) {
	o := &runOptions{cpus: "0.5", mem: "64Mi", framework: "fw"}
	ti, err := o.taskInfo([]string{"echo $HOME"})
	if err != nil {
		t.Fatal(err)
	}
	if ti.Command.Shell == nil || *ti.Command.Shell != "echo $HOME" || !strings.HasPrefix(ti.Name, "fw-") {
		t.Errorf("one argument: %+v, want a shell command and a generated name", ti)
	}
	if ti.Resources.CPUs.MilliValue() != 500 || ti.Resources.Mem.Value() != 64<<20 {
		t.Errorf("resources = %+v", ti.Resources)
	}
	o.name = "mine"
	ti, _ = o.taskInfo([]string{"sleep", "10"})
	if len(ti.Command.Argv) != 2 || ti.Command.Shell != nil || ti.Name != "mine" {
		t.Errorf("several arguments: %+v, want an argv and the given name", ti)
	}
}

func ptr[T any](v T) *T { return &v }

func TestTaskExitAndStateLine(t *testing.T) {
	task := b.Task("ns", "t1", "fw").OfferRef("o", "u", "node-1").Obj()
	cases := []struct {
		state  agorav1.TaskState
		code   *int32
		reason string
		want   int // -1: nil error
		line   string
	}{
		{agorav1.TaskFinished, ptr(int32(0)), "", -1, "t1 TASK_FINISHED on node-1 exit 0"},
		{agorav1.TaskFailed, ptr(int32(3)), "REASON_COMMAND_EXECUTOR_FAILED", 3, "t1 TASK_FAILED on node-1 exit 3 REASON_COMMAND_EXECUTOR_FAILED"},
		{agorav1.TaskKilled, ptr(int32(-1)), "", 1, "t1 TASK_KILLED on node-1 exit -1"},
		{agorav1.TaskLost, nil, "REASON_AGENT_REMOVED", 1, "t1 TASK_LOST on node-1 REASON_AGENT_REMOVED"},
	}
	for _, c := range cases {
		task.Status = agorav1.TaskStatus{State: c.state, ExitCode: c.code, Reason: c.reason}
		err := taskExit(task)
		var ec exitCodeError
		switch {
		case c.want < 0 && err != nil:
			t.Errorf("%s: err = %v, want nil", c.state, err)
		case c.want >= 0 && (!errors.As(err, &ec) || ec.code != c.want):
			t.Errorf("%s: err = %v, want exit code %d", c.state, err, c.want)
		}
		if got := stateLine(task); got != c.line {
			t.Errorf("stateLine = %q, want %q", got, c.line)
		}
	}
	task.Status = agorav1.TaskStatus{State: agorav1.TaskError, Reason: "REASON_TASK_INVALID", Message: "does not fit"}
	if got := stateLine(task); !strings.HasSuffix(got, "REASON_TASK_INVALID: does not fit") {
		t.Errorf("stateLine = %q, want the reason and message", got)
	}
}

// TestNoKubeconfigHint: every command that needs a cluster, run without a
// kubeconfig, fails with the SDK's ErrNoKubeconfig, for which the tool
// prints how to point it at one (agora local's included).
func TestNoKubeconfigHint(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	t.Setenv("HOME", t.TempDir())
	for _, args := range [][]string{{"run", "--", "true"}, {"top", "--once"}, {"logs", "t"}} {
		_, err := execute(args...)
		if !errors.Is(err, sdk.ErrNoKubeconfig) {
			t.Errorf("agora %s without a kubeconfig: %v, want ErrNoKubeconfig", strings.Join(args, " "), err)
			continue
		}
		if h := errorHint(err); !strings.Contains(h, "--kubeconfig") || !strings.Contains(h, "export KUBECONFIG=$PWD/.agora-local/admin.kubeconfig") {
			t.Errorf("hint for %v = %q", err, h)
		}
	}
	if h := errorHint(errors.New("other")); h != "" {
		t.Errorf("hint for an unrelated error = %q, want none", h)
	}
}

// TestOfferedCPUsMem: while no offer fits, run shows what the last one had
// of cpus and mem (absent kinds as 0), not only that it was too small.
func TestOfferedCPUsMem(t *testing.T) {
	cases := []struct {
		res  agorav1.Resources
		want string
	}{
		{agorav1.Resources{Mem: b.Q("3731Mi")}, "cpus 0, mem 3731Mi"},
		{b.Res("66m", "2929Mi"), "cpus 66m, mem 2929Mi"},
		{agorav1.Resources{}, "cpus 0, mem 0"},
	}
	for _, c := range cases {
		offer := b.Offer("ns", "o", "fw", "node-1").Resources(c.res).Obj()
		if got := offeredCPUsMem(offer); got != c.want {
			t.Errorf("offeredCPUsMem(%+v) = %q, want %q", c.res, got, c.want)
		}
	}
}
