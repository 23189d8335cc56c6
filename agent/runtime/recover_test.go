package runtime

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startAgentHelper runs the test binary as an "agent" that launches tasks,
// and returns once they run.
func startAgentHelper(t *testing.T, e *testEnv, agent string, tasks []TaskSpec) *exec.Cmd {
	t.Helper()
	cfg, err := json.Marshal(helperConfig{Agent: agent, CgroupRoot: e.root, WorkDir: e.workDir, CheckpointDir: e.ckDir, Tasks: tasks})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=agent", helperEnv+"_CONFIG="+string(cfg))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("agent helper: %q %v", line, err)
	}
	return cmd
}

// TestRecoverAfterAgentSIGKILL: the agent process is SIGKILLed while three
// tasks run. One task exits while no agent runs; a new Runtime on the same
// checkpoints reports it with its exit code, reattaches to the other two,
// and reports their exit codes when they finish.
func TestRecoverAfterAgentSIGKILL(t *testing.T) {
	e := newTestEnv(t)
	agent := startAgentHelper(t, e, "node-a", []TaskSpec{
		{ID: "early", Name: "early", Command: Command{Shell: "sleep 0.3; exit 3"}},
		{ID: "late-ok", Name: "late-ok", Command: Command{Shell: "sleep 2.5; exit 0"}},
		{ID: "late-bad", Name: "late-bad", Command: Command{Shell: "sleep 3; exit 7"}, Resources: Resources{MemBytes: 32 << 20}},
	})
	if err := agent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = agent.Wait()
	// "early" ends while no agent runs.
	waitFor(t, "early's supervisor to record its exit", 5*time.Second, func() bool {
		rec, _ := readRecord(filepath.Join(e.ckDir, "node-a", "early"))
		return rec != nil && rec.Exit != nil
	})

	rt, ev := e.runtime("node-a")
	got, err := rt.Recover()
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]RecoveredTask{}
	for _, r := range got {
		states[r.ID] = r
	}
	if len(got) != 3 {
		t.Fatalf("recovered %d tasks, want 3: %+v", len(got), got)
	}
	if r := states["early"]; r.State != StateExited || r.Exit == nil || r.Exit.ExitCode != 3 {
		t.Errorf("early: %+v, want exited with code 3", r)
	}
	for _, id := range []string{"late-ok", "late-bad"} {
		r := states[id]
		if r.State != StateRunning || r.PID == 0 || !alive(r.PID) {
			t.Errorf("%s: %+v, want running", id, r)
		}
	}
	// A second Recover does not report tracked tasks twice.
	if again, _ := rt.Recover(); len(again) != 1 || again[0].ID != "early" {
		t.Errorf("second Recover: %+v", again)
	}
	if ex := ev.wait(t, "late-ok", EventExited, 10*time.Second).Exit; ex.ExitCode != 0 || !ex.Succeeded() {
		t.Errorf("late-ok: %+v", *ex)
	}
	if ex := ev.wait(t, "late-bad", EventExited, 10*time.Second).Exit; ex.ExitCode != 7 || ex.Usage.PeakMemBytes <= 0 {
		t.Errorf("late-bad: %+v", *ex)
	}
	for _, id := range []string{"early", "late-ok", "late-bad"} {
		if err := rt.Forget(id); err != nil {
			t.Errorf("Forget %s: %v", id, err)
		}
	}
	if left, _ := rt.Recover(); len(left) != 0 {
		t.Errorf("checkpoints left after Forget: %+v", left)
	}
}

// TestRecoverPendingKill: a kill requested just before the agent dies is
// finished by the next agent, and the task is reported as killed.
func TestRecoverPendingKill(t *testing.T) {
	e := newTestEnv(t)
	rt1, _ := e.runtime("node-a")
	info := launch(t, rt1, TaskSpec{ID: "victim", Name: "victim", Command: Command{Shell: `trap '' TERM; touch ready; while :; do sleep 0.1; done`}})
	waitFor(t, "the trap", 5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(info.Sandbox, "ready"))
		return err == nil
	})
	if err := rt1.Kill("victim", time.Second); err != nil {
		t.Fatal(err)
	}
	rt1.Close() // the agent goes away during the grace period

	rt2, ev := e.runtime("node-a")
	got, err := rt2.Recover()
	if err != nil || len(got) != 1 || got[0].State != StateRunning {
		t.Fatalf("Recover: %+v %v", got, err)
	}
	ex := ev.wait(t, "victim", EventExited, 10*time.Second).Exit
	if !ex.Killed || ex.Signal != int(syscall.SIGKILL) {
		t.Errorf("exit = %+v, want killed by SIGKILL", *ex)
	}
}

