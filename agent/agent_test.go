package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

func simAgent(t *testing.T, name, leaseNS, total string) (*agent.Agent, *sim.Executor, func()) {
	ex := sim.NewExecutor()
	a, stop := startAgent(t, agent.Config{Name: name, Namespace: leaseNS, Total: mustParse(total),
		Executor: ex, CgroupVersion: "simulated", Version: "test",
		Attributes: []agorav1.Attribute{{Name: "rack", Text: ptr("r1")}}})
	return a, ex, stop
}

func ptr[T any](v T) *T { return &v }

func annotate(kv ...string) func(*agorav1.Task) {
	return func(t *agorav1.Task) {
		t.Annotations = map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			t.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func TestRegistrationAndLease(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	name := agentName("reg")
	_, _, _ = simAgent(t, name, leaseNS, "cpus:4;mem:8Gi;ports:[31000-31010]")

	ag := getAgent(t, name)
	st := ag.Status
	if st.Hostname != name || st.CgroupVersion != "simulated" || st.Version != "test" || st.RegisteredTime == nil {
		t.Errorf("status = %+v", st)
	}
	if st.Total.CPUs.String() != "4" || st.Total.Mem.String() != "8Gi" || len(st.Total.Ports) != 1 {
		t.Errorf("total = %+v", st.Total)
	}
	if len(st.Attributes) != 1 || *st.Attributes[0].Text != "r1" {
		t.Errorf("attributes = %+v", st.Attributes)
	}
	if len(st.Conditions) != 1 || st.Conditions[0].Type != agorav1.AgentConditionReady || st.Conditions[0].Status != metav1.ConditionTrue {
		t.Errorf("conditions = %+v", st.Conditions)
	}
	first := getLease(t, leaseNS, name)
	if first.Spec.HolderIdentity == nil || *first.Spec.HolderIdentity != name {
		t.Errorf("lease holder = %v", first.Spec.HolderIdentity)
	}
	// RenewInterval is 1s in tests: the Lease must change within ~2s.
	eventually(t, 5*time.Second, "lease renewed", func() bool {
		return getLease(t, leaseNS, name).ResourceVersion != first.ResourceVersion
	})
}

func TestAdmission(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("adm")
	_, _, _ = simAgent(t, name, leaseNS, "cpus:1;mem:1Gi")

	fits := newTask(t, ns, "fits", name, builders.Res("600m", "256Mi"), annotate(sim.AnnotationDuration, "2s"))
	unbound := newTask(t, ns, "unbound", name, builders.Res("100m", "32Mi"))
	bind(t, fits)
	waitState(t, fits, agorav1.TaskRunning, 10*time.Second)

	// 600m + 600m > 1 cpu: the second bound task is refused by the agent.
	tooBig := newTask(t, ns, "too-big", name, builders.Res("600m", "256Mi"))
	bind(t, tooBig)
	got := waitState(t, tooBig, agorav1.TaskFailed, 10*time.Second)
	if got.Status.Reason != agorav1.ReasonInvalidOffers || got.Status.Source != agorav1.SourceAgent ||
		!strings.Contains(got.Status.Message, "did not fit beside") {
		t.Errorf("too-big status = %+v", got.Status)
	}

	done := waitState(t, fits, agorav1.TaskFinished, 10*time.Second)
	if done.Status.ExitCode == nil || *done.Status.ExitCode != 0 || done.Status.StartTime == nil ||
		done.Status.CompletionTime == nil || done.Status.Sandbox == "" {
		t.Errorf("finished status = %+v", done.Status)
	}

	var u agorav1.Task
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(unbound), &u); err != nil {
		t.Fatal(err)
	}
	if u.Status.State != "" {
		t.Errorf("unbound task got state %q; the agent must wait for the master's binding", u.Status.State)
	}

	// Its resources are free again once it ended.
	next := newTask(t, ns, "next", name, builders.Res("600m", "256Mi"), annotate(sim.AnnotationExitCode, "7"))
	bind(t, next)
	failed := waitState(t, next, agorav1.TaskFailed, 10*time.Second)
	if failed.Status.ExitCode == nil || *failed.Status.ExitCode != 7 {
		t.Errorf("exit code = %v", failed.Status.ExitCode)
	}
	eventually(t, 5*time.Second, "agent summary written", func() bool {
		st := getAgent(t, name).Status
		return st.Tasks == 0 && st.Allocated.CPUs == nil
	})
}

func TestKill(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("kill")
	_, ex, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")

	task := newTask(t, ns, "long", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, task)
	waitState(t, task, agorav1.TaskRunning, 10*time.Second)
	setKill(t, task)
	got := waitState(t, task, agorav1.TaskKilled, 10*time.Second)
	if got.Status.CompletionTime == nil {
		t.Errorf("killed status = %+v", got.Status)
	}

	// A running task whose object is deleted is killed: the master flags
	// its entry kill.
	gone := newTask(t, ns, "gone", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, gone)
	waitState(t, gone, agorav1.TaskRunning, 10*time.Second)
	if err := env.Client.Delete(context.Background(), gone); err != nil {
		t.Fatal(err)
	}
	setEntry(t, gone, func(e *agorav1.AssignedTask) { e.Kill = true })
	eventually(t, 10*time.Second, "deleted task's process killed", func() bool { return ex.Running() == 0 })

	// So is one whose entry is dropped: the agent reads it and finds it gone.
	unlisted := newTask(t, ns, "unlisted", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, unlisted)
	waitState(t, unlisted, agorav1.TaskRunning, 10*time.Second)
	if err := env.Client.Delete(context.Background(), unlisted); err != nil {
		t.Fatal(err)
	}
	unassign(t, unlisted)
	eventually(t, 10*time.Second, "unlisted deleted task's process killed", func() bool { return ex.Running() == 0 })
}

// TestRestartReportsOnce restarts the agent while tasks run: they are
// recovered from the executor, finish, and each state is written once.
func TestRestartReportsOnce(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("restart")
	ex := sim.NewExecutor()
	cfg := agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:2;mem:2Gi"), Executor: ex}
	_, stop := startAgent(t, cfg)

	a := newTask(t, ns, "a", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "3s"))
	b := newTask(t, ns, "b", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "3s"))
	bind(t, a)
	bind(t, b)
	waitState(t, a, agorav1.TaskRunning, 10*time.Second)
	waitState(t, b, agorav1.TaskRunning, 10*time.Second)

	// Count every status change from here on.
	var list agorav1.TaskList
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w, err := wc.Watch(wctx, &list, client.InNamespace(ns))
	if err != nil {
		t.Fatal(err)
	}
	stop()
	// The agent's resources are taken by the recovered tasks: a third
	// task bound now must be refused by the new agent.
	c := newTask(t, ns, "c", name, builders.Res("1", "128Mi"))
	bind(t, c)
	_, _ = startAgent(t, cfg)
	waitState(t, c, agorav1.TaskFailed, 10*time.Second)
	waitState(t, a, agorav1.TaskFinished, 10*time.Second)
	waitState(t, b, agorav1.TaskFinished, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // room for a duplicate write to show

	states := map[string][]agorav1.TaskState{}
	for {
		select {
		case ev := <-w.ResultChan():
			if ev.Type == watch.Modified {
				tk := ev.Object.(*agorav1.Task)
				states[tk.Name] = append(states[tk.Name], tk.Status.State)
			}
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	for _, n := range []string{"a", "b"} {
		if got := states[n]; len(got) != 1 || got[0] != agorav1.TaskFinished {
			t.Errorf("task %s: status writes after the restart = %v, want one TASK_FINISHED", n, got)
		}
	}
	if ex.Running() != 0 {
		t.Errorf("%d tasks still running", ex.Running())
	}
}

// TestLostToRunning partitions the agent; the master marks its task
// UNREACHABLE; when the agent is back it reports RUNNING again.
func TestLostToRunning(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("lost")
	a, _, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")

	unreachable := newTask(t, ns, "unreachable", name, builders.Res("500m", "64Mi"), annotate(sim.AnnotationDuration, "1h"))
	lost := newTask(t, ns, "lost", name, builders.Res("500m", "64Mi"), annotate(sim.AnnotationDuration, "1h"))
	ended := newTask(t, ns, "ended", name, builders.Res("500m", "64Mi"), annotate(sim.AnnotationDuration, "2s"))
	for _, tk := range []*agorav1.Task{unreachable, lost, ended} {
		bind(t, tk)
		waitState(t, tk, agorav1.TaskRunning, 10*time.Second)
	}
	a.Pause()
	lease := getLease(t, leaseNS, name)
	markLost := func(tk *agorav1.Task, s agorav1.TaskState) {
		setStatus(t, tk, func(st *agorav1.TaskStatus) {
			st.State, st.Source, st.Reason = s, agorav1.SourceMaster, agorav1.ReasonAgentUnreachable
		})
		setEntry(t, tk, func(e *agorav1.AssignedTask) { e.Lost = true })
	}
	markLost(unreachable, agorav1.TaskUnreachable)
	markLost(lost, agorav1.TaskLost)
	markLost(ended, agorav1.TaskLost)
	time.Sleep(2500 * time.Millisecond) // "ended" finishes while the agent is cut off
	if l := getLease(t, leaseNS, name); l.ResourceVersion != lease.ResourceVersion {
		t.Errorf("lease renewed while paused")
	}
	if s := waitState(t, ended, agorav1.TaskLost, time.Second); s.Status.Reason != agorav1.ReasonAgentUnreachable {
		t.Errorf("status written while paused: %+v", s.Status)
	}
	a.Resume()
	for _, tk := range []*agorav1.Task{unreachable, lost} {
		got := waitState(t, tk, agorav1.TaskRunning, 10*time.Second)
		if got.Status.Reason != agorav1.ReasonAgentReregistered {
			t.Errorf("%s: reason %q, want %s", tk.Name, got.Status.Reason, agorav1.ReasonAgentReregistered)
		}
	}
	// LOST can only become RUNNING: the agent writes RUNNING, then FINISHED.
	got := waitState(t, ended, agorav1.TaskFinished, 10*time.Second)
	if got.Status.Reason != "" {
		t.Errorf("finished with reason %q", got.Status.Reason)
	}
	eventually(t, 5*time.Second, "lease renewed after resume", func() bool {
		return getLease(t, leaseNS, name).ResourceVersion != lease.ResourceVersion
	})
}

// TestOrphanKilledAfterRestart: a task deleted while its agent was down is
// killed by the next agent once a read confirms the object is gone.
func TestOrphanKilledAfterRestart(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("orphan")
	ex := sim.NewExecutor()
	cfg := agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:2;mem:2Gi"), Executor: ex}
	_, stop := startAgent(t, cfg)
	tk := newTask(t, ns, "orphan", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, tk)
	waitState(t, tk, agorav1.TaskRunning, 10*time.Second)
	stop()
	if err := env.Client.Delete(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	if ex.Running() != 1 {
		t.Fatalf("%d tasks running while the agent is down, want 1", ex.Running())
	}
	a, _ := startAgent(t, cfg)
	eventually(t, 10*time.Second, "orphan killed", func() bool { return ex.Running() == 0 })
	if w := a.StatusWrites(); w != 0 {
		t.Errorf("%d status writes for a deleted task", w)
	}
}

// A busy agent's status writes stand in for two Lease renewals in three
// (the master counts them as heartbeats); the third keeps the Lease within
// its duration of four intervals.
func TestStatusWritesStandInForRenewals(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	name := agentName("beat")
	const interval = 2 * time.Second
	a, _ := startAgent(t, agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:4;mem:8Gi"),
		Executor: sim.NewExecutor(), CgroupVersion: "simulated", RenewInterval: interval})
	// Summary writes every 250 ms, from the start to the end of the test.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			a.SetTotal(mustParse(fmt.Sprintf("cpus:%d;mem:8Gi", 4+i%2)))
			time.Sleep(250 * time.Millisecond)
		}
	}()
	defer func() { cancel(); <-done }()

	// The gap between two renewals seen, whichever they are: the first
	// keeps its random place, the next ones come three intervals apart.
	rv := getLease(t, leaseNS, name).ResourceVersion
	var renewed time.Time
	changed := func() bool {
		if cur := getLease(t, leaseNS, name).ResourceVersion; cur != rv {
			rv, renewed = cur, time.Now()
			return true
		}
		return false
	}
	eventually(t, 4*interval, "a renewal", changed)
	first := renewed
	eventually(t, 5*interval, "the next renewal", changed)
	if gap := renewed.Sub(first); gap < 5*interval/2 || gap > 7*interval/2 {
		t.Errorf("the Lease was renewed %s after the previous renewal while the agent's status changed every 250 ms; want about 3 intervals of %s", gap.Round(time.Millisecond), interval)
	}
}

// TestForgetAfterLaunchReturns: a task that ends before its Launch returns
// is forgotten by the executor too (its checkpoint, its cgroups), once
// Launch has returned and not before.
func TestForgetAfterLaunchReturns(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("forget")
	ex := newFakeExec()
	ex.release = make(chan struct{})
	_, _ = startAgent(t, agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:2;mem:2Gi"), Executor: ex})
	tk := newTask(t, ns, "quick", name, builders.Res("100m", "32Mi"))
	bind(t, tk)
	waitState(t, tk, agorav1.TaskFinished, 10*time.Second)
	id := string(tk.UID)
	if n := ex.forgets(id); n != 0 {
		t.Fatalf("Executor.Forget called %d times while Launch was in flight", n)
	}
	close(ex.release)
	eventually(t, 10*time.Second, "Executor.Forget called once Launch returned", func() bool { return ex.forgets(id) > 0 })
	time.Sleep(200 * time.Millisecond) // room for a second call to show
	if n := ex.forgets(id); n != 1 {
		t.Errorf("Executor.Forget called %d times, want 1", n)
	}
}
