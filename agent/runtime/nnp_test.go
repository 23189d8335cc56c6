package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// noNewPrivsLine returns the NoNewPrivs: line of a /proc status file.
func noNewPrivsLine(status string) string {
	for _, line := range strings.Split(status, "\n") {
		if strings.HasPrefix(line, "NoNewPrivs:") {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	return ""
}

// TestNoNewPrivs: tasks and their command health checks run with
// no_new_privs set, as the agent's user and as another one, on cgroup v1
// (through the shim) and v2 (cloned into the cgroup).
func TestNoNewPrivs(t *testing.T) {
	// The bit is inherited: if this process had it, the test proves nothing.
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	if got := noNewPrivsLine(string(status)); got != "NoNewPrivs: 0" {
		t.Skipf("the test process itself has %q", got)
	}
	t.Run("default", func(t *testing.T) { checkNoNewPrivs(t, newTestEnv(t)) })
	t.Run("v2", func(t *testing.T) { checkNoNewPrivs(t, v2TestEnv(t)) })
}

func checkNoNewPrivs(t *testing.T, e *testEnv) {
	// On v2 the task changes to its sandbox as its own user: the test's
	// temp dir (0700) must let it through, as the node's work dir does.
	if err := os.Chmod(filepath.Dir(e.workDir), 0o711); err != nil {
		t.Fatal(err)
	}
	rt, ev := e.runtime("node-nnp")
	const grep = `grep '^NoNewPrivs:' /proc/self/status`
	for _, user := range []string{"", "nobody"} {
		id := "nnp-" + user
		if user == "" {
			id = "nnp-agent-user"
		}
		// The task prints its line, then waits (up to 10 s) for the
		// health check to leave its own in the sandbox.
		info := launch(t, rt, TaskSpec{ID: id, Name: id, User: user,
			Command: Command{Shell: grep + `; i=0; while [ ! -s health ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done`},
			HealthCheck: &HealthCheck{
				Command:  &Command{Shell: grep + ` > health.tmp && mv health.tmp health`},
				Interval: 100 * time.Millisecond, Timeout: 2 * time.Second,
			}})
		ex := ev.wait(t, id, EventExited, 20*time.Second).Exit
		if !ex.Succeeded() {
			t.Fatalf("%s: exit %+v, stderr %q", id, *ex, sandboxFile(t, info, "stderr"))
		}
		if got := noNewPrivsLine(sandboxFile(t, info, "stdout")); got != "NoNewPrivs: 1" {
			t.Errorf("%s: task has %q, want NoNewPrivs: 1", id, got)
		}
		health, err := os.ReadFile(filepath.Join(info.Sandbox, "health"))
		if err != nil {
			t.Fatalf("%s: the health check left no output: %v", id, err)
		}
		if got := noNewPrivsLine(string(health)); got != "NoNewPrivs: 1" {
			t.Errorf("%s: health check has %q, want NoNewPrivs: 1", id, got)
		}
		if err := rt.Forget(id); err != nil {
			t.Error(err)
		}
	}
}
