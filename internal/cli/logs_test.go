package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
)

func TestLogPath(t *testing.T) {
	task := b.Task("ns", "t1", "fw").Obj()
	if _, err := logPath(task, false); err == nil || !strings.Contains(err.Error(), "has no sandbox yet (not bound yet): it has not started") {
		t.Errorf("unbound task: %v", err)
	}
	task.Status.State = agorav1.TaskStaging
	if _, err := logPath(task, false); err == nil || !strings.Contains(err.Error(), "(TASK_STAGING)") {
		t.Errorf("staging task: %v", err)
	}
	task.Status.Sandbox = "sim://ns/t1"
	if _, err := logPath(task, false); err == nil || !strings.Contains(err.Error(), "simulated agent") {
		t.Errorf("simulated sandbox: %v", err)
	}
	task.Status.Sandbox = "/var/lib/agora/sandboxes/t1"
	if p, _ := logPath(task, false); p != "/var/lib/agora/sandboxes/t1/stdout" {
		t.Errorf("stdout path = %s", p)
	}
	if p, _ := logPath(task, true); p != "/var/lib/agora/sandboxes/t1/stderr" {
		t.Errorf("stderr path = %s", p)
	}
}

func TestFollowReadsUntilTheTaskEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	if err := os.WriteFile(path, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	polls := 0
	var out strings.Builder
	err = follow(context.Background(), f, &out, time.Millisecond, func() (bool, error) {
		polls++
		if polls == 2 {
			// The task writes more and ends between two polls.
			w, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			w.WriteString("two\n")
			w.Close()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\ntwo\n" {
		t.Errorf("followed %q, want both lines", out.String())
	}
}
