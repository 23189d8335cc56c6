package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLimitsEnvUser launches a task with every limit and checks, from
// cgroupfs, the limits, that the task and its supervisor are where they
// belong, the environment, and the unprivileged user.
func TestLimitsEnvUser(t *testing.T) {
	e := newTestEnv(t)
	rt, ev := e.runtime("node-a")
	spec := TaskSpec{
		ID:      "limits-1",
		Name:    "limits",
		Command: Command{Shell: `cat /proc/self/cgroup > cg.txt; env > env.txt; id -u > uid.txt; touch ready; exec sleep 30`},
		Env:     map[string]string{"FOO": "bar"},
		User:    "nobody",
		Resources: Resources{
			MilliCPUs: 1500, MemBytes: 64 << 20, Pids: 32, CFSQuota: true,
		},
		Ports: []uint32{31000, 31005},
	}
	info := launch(t, rt, spec)
	ev.wait(t, spec.ID, EventRunning, time.Second)
	waitFor(t, "task ready", 5*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(info.Sandbox, "ready"))
		return err == nil
	})

	if e.layout.Version == 1 {
		cg := info.Cgroups
		if got := readCgInt(t, cg["cpu"], "cpu.shares"); got != 1536 {
			t.Errorf("cpu.shares = %d, want 1536", got)
		}
		if got := readCgInt(t, cg["cpu"], "cpu.cfs_period_us"); got != 100000 {
			t.Errorf("cpu.cfs_period_us = %d, want 100000", got)
		}
		if got := readCgInt(t, cg["cpu"], "cpu.cfs_quota_us"); got != 150000 {
			t.Errorf("cpu.cfs_quota_us = %d, want 150000", got)
		}
		if got := readCgInt(t, cg["memory"], "memory.limit_in_bytes"); got != 64<<20 {
			t.Errorf("memory.limit_in_bytes = %d, want %d", got, 64<<20)
		}
		if got := readCgInt(t, cg["pids"], "pids.max"); got != 32 {
			t.Errorf("pids.max = %d, want 32", got)
		}
		for _, c := range v1Required {
			if !strings.Contains(readCg(t, cg[c], "cgroup.procs"), strconv.Itoa(info.PID)) {
				t.Errorf("task pid %d not in %s cgroup %s", info.PID, c, cg[c])
			}
		}
		// The task saw itself in its cgroups while running.
		own := sandboxFile(t, info, "cg.txt")
		rel := "/" + filepath.Join(e.root, "node-a", taskCgroupDir, spec.ID)
		// cpuset is joined for membership only, out of the agent's cgroup.
		for _, c := range []string{"memory", "pids", "freezer", "cpuset"} {
			if !strings.Contains(own, ":"+c+":"+rel+"\n") {
				t.Errorf("task's /proc/self/cgroup lacks %s:%s:\n%s", c, rel, own)
			}
		}
		// The supervisor is outside the agent's cgroup, in its own.
		sup := filepath.Join(e.layout.Controllers["memory"], e.root, "node-a", supervisorCgroupDir, spec.ID)
		if got := readCgInt(t, sup, "memory.limit_in_bytes"); got != supervisorMemBytes {
			t.Errorf("supervisor memory limit = %d, want %d", got, supervisorMemBytes)
		}
		t.Logf("supervisor memory: peak %d bytes", readCgInt(t, sup, "memory.max_usage_in_bytes"))
		if got := readCg(t, sup, "cgroup.procs"); got == "" {
			t.Errorf("no supervisor in %s", sup)
		}
	}

	env := sandboxFile(t, info, "env.txt")
	for _, want := range []string{"FOO=bar", "AGORA_TASK_NAME=limits", "AGORA_TASK_ID=limits-1",
		"AGORA_SANDBOX=" + info.Sandbox, "MESOS_SANDBOX=" + info.Sandbox,
		"PORT0=31000", "PORT1=31005", "PORTS=31000,31005"} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if uid := strings.TrimSpace(sandboxFile(t, info, "uid.txt")); uid != "65534" {
		t.Errorf("task ran as uid %s, want nobody (65534)", uid)
	}

	if err := rt.Kill(spec.ID, -1); err != nil {
		t.Fatal(err)
	}
	ex := ev.wait(t, spec.ID, EventExited, 10*time.Second)
	if !ex.Exit.Killed || ex.Exit.Signal != int(syscall.SIGKILL) || ex.Exit.Reason != ReasonKilled {
		t.Errorf("exit = %+v, want killed by SIGKILL", *ex.Exit)
	}
	if err := rt.Forget(spec.ID); err != nil {
		t.Fatal(err)
	}
	for _, d := range info.Cgroups {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still exists after Forget", d)
		}
	}
}

// TestExitCodesAndOutput checks finished/failed exit codes, output files
// and resource usage.
func TestExitCodesAndOutput(t *testing.T) {
	e := newTestEnv(t)
	rt, ev := e.runtime("node-a")
	ok := launch(t, rt, TaskSpec{ID: "ok", Name: "ok", Command: Command{Argv: []string{"sh", "-c", "echo out; echo err >&2"}}})
	launch(t, rt, TaskSpec{ID: "bad", Name: "bad", Command: Command{Shell: "exit 3"}, Resources: Resources{MemBytes: 32 << 20}})
	okEx := ev.wait(t, "ok", EventExited, 10*time.Second).Exit
	badEx := ev.wait(t, "bad", EventExited, 10*time.Second).Exit
	if !okEx.Succeeded() || okEx.ExitCode != 0 {
		t.Errorf("ok: %+v", *okEx)
	}
	if badEx.Succeeded() || badEx.ExitCode != 3 || badEx.Killed || badEx.OOM {
		t.Errorf("bad: %+v", *badEx)
	}
	if badEx.Usage.PeakMemBytes <= 0 {
		t.Errorf("bad: no peak memory: %+v", badEx.Usage)
	}
	if got := sandboxFile(t, ok, "stdout"); got != "out\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := sandboxFile(t, ok, "stderr"); got != "err\n" {
		t.Errorf("stderr = %q", got)
	}
	// A second Launch of a known ID is refused; after Forget the ID's
	// checkpoint is gone.
	if _, err := rt.Launch(context.Background(), TaskSpec{ID: "ok", Command: Command{Shell: "true"}}); err == nil {
		t.Error("relaunch of a known task ID succeeded")
	}
	for _, id := range []string{"ok", "bad"} {
		if err := rt.Forget(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := rt.Forget("ok"); !errors.Is(err, ErrUnknownTask) {
		t.Errorf("second Forget: %v, want ErrUnknownTask", err)
	}
}