// TestRecoverLost: a supervisor that dies without a status makes its task
// Lost (and its processes are killed); a checkpoint from another boot is
// Lost too.
func TestRecoverLost(t *testing.T) {
	e := newTestEnv(t)
	rt1, _ := e.runtime("node-a")
	info := launch(t, rt1, TaskSpec{ID: "orphan", Name: "orphan", Command: Command{Shell: "exec sleep 30"}})
	launch(t, rt1, TaskSpec{ID: "rebooted", Name: "rebooted", Command: Command{Shell: "exit 0"}})
	rt1.Close()
	rec, err := readRecord(filepath.Join(e.ckDir, "node-a", "orphan"))
	if err != nil || rec == nil {
		t.Fatal(rec, err)
	}
	if err := syscall.Kill(rec.SupervisorPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "supervisor gone", 5*time.Second, func() bool { return !alive(rec.SupervisorPID) })
	// Fake a checkpoint from an earlier boot.
	rbDir := filepath.Join(e.ckDir, "node-a", "rebooted")
	waitFor(t, "rebooted's exit", 5*time.Second, func() bool {
		r, _ := readRecord(rbDir)
		return r != nil && r.Exit != nil
	})
	rb, _ := readRecord(rbDir)
	rb.BootID = "00000000-0000-0000-0000-000000000000"
	if err := writeJSONAtomic(filepath.Join(rbDir, recordFile), rb); err != nil {
		t.Fatal(err)
	}

	rt2, _ := e.runtime("node-a")
	got, err := rt2.Recover()
	if err != nil || len(got) != 2 {
		t.Fatalf("Recover: %+v %v", got, err)
	}
	for _, r := range got {
		want := map[string]string{"orphan": ReasonSupervisorGone, "rebooted": ReasonHostRebooted}[r.ID]
		if r.State != StateLost || r.Exit == nil || r.Exit.Reason != want {
			t.Errorf("%s: %+v, want lost with %s", r.ID, r, want)
		}
	}
	// A killed process leaves cgroup.procs as it starts exiting, a moment
	// before it is a zombie.
	waitFor(t, "the orphaned task to die", 2*time.Second, func() bool { return !alive(info.PID) })
}

// TestCloseRemovesEmptyCgroups: an agent that stops with no task left
// leaves no cgroup behind; one that stops with a task running keeps that
// task's cgroups (the task keeps running) and removes nothing else.
func TestCloseRemovesEmptyCgroups(t *testing.T) {
	e := newTestEnv(t)
	agentDirs := func(agent string) []string {
		var dirs []string
		for _, sub := range []string{"task", "supervisor", ""} {
			for _, d := range newCgroup(e.layout, filepath.Join(e.root, agent, sub)).Paths() {
				dirs = append(dirs, d)
			}
		}
		return dirs
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	done, ev := e.runtime("node-done")
	launch(t, done, TaskSpec{ID: "quick", Name: "quick", Command: Command{Shell: "true"}})
	ev.wait(t, "quick", EventExited, 10*time.Second)
	if err := done.Forget("quick"); err != nil {
		t.Fatal(err)
	}
	before := agentDirs("node-done")
	if !slices.ContainsFunc(before, exists) {
		t.Fatalf("no cgroup of node-done exists before Close: %v", before)
	}
	done.Close()
	for _, d := range before {
		if exists(d) {
			t.Errorf("%s is left after Close with no task", d)
		}
	}

	busy, _ := e.runtime("node-busy")
	info := launch(t, busy, TaskSpec{ID: "long", Name: "long", Command: Command{Shell: "sleep 30"}})
	busy.Close()
	if !alive(info.PID) {
		t.Fatalf("task died with its agent's Close")
	}
	for _, d := range newCgroup(e.layout, filepath.Join(e.root, "node-busy", "task", "long")).Paths() {
		if !exists(d) {
			t.Errorf("running task's cgroup %s was removed", d)
		}
	}
}
