package allocator

import (
	"testing"

	"github.com/agora-sched/agora/pkg/resources"
)

func TestQuotaGuarantee(t *testing.T) {
	setup := func(t *testing.T, guarantee string) *Allocator {
		a := New(Options{Seed: 3})
		// q has a tiny weight: by DRF alone it would get one agent.
		must(t, a.SetRole(RoleInfo{Name: "q", Weight: 0.01, Guarantee: mustParse(guarantee)}))
		must(t, a.AddFramework(FrameworkInfo{ID: "a", Roles: []string{"a"}}))
		must(t, a.AddFramework(FrameworkInfo{ID: "q", Roles: []string{"q"}}))
		addAgents(t, a, 8, "cpus:1;mem:1Gi")
		return a
	}
	t.Run("without guarantee DRF gives q one agent", func(t *testing.T) {
		a := setup(t, "")
		if got := countBy(a.Allocate(t0)); got["q"] != 1 || got["a"] != 7 {
			t.Errorf("offers = %v", got)
		}
	})
	t.Run("stage 1 satisfies the guarantee first", func(t *testing.T) {
		a := setup(t, "cpus:4")
		offers := a.Allocate(t0)
		if got := countBy(offers); got["q"] != 4 || got["a"] != 4 {
			t.Errorf("offers = %v, want q 4 (its guarantee) and a the rest", got)
		}
		for i, o := range offers[:4] {
			if o.FrameworkID != "q" {
				t.Errorf("offer %d went to %s before q's guarantee was met", i, o.FrameworkID)
			}
		}
	})
	t.Run("stage 1 offers only what is still needed in guaranteed kinds", func(t *testing.T) {
		a := New(Options{Seed: 3})
		must(t, a.SetRole(RoleInfo{Name: "q", Guarantee: mustParse("cpus:1.5")}))
		must(t, a.AddFramework(FrameworkInfo{ID: "q", Roles: []string{"q"}}))
		must(t, a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:4;mem:4Gi")}))
		must(t, a.AddFramework(FrameworkInfo{ID: "a", Roles: []string{"a"}}))
		offers := a.Allocate(t0)
		// Stage 1: q gets 1.5 cpus and the mem (not guaranteed, so not
		// chopped); stage 2: a has the lower share and gets the rest.
		if len(offers) != 2 || offers[0].FrameworkID != "q" || !offers[0].Resources.Equal(mustParse("cpus:1.5;mem:4Gi")) ||
			offers[1].FrameworkID != "a" || !offers[1].Resources.Equal(mustParse("cpus:2.5")) {
			t.Errorf("offers = %v", offers)
		}
	})
	t.Run("headroom is held back for an unsatisfied guarantee", func(t *testing.T) {
		a := setup(t, "cpus:4")
		must(t, a.Suppress("q"))
		cpusOf := func(offers []Offer) (n int64) {
			for _, o := range offers {
				if o.FrameworkID != "a" {
					t.Errorf("offer to %s", o.FrameworkID)
				}
				n += o.Resources.Scalars[resources.CPUs]
			}
			return n
		}
		// a gets 4 cpus; the other 4 agents are offered without their
		// cpus (mem is not guaranteed, so it is not held back).
		if got := cpusOf(a.Allocate(t0)); got != 4000 {
			t.Errorf("a was offered %d millicpus, want 4000 while q's 4 cpus are owed", got)
		}
		// Once q stops needing them (guarantee removed) a gets the rest.
		must(t, a.SetRole(RoleInfo{Name: "q", Weight: 0.01}))
		if got := cpusOf(a.Allocate(t0)); got != 4000 {
			t.Errorf("after removing the guarantee a got %d more millicpus, want 4000", got)
		}
	})
	t.Run("a parent's guarantee covers its subtree", func(t *testing.T) {
		a := New(Options{Seed: 3})
		must(t, a.SetRole(RoleInfo{Name: "eng", Weight: 0.01, Guarantee: mustParse("cpus:3")}))
		must(t, a.AddFramework(FrameworkInfo{ID: "web", Roles: []string{"eng/web"}}))
		must(t, a.AddFramework(FrameworkInfo{ID: "a", Roles: []string{"a"}}))
		addAgents(t, a, 6, "cpus:1;mem:1Gi")
		if got := countBy(a.Allocate(t0)); got["web"] != 3 || got["a"] != 3 {
			t.Errorf("offers = %v", got)
		}
	})
}

func TestQuotaLimit(t *testing.T) {
	a := New(Options{Seed: 3})
	must(t, a.SetRole(RoleInfo{Name: "capped", Limit: mustParse("cpus:3;mem:100Gi"), Limited: resources.KindsOf(resources.CPUs)}))
	must(t, a.AddFramework(FrameworkInfo{ID: "c", Roles: []string{"capped"}}))
	addAgents(t, a, 4, "cpus:2;mem:1Gi")
	offers := a.Allocate(t0)
	var cpus int64
	for _, o := range offers {
		cpus += o.Resources.Scalars[resources.CPUs]
	}
	if cpus != 3000 {
		t.Fatalf("offered %d millicpus in total, want the 3 cpu limit: %v", cpus, offers)
	}
	// mem is not limited (not in Limited), so the agent offered the last
	// cpu is offered whole in mem; agents without cpu left are offered
	// their mem too, as Mesos does.
	for _, o := range offers {
		if o.Resources.Scalars[resources.Mem] != resources.GiB {
			t.Errorf("mem of %v chopped though mem is unlimited", o)
		}
	}
	// The limit holds across rounds and after declines.
	for _, o := range offers {
		must(t, a.Recover(o.FrameworkID, o.Role, o.Agent, o.Resources.ScalarsOnly().With(resources.Mem, 0), 0, t0))
	}
	offers = a.Allocate(t0)
	cpus = 0
	for _, o := range offers {
		cpus += o.Resources.Scalars[resources.CPUs]
	}
	if cpus != 3000 {
		t.Errorf("second round offered %d millicpus, want 3000", cpus)
	}
	// Lowering the limit below the allocation offers nothing more.
	must(t, a.SetRole(RoleInfo{Name: "capped", Limit: mustParse("cpus:1"), Limited: resources.KindsOf(resources.CPUs, resources.Mem)}))
	if offers := a.Allocate(t0); len(offers) != 0 {
		t.Errorf("offers above a lowered limit: %v", offers)
	}
	// A parent's limit covers its subtree.
	b := New(Options{Seed: 3})
	must(t, b.SetRole(RoleInfo{Name: "eng", Limit: mustParse("cpus:2"), Limited: resources.AllScalars & ^resources.KindsOf(resources.Mem)}))
	must(t, b.AddFramework(FrameworkInfo{ID: "web", Roles: []string{"eng/web"}}))
	must(t, b.AddFramework(FrameworkInfo{ID: "batch", Roles: []string{"eng/batch"}}))
	addAgents(t, b, 4, "cpus:1")
	if got := countBy(b.Allocate(t0)); got["web"]+got["batch"] != 2 {
		t.Errorf("subtree offered %v, want 2 agents in total", got)
	}
	if err := checkBooks(b); err != nil {
		t.Fatal(err)
	}
	must(t, b.RemoveRole("eng"))
	if got := countBy(b.Allocate(t0)); got["web"]+got["batch"] != 2 {
		t.Errorf("after RemoveRole the rest should be offered: %v", got)
	}
}

func TestReservations(t *testing.T) {
	a := New(Options{Seed: 3})
	must(t, a.AddFramework(FrameworkInfo{ID: "any", Roles: []string{"*"}}))
	must(t, a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:4;mem:4Gi;ports:[1-10]"),
		Reserved: map[string]resources.Resources{"db": mustParse("cpus:2;mem:1Gi;ports:[1-5]")}}))
	offers := a.Allocate(t0)
	if len(offers) != 1 || !offers[0].Resources.Equal(mustParse("cpus:2;mem:3Gi;ports:[6-10]")) {
		t.Fatalf("unreserved offer = %v, want only the unreserved part", offers)
	}
	// A sub-role does not get its parent's reservation.
	must(t, a.AddFramework(FrameworkInfo{ID: "sub", Roles: []string{"db/replica"}}))
	if offers := a.Allocate(t0); len(offers) != 0 {
		t.Fatalf("reservation of db offered to db/replica: %v", offers)
	}
	must(t, a.AddFramework(FrameworkInfo{ID: "db", Roles: []string{"db"}}))
	offers = a.Allocate(t0)
	if len(offers) != 1 || offers[0].FrameworkID != "db" || !offers[0].Resources.Equal(mustParse("cpus:2;mem:1Gi;ports:[1-5]")) {
		t.Fatalf("reserved offer = %v", offers)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
	// Everything back, any suppressed: db gets its reservation plus the
	// unreserved part.
	for _, o := range append(offers, Offer{FrameworkID: "any", Role: "*", Agent: "n", Resources: mustParse("cpus:2;mem:3Gi;ports:[6-10]")}) {
		must(t, a.Recover(o.FrameworkID, o.Role, o.Agent, o.Resources, 0, t0))
	}
	must(t, a.Suppress("any"))
	must(t, a.Suppress("sub"))
	offers = a.Allocate(t0)
	must(t, a.Unsuppress("any"))
	if len(offers) != 1 || offers[0].FrameworkID != "db" || !offers[0].Resources.Equal(mustParse("cpus:4;mem:4Gi;ports:[1-10]")) {
		t.Fatalf("db offer = %v, want its reservation and the unreserved part", offers)
	}
	// db returns 3 cpus: reservations are used first, so it keeps the
	// reserved ones and the unreserved pool gets 2 cpus back... but db
	// holds 1 cpu, which counts against its reservation: the reservation
	// has 1 cpu free, and 'any' may take the 2 unreserved cpus only.
	must(t, a.Recover("db", "db", "n", mustParse("cpus:3;mem:4Gi;ports:[1-10]"), 0, t0))
	must(t, a.Suppress("db"))
	offers = a.Allocate(t0)
	if len(offers) != 1 || offers[0].FrameworkID != "any" || !offers[0].Resources.Equal(mustParse("cpus:2;mem:3Gi;ports:[6-10]")) {
		t.Fatalf("offers = %v", offers)
	}
	if av, _ := a.AgentAvailable("n"); !av.Equal(mustParse("cpus:1;mem:1Gi;ports:[1-5]")) {
		t.Errorf("available = %v, want db's unused reservation", av)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
	// Updating the agent keeps the books right.
	must(t, a.UpdateAgent(AgentInfo{Name: "n", Total: mustParse("cpus:8;mem:4Gi;ports:[1-10]"),
		Reserved: map[string]resources.Resources{"db": mustParse("cpus:2;mem:1Gi;ports:[1-5]")}}))
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
	if offers := a.Allocate(t0); len(offers) != 1 || !offers[0].Resources.Equal(mustParse("cpus:4")) {
		t.Errorf("after growing the agent: %v", offers)
	}
}
