package agent_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/runtime"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/internal/testenv"
	"github.com/agora-sched/agora/pkg/resources"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	// The real executor's supervisor and shim are this test binary
	// re-executed, as the agent binary is in production.
	if runtime.Main(os.Args) {
		return
	}
	testenv.Main(m, &env)
}

// startAgent runs an agent until the test ends (or stop is called) and
// waits until it is ready.
func startAgent(t *testing.T, cfg agent.Config) (a *agent.Agent, stop func()) {
	t.Helper()
	if cfg.Clients == nil {
		c, err := agent.NewClients(env.Config, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Clients = c
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = time.Second
	}
	if cfg.SummaryInterval == 0 {
		cfg.SummaryInterval = 200 * time.Millisecond
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("agent not ready after 30s")
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return a, stop
}

// newTask creates a Task on agent in ns.
func newTask(t *testing.T, ns, name, agentName string, res agorav1.Resources, mutate ...func(*agorav1.Task)) *agorav1.Task {
	t.Helper()
	task := builders.Task(ns, name, "fw").OfferRef("offer-1", "offer-uid-1", agentName).Resources(res).Obj()
	for _, m := range mutate {
		m(task)
	}
	if err := env.Client.Create(context.Background(), task); err != nil {
		t.Fatalf("creating task %s: %v", name, err)
	}
	return task
}

// bind plays the master: it lists the task in the agent's Assignment,
// which binds it.
func bind(t *testing.T, task *agorav1.Task) {
	t.Helper()
	env.Bind(t, task)
}

// setStatus updates a task's status as the master would, retrying conflicts.
func setStatus(t *testing.T, task *agorav1.Task, f func(*agorav1.TaskStatus)) {
	t.Helper()
	env.UpdateStatus(t, task, f)
}

// setEntry changes the task's entry in its agent's Assignment, as the master
// does to kill it or to say it marked it lost.
func setEntry(t *testing.T, task *agorav1.Task, f func(*agorav1.AssignedTask)) {
	t.Helper()
	env.SetAssigned(t, task, f)
}

// unassign drops the task from its agent's Assignment, as the master does
// once it ended or was deleted.
func unassign(t *testing.T, task *agorav1.Task) {
	t.Helper()
	env.UpdateAssignment(t, task.Spec.AgentName, func(s *agorav1.AssignmentSpec) {
		s.Tasks = slices.DeleteFunc(s.Tasks, func(e agorav1.AssignedTask) bool { return e.UID == task.UID })
	})
}

// waitState waits for a task to reach state and returns it.
func waitState(t *testing.T, task *agorav1.Task, state agorav1.TaskState, timeout time.Duration) *agorav1.Task {
	t.Helper()
	var cur agorav1.Task
	deadline := time.Now().Add(timeout)
	for {
		if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(task), &cur); err != nil {
			t.Fatal(err)
		}
		if cur.Status.State == state {
			return &cur
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: state %q (reason %q, message %q), want %s after %s",
				task.Name, cur.Status.State, cur.Status.Reason, cur.Status.Message, state, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getAgent(t *testing.T, name string) *agorav1.Agent {
	t.Helper()
	var a agorav1.Agent
	if err := env.Client.Get(context.Background(), types.NamespacedName{Name: name}, &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

func getLease(t *testing.T, ns, name string) *coordinationv1.Lease {
	t.Helper()
	var l coordinationv1.Lease
	if err := env.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// eventually polls cond every 50ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var uniq int

// agentName returns a fresh agent name per test (Agents are cluster-scoped).
func agentName(prefix string) string {
	uniq++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%100000, uniq)
}

func mustParse(s string) resources.Resources { return resources.MustParse(s) }

func keyOf(o client.Object) client.ObjectKey { return client.ObjectKeyFromObject(o) }
