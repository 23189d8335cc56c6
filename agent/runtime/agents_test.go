package runtime

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTwoAgentsSideBySide: two agents on one host, even with the same task
// ID, never touch each other's tasks through Kill, GC, Recover or Forget.
func TestTwoAgentsSideBySide(t *testing.T) {
	e := newTestEnv(t)
	a, evA := e.runtime("node-a")
	b, evB := e.runtime("node-b")
	spec := TaskSpec{ID: "same-id", Name: "web", Command: Command{Shell: "exec sleep 30"}}
	infoA := launch(t, a, spec)
	infoB := launch(t, b, spec)
	if infoA.Sandbox == infoB.Sandbox {
		t.Fatalf("both agents use sandbox %s", infoA.Sandbox)
	}
	// b also has a finished, forgotten task whose sandbox a's GC must not see.
	launch(t, b, TaskSpec{ID: "done", Name: "done", Command: Command{Shell: "true"}})
	evB.wait(t, "done", EventExited, 10*time.Second)
	if err := b.Forget("done"); err != nil {
		t.Fatal(err)
	}
	doneSandbox := filepath.Join(e.workDir, "node-b", "done")

	if err := a.Kill("same-id", -1); err != nil {
		t.Fatal(err)
	}
	evA.wait(t, "same-id", EventExited, 10*time.Second)
	if err := a.Forget("same-id"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GC(0); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Recover(); err != nil || len(got) != 0 {
		t.Errorf("a.Recover: %+v %v", got, err)
	}

	if !alive(infoB.PID) {
		t.Fatal("b's task died")
	}
	if evB.has("same-id", EventExited) {
		t.Error("b saw its task exit")
	}
	for _, d := range infoB.Cgroups {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("b's cgroup: %v", err)
		}
	}
	for _, p := range []string{infoB.Sandbox, doneSandbox} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("b's sandbox: %v", err)
		}
	}
	if _, err := os.Stat(infoA.Sandbox); !os.IsNotExist(err) {
		t.Errorf("a's GC(0) kept its forgotten sandbox: %v", err)
	}
	// b's own GC with a long retention keeps the forgotten sandbox; with
	// zero retention it goes, and the running task's stays.
	if res, _ := b.GC(time.Hour); len(res.Sandboxes) != 0 {
		t.Errorf("GC(1h) removed %v", res.Sandboxes)
	}
	res, err := b.GC(0)
	if err != nil || len(res.Sandboxes) != 1 || res.Sandboxes[0] != doneSandbox {
		t.Errorf("b.GC(0) = %+v, %v; want only %s", res, err, doneSandbox)
	}
	if _, err := os.Stat(infoB.Sandbox); err != nil {
		t.Errorf("GC removed a running task's sandbox: %v", err)
	}
}
