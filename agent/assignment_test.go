package agent_test

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

// stillState checks for d that task keeps state.
func stillState(t *testing.T, task *agorav1.Task, state agorav1.TaskState, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		var cur agorav1.Task
		if err := env.Client.Get(context.Background(), keyOf(task), &cur); err != nil {
			t.Fatal(err)
		}
		if cur.Status.State != state {
			t.Fatalf("task %s: state %q, want it to stay %s", task.Name, cur.Status.State, state)
		}
	}
}

// TestLaunchedOnceListed: a task runs only once the master lists it in the
// agent's Assignment, which is its bind, and the agent's first write
// copies the entry's bindTime and role into the Task.
func TestLaunchedOnceListed(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("listed")
	_, ex, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")

	task := newTask(t, ns, "late", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	stillState(t, task, "", 1500*time.Millisecond)
	if n := ex.Running(); n != 0 {
		t.Fatalf("%d tasks run before the master listed any", n)
	}
	env.BindAs(t, task, "web")
	got := waitState(t, task, agorav1.TaskRunning, 10*time.Second)
	if n := ex.Running(); n != 1 {
		t.Errorf("%d tasks run, want 1", n)
	}
	var asn agorav1.Assignment
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, &asn); err != nil {
		t.Fatal(err)
	}
	want := asn.Spec.Tasks[0].BindTime
	if got.Status.BindTime == nil || !got.Status.BindTime.Equal(want) || got.Status.Role != "web" {
		t.Errorf("RUNNING task: bindTime %v role %q, want the entry's %v and web", got.Status.BindTime, got.Status.Role, want)
	}
}

// TestKillByEntry: the kill flag of the entry alone kills the task, with
// the grace period of its spec.killPolicy.
func TestKillByEntry(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("entrykill")
	_, ex, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")

	task := newTask(t, ns, "long", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, task)
	waitState(t, task, agorav1.TaskRunning, 10*time.Second)
	setEntry(t, task, func(e *agorav1.AssignedTask) { e.Kill = true })
	got := waitState(t, task, agorav1.TaskKilled, 10*time.Second)
	if got.Spec.Kill || got.Status.CompletionTime == nil {
		t.Errorf("killed task: spec.kill %v, status %+v", got.Spec.Kill, got.Status)
	}
	eventually(t, 5*time.Second, "process ended", func() bool { return ex.Running() == 0 })

	// Flagged kill before its launch: TASK_KILLED without running.
	early := newTask(t, ns, "early", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	env.UpdateAssignment(t, name, func(s *agorav1.AssignmentSpec) {
		s.Tasks = append(s.Tasks, agorav1.AssignedTask{Namespace: ns, Name: early.Name, UID: early.UID, Kill: true})
	})
	got = waitState(t, early, agorav1.TaskKilled, 10*time.Second)
	if got.Status.Reason != agorav1.ReasonTaskKilledDuringLaunch {
		t.Errorf("killed before launch: reason %q, want %s", got.Status.Reason, agorav1.ReasonTaskKilledDuringLaunch)
	}
}

// TestLostFlagReportsRunning: the master marks a running task TASK_LOST and
// flags its entry lost, while the agent is connected: the agent's copy of
// the Task is stale, it reads it again and reports TASK_RUNNING, once.
func TestLostFlagReportsRunning(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("lostflag")
	a, _, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")

	task := newTask(t, ns, "lost", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, task)
	waitState(t, task, agorav1.TaskRunning, 10*time.Second)
	// The agent counts a write once its response is in, which may be after
	// the write shows: count from its first RUNNING on.
	eventually(t, 5*time.Second, "the RUNNING write counted", func() bool { return a.StatusWrites() == 1 })
	writes := a.StatusWrites()
	setStatus(t, task, func(st *agorav1.TaskStatus) {
		st.State, st.Source, st.Reason = agorav1.TaskLost, agorav1.SourceMaster, agorav1.ReasonAgentUnreachable
	})
	setEntry(t, task, func(e *agorav1.AssignedTask) { e.Lost = true })
	got := waitState(t, task, agorav1.TaskRunning, 10*time.Second)
	if got.Status.Reason != agorav1.ReasonAgentReregistered || got.Status.Source != agorav1.SourceAgent {
		t.Errorf("status after lost = %+v", got.Status)
	}
	// Another Assignment write while the flag is still set: the agent may
	// read again but has nothing new to write.
	other := newTask(t, ns, "other", name, builders.Res("500m", "64Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, other)
	waitState(t, other, agorav1.TaskRunning, 10*time.Second)
	time.Sleep(time.Second)
	if w := a.StatusWrites(); w != writes+2 {
		t.Errorf("%d status writes after LOST, want 2 (RUNNING again, once, and the other task's RUNNING)", w-writes)
	}
	waitState(t, task, agorav1.TaskRunning, 0)
}

// TestListedUnknownIgnored: entries naming no Task, or a Task of another
// UID, are ignored, and the agent goes on running what is really listed.
func TestListedUnknownIgnored(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("unknown")
	a, ex, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")

	replaced := newTask(t, ns, "replaced", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	env.UpdateAssignment(t, name, func(s *agorav1.AssignmentSpec) {
		s.Tasks = append(s.Tasks,
			agorav1.AssignedTask{Namespace: ns, Name: "no-such-task", UID: types.UID("00000000-0000-0000-0000-000000000001")},
			agorav1.AssignedTask{Namespace: ns, Name: replaced.Name, UID: types.UID("00000000-0000-0000-0000-000000000002")})
	})
	stillState(t, replaced, "", 1500*time.Millisecond)
	if n, w := ex.Running(), a.StatusWrites(); n != 0 || w != 0 {
		t.Fatalf("%d tasks run and %d status writes for entries of no such Task", n, w)
	}
	listed := newTask(t, ns, "listed", name, builders.Res("1", "128Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, listed)
	waitState(t, listed, agorav1.TaskRunning, 10*time.Second)
	if n := ex.Running(); n != 1 {
		t.Errorf("%d tasks run, want 1", n)
	}
}

// TestUnreachableUnknownTaskDropped: a bound task the master marked
// TASK_UNREACHABLE while its agent was away, and which the agent never
// launched, is not launched when the agent comes back: the agent reports
// TASK_DROPPED, REASON_RECONCILIATION (as a Mesos agent answers the
// master's reconciliation), which ends it and frees what it was booked for.
func TestUnreachableUnknownTaskDropped(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("unreach")
	task := newTask(t, ns, "never-launched", name, builders.Res("100m", "32Mi"), annotate(sim.AnnotationDuration, "1h"))
	bind(t, task)
	setStatus(t, task, func(st *agorav1.TaskStatus) {
		st.State, st.Source, st.Reason = agorav1.TaskUnreachable, agorav1.SourceMaster, agorav1.ReasonAgentUnreachable
	})
	setEntry(t, task, func(e *agorav1.AssignedTask) { e.Lost = true })
	_, ex, _ := simAgent(t, name, leaseNS, "cpus:2;mem:2Gi")
	got := waitState(t, task, agorav1.TaskDropped, 10*time.Second)
	if got.Status.Reason != agorav1.ReasonReconciliation || got.Status.Source != agorav1.SourceAgent {
		t.Errorf("status = %+v, want TASK_DROPPED from the agent with REASON_RECONCILIATION", got.Status)
	}
	if n := ex.Running(); n != 0 {
		t.Errorf("%d tasks run: the agent launched a task its framework was told is unreachable", n)
	}
}
