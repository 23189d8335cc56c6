package allocator

import (
	"testing"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

// oneAgent builds a single agent with framework f (and g when two).
func oneAgent(t *testing.T, ids ...string) *Allocator {
	a := New(Options{Seed: 1})
	for _, id := range ids {
		must(t, a.AddFramework(FrameworkInfo{ID: id}))
	}
	must(t, a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:4;mem:4Gi;ports:[31000-31010]")}))
	return a
}

func TestFilters(t *testing.T) {
	whole := mustParse("cpus:4;mem:4Gi;ports:[31000-31010]")
	t.Run("blocks the same offer until it expires", func(t *testing.T) {
		a := oneAgent(t, "f")
		o := a.Allocate(t0)
		must(t, a.Recover("f", "*", "n", o[0].Resources, 5*time.Second, t0))
		if st := a.Stats(); st.Filters != 1 {
			t.Errorf("filters = %d", st.Filters)
		}
		for _, dt := range []time.Duration{0, time.Second, 4999 * time.Millisecond} {
			if got := a.Allocate(t0.Add(dt)); len(got) != 0 {
				t.Fatalf("at +%v offered despite the filter: %v", dt, got)
			}
		}
		got := a.Allocate(t0.Add(5 * time.Second))
		if len(got) != 1 || !got[0].Resources.Equal(whole) {
			t.Fatalf("after expiry: %v", got)
		}
		if st := a.Stats(); st.Filters != 0 {
			t.Errorf("expired filter still counted: %d", st.Filters)
		}
	})
	t.Run("blocks only subsets of what was refused", func(t *testing.T) {
		a := oneAgent(t, "f")
		must(t, a.AddAllocation("f", "*", "n", mustParse("cpus:2")))
		o := a.Allocate(t0)
		if !o[0].Resources.Equal(mustParse("cpus:2;mem:4Gi;ports:[31000-31010]")) {
			t.Fatalf("offer = %v", o)
		}
		must(t, a.Recover("f", "*", "n", o[0].Resources, time.Hour, t0))
		if got := a.Allocate(t0); len(got) != 0 {
			t.Fatalf("same resources offered again: %v", got)
		}
		// A task ends: now more is available than was refused, so the
		// filter no longer blocks.
		must(t, a.Recover("f", "*", "n", mustParse("cpus:1"), 0, t0))
		got := a.Allocate(t0)
		if len(got) != 1 || !got[0].Resources.Equal(mustParse("cpus:3;mem:4Gi;ports:[31000-31010]")) {
			t.Fatalf("superset not offered: %v", got)
		}
	})
	t.Run("is per framework: others still get the agent", func(t *testing.T) {
		a := oneAgent(t, "f", "g")
		o := a.Allocate(t0)
		must(t, a.Recover(o[0].FrameworkID, "*", "n", o[0].Resources, time.Hour, t0))
		got := a.Allocate(t0)
		if len(got) != 1 || got[0].FrameworkID == o[0].FrameworkID {
			t.Fatalf("offers = %v, want the other framework", got)
		}
	})
	t.Run("a partial decline filters only the refused part", func(t *testing.T) {
		a := oneAgent(t, "f")
		o := a.Allocate(t0)
		used := mustParse("cpus:1;mem:1Gi;ports:[31000-31000]")
		rest, err := o[0].Resources.Subtract(used)
		must(t, err)
		must(t, a.Recover("f", "*", "n", rest, time.Hour, t0))
		if got := a.Allocate(t0); len(got) != 0 {
			t.Fatalf("refused part offered again: %v", got)
		}
		// The task ends: 4 cpus available again, more than refused.
		must(t, a.Recover("f", "*", "n", used, 0, t0))
		if got := a.Allocate(t0); len(got) != 1 {
			t.Fatalf("after the task ended: %v", got)
		}
	})
	t.Run("a quota-chopped offer is blocked when within what was refused", func(t *testing.T) {
		a := oneAgent(t, "f")
		o := a.Allocate(t0)
		must(t, a.Recover("f", "*", "n", o[0].Resources, time.Hour, t0))
		must(t, a.SetRole(RoleInfo{Name: "*", Limit: mustParse("cpus:1"), Limited: resources.KindsOf(resources.CPUs)}))
		if got := a.Allocate(t0); len(got) != 0 {
			t.Fatalf("chopped subset offered: %v", got)
		}
	})
	t.Run("rebuilt filters (AddFilter) block too", func(t *testing.T) {
		a := oneAgent(t, "f")
		must(t, a.AddFilter("f", "*", "n", whole, t0.Add(time.Minute)))
		if got := a.Allocate(t0); len(got) != 0 {
			t.Fatalf("offered despite rebuilt filter: %v", got)
		}
		if got := a.Allocate(t0.Add(time.Minute)); len(got) != 1 {
			t.Fatalf("rebuilt filter did not expire: %v", got)
		}
	})
	t.Run("agent removal drops its filters", func(t *testing.T) {
		a := oneAgent(t, "f")
		o := a.Allocate(t0)
		must(t, a.Recover("f", "*", "n", o[0].Resources, time.Hour, t0))
		must(t, a.RemoveAgent("n"))
		if st := a.Stats(); st.Filters != 0 {
			t.Fatalf("filters = %d after agent removal", st.Filters)
		}
		if err := checkBooks(a); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSuppressAndRevive(t *testing.T) {
	a := oneAgent(t, "f")
	o := a.Allocate(t0)
	must(t, a.Recover("f", "*", "n", o[0].Resources, time.Hour, t0))
	must(t, a.Suppress("f"))
	// Unsuppress does not clear filters (unlike Mesos' REVIVE).
	must(t, a.Unsuppress("f"))
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("unsuppress cleared the filter: %v", got)
	}
	// ReviveFilters clears filters but does not unsuppress.
	must(t, a.Suppress("f"))
	must(t, a.ReviveFilters("f"))
	if st := a.Stats(); st.Filters != 0 {
		t.Errorf("filters = %d after revive", st.Filters)
	}
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("revive unsuppressed: %v", got)
	}
	must(t, a.Unsuppress("f"))
	if got := a.Allocate(t0); len(got) != 1 {
		t.Fatalf("unsuppressed and revived but not offered: %v", got)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}

func TestSuppressAndReviveByRole(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "f", Roles: []string{"x", "y"}}))
	addAgents(t, a, 2, "cpus:1;mem:1Gi")
	must(t, a.Suppress("f", "x"))
	for _, o := range a.Allocate(t0) {
		if o.Role != "y" {
			t.Fatalf("offer in suppressed role x: %v", o)
		}
		must(t, a.Recover("f", "y", o.Agent, o.Resources, time.Hour, t0))
	}
	must(t, a.Unsuppress("f", "x"))
	got := a.Allocate(t0)
	if len(got) != 2 || got[0].Role != "x" || got[1].Role != "x" {
		t.Fatalf("offers = %v, want both agents in role x (y is filtered)", got)
	}
	for _, o := range got {
		must(t, a.Recover("f", "x", o.Agent, o.Resources, 0, t0))
	}
	must(t, a.Suppress("f", "x"))
	must(t, a.ReviveFilters("f", "y"))
	if got := a.Allocate(t0); len(got) != 2 || got[0].Role != "y" {
		t.Fatalf("after reviving y: %v", got)
	}
}

func TestFrameworkLifecycle(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "f", Roles: []string{"x", "y"}}))
	addAgents(t, a, 2, "cpus:1;mem:1Gi")
	offers := a.Allocate(t0)
	if len(offers) != 2 {
		t.Fatalf("offers = %v", offers)
	}
	// Drop role x: what it holds stays until recovered, no new offers.
	must(t, a.UpdateFramework(FrameworkInfo{ID: "f", Roles: []string{"y"}}))
	for _, o := range offers {
		must(t, a.Recover("f", o.Role, o.Agent, o.Resources, 0, t0))
	}
	for _, o := range a.Allocate(t0) {
		if o.Role != "y" {
			t.Fatalf("offer in dropped role: %v", o)
		}
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.RoleShares()["x"]; ok {
		t.Errorf("dropped, empty role x still known: %v", a.RoleShares())
	}
	// Deactivate, then activate.
	must(t, a.DeactivateFramework("f"))
	must(t, a.RemoveAgent("agent-000"))
	addAgents(t, a, 1, "cpus:1;mem:1Gi")
	if got := a.Allocate(t0); len(got) != 0 {
		t.Fatalf("inactive framework offered: %v", got)
	}
	must(t, a.ActivateFramework("f"))
	if got := a.Allocate(t0); len(got) != 1 {
		t.Fatalf("reactivated framework not offered: %v", got)
	}
	// Removal releases everything.
	must(t, a.RemoveFramework("f"))
	if st := a.Stats(); st.Frameworks != 0 || !st.Allocated.IsEmpty() || st.Roles != 0 {
		t.Errorf("after removal: %+v", st)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}
