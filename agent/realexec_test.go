package agent_test

import (
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/runtime"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

// realEnv is one test's cgroup root and runtime directories.
type realEnv struct {
	t                     *testing.T
	root, work, ckpt      string
	leaseNS, ns, agentNam string
}

func newRealEnv(t *testing.T) *realEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the real executor needs root for cgroups")
	}
	if raceEnabled {
		t.Skip("a race-instrumented supervisor is OOM-killed in its 16 MiB cgroup")
	}
	layout, err := runtime.DetectLayout()
	if err != nil {
		t.Skipf("no usable cgroup layout: %v", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &realEnv{t: t, root: "agora-agent-test-" + hex.EncodeToString(b), work: t.TempDir(), ckpt: t.TempDir(),
		leaseNS: env.Namespace(t, "agora-system"), ns: env.Namespace(t, "fw"), agentNam: agentName("real")}
	t.Cleanup(func() { removeCgroups(t, layout, e.root) })
	return e
}

// start runs a real agent on a fresh Runtime over the test's directories;
// stop closes both, leaving the supervisors running.
func (e *realEnv) start() (a *agent.Agent, stop func()) {
	e.t.Helper()
	rt, err := runtime.New(runtime.Config{AgentName: e.agentNam, CgroupRoot: e.root, WorkDir: e.work,
		CheckpointDir: e.ckpt, Logf: e.t.Logf})
	if err != nil {
		e.t.Fatal(err)
	}
	ex := agent.NewRuntimeExecutor(rt)
	a, stopAgent := startAgent(e.t, agent.Config{Name: e.agentNam, Namespace: e.leaseNS,
		Total: mustParse("cpus:2;mem:1Gi;ports:[31000-31009]"), Executor: ex, CgroupVersion: ex.CgroupVersion()})
	return a, func() {
		stopAgent()
		rt.Close()
	}
}

func TestRealExecutor(t *testing.T) {
	e := newRealEnv(t)
	_, stop := e.start()
	defer stop()

	exit3 := newTask(t, e.ns, "exit3", e.agentNam, builders.Res("100m", "32Mi"), func(tk *agorav1.Task) {
		tk.Spec.Command = agorav1.CommandInfo{Shell: ptr("exit 3")}
	})
	hog := newTask(t, e.ns, "hog", e.agentNam, builders.Res("100m", "16Mi"), func(tk *agorav1.Task) {
		tk.Spec.Command = agorav1.CommandInfo{Argv: []string{"tail", "/dev/zero"}}
	})
	ports := newTask(t, e.ns, "ports", e.agentNam, agorav1.Resources{CPUs: builders.Q("100m"), Mem: builders.Q("32Mi"),
		Ports: []agorav1.PortRange{{Begin: 31002, End: 31003}}}, func(tk *agorav1.Task) {
		tk.Spec.Command = agorav1.CommandInfo{Shell: ptr(`test "$PORTS" = "31002,31003" && test "$GREETING" = hi`),
			Env: []agorav1.EnvVar{{Name: "GREETING", Value: "hi"}}}
	})
	for _, tk := range []*agorav1.Task{exit3, hog, ports} {
		bind(t, tk)
	}

	got := waitState(t, exit3, agorav1.TaskFailed, 30*time.Second)
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 3 || got.Status.Source != agorav1.SourceExecutor {
		t.Errorf("exit 3: status = %+v", got.Status)
	}
	if got.Status.Sandbox == "" || got.Status.StartTime == nil || got.Status.Usage == nil {
		t.Errorf("exit 3: sandbox, start time or usage missing: %+v", got.Status)
	}
	got = waitState(t, hog, agorav1.TaskFailed, 30*time.Second)
	if got.Status.Reason != agorav1.ReasonContainerLimitationMemory {
		t.Errorf("memory hog: status = %+v, want reason %s", got.Status, agorav1.ReasonContainerLimitationMemory)
	}
	got = waitState(t, ports, agorav1.TaskFinished, 30*time.Second)
	if *got.Status.ExitCode != 0 {
		t.Errorf("ports: status = %+v", got.Status)
	}

	// Kill with a grace period: SIGTERM ends the shell's sleep at once.
	long := newTask(t, e.ns, "long", e.agentNam, builders.Res("100m", "32Mi"), func(tk *agorav1.Task) {
		tk.Spec.Command = agorav1.CommandInfo{Shell: ptr("sleep 300")}
	})
	bind(t, long)
	waitState(t, long, agorav1.TaskRunning, 30*time.Second)
	setKill(t, long)
	waitState(t, long, agorav1.TaskKilled, 30*time.Second)
}

// TestLongLaunchErrorIsClipped: a launch error longer than the CRD's
// 4096-character status.message is still reported, clipped to fit.
func TestLongLaunchErrorIsClipped(t *testing.T) {
	e := newRealEnv(t)
	_, stop := e.start()
	defer stop()
	// A 4083-character working directory that does not exist: the
	// launch error quotes it, with more words around it.
	wd := "/nonexistent/" + strings.Repeat("d", 200) + strings.Repeat("/d", 1935)
	tk := newTask(t, e.ns, "longwd", e.agentNam, builders.Res("100m", "32Mi"), func(tk *agorav1.Task) {
		tk.Spec.Command = agorav1.CommandInfo{Shell: ptr("true"), WorkingDir: wd}
	})
	bind(t, tk)
	got := waitState(t, tk, agorav1.TaskFailed, 30*time.Second)
	n := utf8.RuneCountInString(got.Status.Message)
	if got.Status.Reason != agorav1.ReasonContainerLaunchFailed || n > 4096 || !strings.HasSuffix(got.Status.Message, "…") {
		t.Errorf("reason %q, message of %d characters ending %q; want %s and a clipped message of at most 4096",
			got.Status.Reason, n, got.Status.Message[max(0, len(got.Status.Message)-20):], agorav1.ReasonContainerLaunchFailed)
	}
}

// TestRealRestart stops the agent while tasks run (their supervisors carry
// on) and starts a new one on the same directories: the tasks are
// recovered, finish, and are reported once each.
func TestRealRestart(t *testing.T) {
	e := newRealEnv(t)
	_, stop := e.start()
	var tasks []*agorav1.Task
	// t0 and t1 end while no agent runs; t2 still runs when the new agent
	// starts and is reattached.
	for i, sh := range []string{"sleep 2; exit 0", "sleep 2; exit 4", "sleep 5; exit 0"} {
		tk := newTask(t, e.ns, "t"+strconv.Itoa(i), e.agentNam, builders.Res("500m", "32Mi"), func(tk *agorav1.Task) {
			tk.Spec.Command = agorav1.CommandInfo{Shell: ptr(sh)}
		})
		bind(t, tk)
		tasks = append(tasks, tk)
	}
	for _, tk := range tasks {
		waitState(t, tk, agorav1.TaskRunning, 30*time.Second)
	}
	stop()
	time.Sleep(2500 * time.Millisecond)
	a, stop := e.start()
	defer stop()
	got := waitState(t, tasks[0], agorav1.TaskFinished, 30*time.Second)
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 0 {
		t.Errorf("t0: %+v", got.Status)
	}
	got = waitState(t, tasks[1], agorav1.TaskFailed, 30*time.Second)
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 4 {
		t.Errorf("t1: %+v", got.Status)
	}
	got = waitState(t, tasks[2], agorav1.TaskFinished, 30*time.Second)
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 0 {
		t.Errorf("t2: %+v", got.Status)
	}
	// A write counts once its response is in, which may be after it shows.
	eventually(t, 5*time.Second, "three status writes counted", func() bool { return a.StatusWrites() >= 3 })
	if w := a.StatusWrites(); w != 3 {
		t.Errorf("the new agent made %d status writes, want 3 (one terminal state per task)", w)
	}
	// Forgotten once written: no checkpoint is left behind.
	eventually(t, 10*time.Second, "checkpoints removed", func() bool {
		ents, _ := os.ReadDir(filepath.Join(e.ckpt, e.agentNam))
		return len(ents) == 0
	})
}

// setKill kills tk as a framework and the master do: spec.kill, then the
// kill flag of its Assignment entry, which is what the agent watches.
func setKill(t *testing.T, tk *agorav1.Task) {
	t.Helper()
	setSpecKill(t, tk)
	setEntry(t, tk, func(e *agorav1.AssignedTask) { e.Kill = true })
}

func setSpecKill(t *testing.T, tk *agorav1.Task) {
	t.Helper()
	cur := tk.DeepCopy()
	for range 20 {
		if err := env.Client.Get(t.Context(), keyOf(tk), cur); err != nil {
			t.Fatal(err)
		}
		cur.Spec.Kill = true
		if err := env.Client.Update(t.Context(), cur); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("could not set spec.kill")
}

// removeCgroups kills what is left under the test's cgroup root and removes
// it, deepest first, in every hierarchy.
func removeCgroups(t *testing.T, layout *runtime.Layout, root string) {
	mounts := map[string]bool{}
	for _, m := range layout.Controllers {
		mounts[m] = true
	}
	if layout.Version == 2 {
		mounts = map[string]bool{layout.Unified: true}
	}
	for m := range mounts {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(m, root), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			for range 100 {
				data, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
				pids := strings.Fields(string(data))
				if len(pids) == 0 {
					break
				}
				for _, p := range pids {
					if pid, err := strconv.Atoi(p); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Logf("cleanup: %v", err)
			}
		}
	}
}
