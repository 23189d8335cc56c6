package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// v2TestEnv uses a real cgroup2 hierarchy: /sys/fs/cgroup on v2 hosts, or
// the side hierarchy of a hybrid host (no controllers, but real clone into
// cgroup, cgroup.procs, cgroup.kill and cpu.stat).
func v2TestEnv(t *testing.T) *testEnv {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	l, err := DetectLayout()
	if err != nil {
		t.Skipf("no usable cgroup layout: %v", err)
	}
	if l.Version == 2 {
		return newTestEnvWithLayout(t, l)
	}
	if l.Unified == "" {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	data, err := os.ReadFile(filepath.Join(l.Unified, "cgroup.controllers"))
	if err != nil {
		t.Skipf("cgroup2 side hierarchy unreadable: %v", err)
	}
	v2 := &Layout{Version: 2, Unified: l.Unified, Controllers: map[string]string{}}
	for _, c := range strings.Fields(string(data)) {
		v2.Controllers[c] = l.Unified
	}
	return newTestEnvWithLayout(t, v2)
}

// TestV2RealHierarchy: on a real cgroup2 hierarchy, the supervisor and the
// task are cloned into their cgroups, exit codes and cpu usage come back,
// and Kill empties the cgroup (through cgroup.kill).
func TestV2RealHierarchy(t *testing.T) {
	e := v2TestEnv(t)
	rt, ev := e.runtime("node-v2")
	info := launch(t, rt, TaskSpec{ID: "v2-exit", Name: "v2-exit",
		Command: Command{Shell: `cat /proc/self/cgroup > cg.txt; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exit 5`}})
	ex := ev.wait(t, "v2-exit", EventExited, 15*time.Second).Exit
	if ex.ExitCode != 5 || ex.Usage.CPUSeconds <= 0 {
		t.Errorf("exit = %+v, want code 5 and some cpu time", *ex)
	}
	want := fmt.Sprintf("0::/%s/node-v2/%s/v2-exit\n", e.root, taskCgroupDir)
	if cg := sandboxFile(t, info, "cg.txt"); !strings.Contains(cg, want) {
		t.Errorf("task's /proc/self/cgroup:\n%s\nwant line %q", cg, want)
	}

	info = launch(t, rt, TaskSpec{ID: "v2-kill", Name: "v2-kill",
		Command: Command{Shell: `trap '' TERM; sleep 30 & sleep 30 & wait`}})
	dir := info.Cgroups[""]
	waitFor(t, "three processes", 5*time.Second, func() bool {
		pids, _ := readProcs(dir)
		return len(pids) == 3
	})
	rec, _ := readRecord(filepath.Join(e.ckDir, "node-v2", "v2-kill"))
	supCg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", rec.SupervisorPID))
	if !strings.Contains(string(supCg), fmt.Sprintf("0::/%s/node-v2/%s/v2-kill\n", e.root, supervisorCgroupDir)) {
		t.Errorf("supervisor's cgroup:\n%s", supCg)
	}
	if err := rt.Kill("v2-kill", 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ex = ev.wait(t, "v2-kill", EventExited, 10*time.Second).Exit
	if ex.Signal != int(syscall.SIGKILL) || !ex.Killed {
		t.Errorf("exit = %+v, want SIGKILL", *ex)
	}
	if pids, _ := readProcs(dir); len(pids) != 0 {
		t.Errorf("left in cgroup: %v", pids)
	}
	for _, id := range []string{"v2-exit", "v2-kill"} {
		if err := rt.Forget(id); err != nil {
			t.Error(err)
		}
	}
}
