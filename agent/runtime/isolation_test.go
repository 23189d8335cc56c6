package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// v1Only skips tests that read v1 interface files.
func v1Only(t *testing.T, e *testEnv) {
	if e.layout.Version != 1 {
		t.Skipf("reads cgroup v1 files; this host is %s", e.layout)
	}
}

// TestOOMKill: a memory hog is OOM-killed at its limit and reported with
// the memory reason.
func TestOOMKill(t *testing.T) {
	e := newTestEnv(t)
	rt, ev := e.runtime("node-a")
	// tail buffers an endless "line" of zeros: memory grows until killed.
	launch(t, rt, TaskSpec{ID: "hog", Name: "hog", Command: Command{Argv: []string{"tail", "/dev/zero"}},
		Resources: Resources{MemBytes: 32 << 20}})
	ex := ev.wait(t, "hog", EventExited, 20*time.Second).Exit
	if !ex.OOM || ex.Reason != ReasonMemoryLimit || ex.Signal != int(syscall.SIGKILL) || ex.Succeeded() {
		t.Fatalf("exit = %+v, want OOM kill with reason %s", *ex, ReasonMemoryLimit)
	}
	if ex.Usage.PeakMemBytes < 30<<20 {
		t.Errorf("peak memory %d, want about the 32 MiB limit", ex.Usage.PeakMemBytes)
	}
}

// TestCFSQuotaThrottles: a busy loop with a 0.2 cpu quota is throttled.
func TestCFSQuotaThrottles(t *testing.T) {
	e := newTestEnv(t)
	v1Only(t, e)
	rt, ev := e.runtime("node-a")
	info := launch(t, rt, TaskSpec{ID: "spin", Name: "spin", Command: Command{Shell: "while :; do :; done"},
		Resources: Resources{MilliCPUs: 200, CFSQuota: true}})
	cpu := info.Cgroups["cpu"]
	waitFor(t, "nr_throttled > 0", 5*time.Second, func() bool {
		return statKey(t, cpu, "cpu.stat", "nr_throttled") > 0
	})
	time.Sleep(500 * time.Millisecond)
	if err := rt.Kill("spin", -1); err != nil {
		t.Fatal(err)
	}
	ex := ev.wait(t, "spin", EventExited, 10*time.Second).Exit
	elapsed := time.Since(info.StartedAt).Seconds()
	if ex.Usage.CPUSeconds <= 0 || ex.Usage.CPUSeconds > 0.2*elapsed+0.1 {
		t.Errorf("cpu seconds %.3f over %.2fs, want > 0 and about 0.2 cpu", ex.Usage.CPUSeconds, elapsed)
	}
}

// TestPidsLimitStopsForkBomb: a fork bomb stays at the pids limit, and
// Kill (freezing first) ends all of it.
func TestPidsLimitStopsForkBomb(t *testing.T) {
	e := newTestEnv(t)
	v1Only(t, e)
	rt, ev := e.runtime("node-a")
	// The cpu quota keeps the bomb polite on a shared machine.
	info := launch(t, rt, TaskSpec{ID: "bomb", Name: "bomb", Command: Command{Shell: `b() { b & b; }; b`},
		Resources: Resources{Pids: 16, MilliCPUs: 300, CFSQuota: true}})
	pids := info.Cgroups["pids"]
	waitFor(t, "pids limit hit", 10*time.Second, func() bool {
		return statKey(t, pids, "pids.events", "max") > 0
	})
	if got := readCgInt(t, pids, "pids.max"); got != 16 {
		t.Errorf("pids.max = %d", got)
	}
	for range 10 {
		if n := readCgInt(t, pids, "pids.current"); n > 16 {
			t.Fatalf("pids.current = %d above the limit", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := rt.Kill("bomb", -1); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, "bomb", EventExited, 20*time.Second)
	if procs := readCg(t, pids, "cgroup.procs"); procs != "" {
		t.Errorf("processes left after kill: %s", procs)
	}
	// pids.current drops once init has reaped the orphans.
	waitFor(t, "pids.current = 0", 5*time.Second, func() bool { return readCgInt(t, pids, "pids.current") == 0 })
}

// TestKillGrace: a task that traps SIGTERM and forks children that ignore
// it gets SIGTERM, then, after the 2 s grace, SIGKILL for all of them.
func TestKillGrace(t *testing.T) {
	e := newTestEnv(t)
	rt, ev := e.runtime("node-a")
	script := `
trap 'echo main-term >> term.log' TERM
for i in 1 2; do
  sh -c 'trap "echo child-term >> term.log" TERM; echo $$ >> children; while :; do sleep 0.1; done' &
done
touch ready
while :; do sleep 0.1; done`
	info := launch(t, rt, TaskSpec{ID: "stubborn", Name: "stubborn", Command: Command{Shell: script}})
	waitFor(t, "children started", 5*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(info.Sandbox, "children"))
		return strings.Count(string(b), "\n") == 2
	})
	var children []int
	for _, f := range strings.Fields(sandboxFile(t, info, "children")) {
		n, _ := strconv.Atoi(f)
		children = append(children, n)
	}
	start := time.Now()
	if err := rt.Kill("stubborn", 2*time.Second); err != nil {
		t.Fatal(err)
	}
	ex := ev.wait(t, "stubborn", EventExited, 15*time.Second).Exit
	took := time.Since(start)
	if took < 2*time.Second || took > 8*time.Second {
		t.Errorf("kill took %s, want just over the 2s grace", took)
	}
	if ex.Signal != int(syscall.SIGKILL) || !ex.Killed || ex.Reason != ReasonKilled {
		t.Errorf("exit = %+v, want SIGKILL and killed", *ex)
	}
	log := sandboxFile(t, info, "term.log")
	if strings.Count(log, "main-term") < 1 || strings.Count(log, "child-term") < 2 {
		t.Errorf("SIGTERM did not reach every process; term.log:\n%s", log)
	}
	for _, pid := range children {
		waitFor(t, "child "+strconv.Itoa(pid)+" to die", 2*time.Second, func() bool { return !alive(pid) })
	}
	if pids, _ := newCgroup(e.layout, filepath.Join(e.root, "node-a", taskCgroupDir, "stubborn")).Procs(); len(pids) > 0 {
		t.Errorf("processes left in the cgroup: %v", pids)
	}
}
