package sim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// TestFiftyAgents starts 50 simulated agents spread over 5 connections,
// checks they register and heartbeat, and runs a task on each.
func TestFiftyAgents(t *testing.T) {
	ctx := context.Background()
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	const n = 50
	start := time.Now()
	c, err := sim.Start(ctx, env.Config, sim.Options{
		Count: n, NamePrefix: "sim50", Namespace: leaseNS, RenewInterval: 2 * time.Second, Connections: 5,
		Attributes: func(i int) []agorav1.Attribute {
			zone := fmt.Sprintf("z%d", i%3)
			return []agorav1.Attribute{{Name: "zone", Text: &zone}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	t.Logf("%d agents ready in %s", n, time.Since(start))
	names := c.Names()
	if len(names) != n {
		t.Fatalf("names = %v", names)
	}

	var agents agorav1.AgentList
	if err := env.Client.List(ctx, &agents); err != nil {
		t.Fatal(err)
	}
	registered := 0
	for _, a := range agents.Items {
		if c.Agent(a.Name) != nil && a.Status.CgroupVersion == "simulated" && a.Status.Total.CPUs.String() == "8" &&
			a.Status.Total.Mem.String() == "16Gi" && len(a.Status.Attributes) == 1 {
			registered++
		}
	}
	if registered != n {
		t.Errorf("%d agents registered with the expected status, want %d", registered, n)
	}
	var leases coordinationv1.LeaseList
	if err := env.Client.List(ctx, &leases, client.InNamespace(leaseNS)); err != nil {
		t.Fatal(err)
	}
	if len(leases.Items) != n {
		t.Errorf("%d leases, want %d", len(leases.Items), n)
	}

	for i, name := range names {
		bindTask(t, ns, fmt.Sprintf("t%d", i), name, "sleep 1")
	}
	waitFinished(t, ns, n, "after sleeping 1s", func(tk *agorav1.Task) bool {
		return tk.Status.StartTime != nil && tk.Status.CompletionTime.Sub(tk.Status.StartTime.Time) >= 900*time.Millisecond
	})
	for _, name := range names {
		// A write counts once its response is in, which may be after it shows.
		a := c.Agent(name)
		_ = wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 5*time.Second, true,
			func(context.Context) (bool, error) { return a.StatusWrites() >= 2, nil })
		if w := a.StatusWrites(); w != 2 {
			t.Errorf("agent %s made %d task status writes, want 2 (RUNNING, FINISHED)", name, w)
		}
	}
}

// TestPauseStopsHeartbeats checks that a paused agent's Lease stands still.
func TestPauseStopsHeartbeats(t *testing.T) {
	ctx := context.Background()
	leaseNS := env.Namespace(t, "agora-system")
	c, err := sim.Start(ctx, env.Config, sim.Options{Count: 2, NamePrefix: "pause", Namespace: leaseNS,
		RenewInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	name := c.Names()[0]
	if err := c.Pause(name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // a renewal in flight may land
	var before, after coordinationv1.Lease
	key := client.ObjectKey{Namespace: leaseNS, Name: name}
	if err := env.Client.Get(ctx, key, &before); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if err := env.Client.Get(ctx, key, &after); err != nil {
		t.Fatal(err)
	}
	if before.ResourceVersion != after.ResourceVersion {
		t.Errorf("paused agent renewed its lease")
	}
	if err := c.Resume(name); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := env.Client.Get(ctx, key, &after); err != nil {
		t.Fatal(err)
	}
	if before.ResourceVersion == after.ResourceVersion {
		t.Errorf("resumed agent did not renew its lease")
	}
}

// bindTask creates a Task of 1 cpu / 1Gi on agent and binds and lists it,
// as the master would.
func bindTask(t *testing.T, ns, name, agent, shell string) {
	t.Helper()
	ctx := context.Background()
	tk := builders.Task(ns, name, "fw").OfferRef("o", "uid", agent).
		Resources(builders.Res("1", "1Gi")).Shell(shell).Obj()
	if err := env.Client.Create(ctx, tk); err != nil {
		t.Fatal(err)
	}
	env.Bind(t, tk)
}

// waitFinished waits up to 30 s until want Tasks of ns are TASK_FINISHED and
// pass ok; how describes ok in the failure.
func waitFinished(t *testing.T, ns string, want int, how string, ok func(*agorav1.Task) bool) {
	t.Helper()
	finished := 0
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var list agorav1.TaskList
		if err := env.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, err
		}
		finished = 0
		for i := range list.Items {
			if tk := &list.Items[i]; tk.Status.State == agorav1.TaskFinished && ok(tk) {
				finished++
			}
		}
		return finished == want, nil
	})
	if err != nil {
		if how != "" {
			how = " (" + how + ")"
		}
		t.Fatalf("%d of %d tasks finished%s: %v", finished, want, how, err)
	}
}
