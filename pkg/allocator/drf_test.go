package allocator

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/agora-sched/agora/pkg/resources"
)

// launchOne plays a framework that, offered resources, runs one task of
// shape task if it fits and declines the rest without a filter.
func launchOne(t *testing.T, a *Allocator, offers []Offer, tasks map[string]resources.Resources, held map[string]resources.Resources) int {
	t.Helper()
	launched := 0
	for _, o := range offers {
		task := tasks[o.FrameworkID]
		rest := o.Resources
		if o.Resources.Contains(task) {
			rest, _ = o.Resources.Subtract(task)
			held[o.FrameworkID] = held[o.FrameworkID].Add(task)
			launched++
		}
		must(t, a.Recover(o.FrameworkID, o.Role, o.Agent, rest, 0, t0))
	}
	return launched
}

// TestDRFPaperExample is the example of the DRF paper (Ghodsi et al.,
// NSDI 2011): 9 cpus and 18 GB; user A runs tasks of <1 cpu, 4 GB>, user B
// of <3 cpus, 1 GB>. DRF gives A three tasks and B two, equalising their
// dominant shares at 2/3.
func TestDRFPaperExample(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddAgent(AgentInfo{Name: "m", Total: mustParse("cpus:9;mem:18Gi")}))
	must(t, a.AddFramework(FrameworkInfo{ID: "A"}))
	must(t, a.AddFramework(FrameworkInfo{ID: "B"}))
	tasks := map[string]resources.Resources{"A": mustParse("cpus:1;mem:4Gi"), "B": mustParse("cpus:3;mem:1Gi")}
	held := map[string]resources.Resources{}
	for round := 0; round < 20; round++ {
		if launchOne(t, a, a.Allocate(t0), tasks, held) == 0 {
			break
		}
	}
	if want := mustParse("cpus:3;mem:12Gi"); !held["A"].Equal(want) {
		t.Errorf("A runs %v, want %v (three tasks)", held["A"], want)
	}
	if want := mustParse("cpus:6;mem:2Gi"); !held["B"].Equal(want) {
		t.Errorf("B runs %v, want %v (two tasks)", held["B"], want)
	}
	sh := a.Shares()
	if math.Abs(sh["A"]-2.0/3) > 1e-9 || math.Abs(sh["B"]-2.0/3) > 1e-9 {
		t.Errorf("shares %v, want both 2/3", sh)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}

func TestDRFOrder(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, a *Allocator)
		agents int
		want   map[string]int // offers per framework in the first round
	}{
		{
			name: "equal frameworks split the agents",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.AddFramework(FrameworkInfo{ID: "f1"}))
				must(t, a.AddFramework(FrameworkInfo{ID: "f2"}))
			},
			agents: 8, want: map[string]int{"f1": 4, "f2": 4},
		},
		{
			name: "weights: a role of weight 3 gets three times as much",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.SetRole(RoleInfo{Name: "heavy", Weight: 3}))
				must(t, a.AddFramework(FrameworkInfo{ID: "light", Roles: []string{"light"}}))
				must(t, a.AddFramework(FrameworkInfo{ID: "heavy", Roles: []string{"heavy"}}))
			},
			agents: 8, want: map[string]int{"light": 2, "heavy": 6},
		},
		{
			name: "existing allocation counts: the framework holding more gets less",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.AddFramework(FrameworkInfo{ID: "rich"}))
				must(t, a.AddFramework(FrameworkInfo{ID: "poor"}))
				must(t, a.AddAgent(AgentInfo{Name: "busy", Total: mustParse("cpus:4;mem:4Gi")}))
				must(t, a.AddAllocation("rich", "*", "busy", mustParse("cpus:4;mem:4Gi")))
			},
			agents: 6, want: map[string]int{"rich": 1, "poor": 5},
		},
		{
			name: "roles first, then frameworks within a role",
			setup: func(t *testing.T, a *Allocator) {
				for _, id := range []string{"r1-a", "r1-b", "r1-c"} {
					must(t, a.AddFramework(FrameworkInfo{ID: id, Roles: []string{"r1"}}))
				}
				must(t, a.AddFramework(FrameworkInfo{ID: "r2-a", Roles: []string{"r2"}}))
			},
			agents: 6, want: map[string]int{"r1-a": 1, "r1-b": 1, "r1-c": 1, "r2-a": 3},
		},
		{
			name: "hierarchical roles: siblings share their parent's part",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.AddFramework(FrameworkInfo{ID: "eng-web", Roles: []string{"eng/web"}}))
				must(t, a.AddFramework(FrameworkInfo{ID: "eng-batch", Roles: []string{"eng/batch"}}))
				must(t, a.AddFramework(FrameworkInfo{ID: "ops", Roles: []string{"ops"}}))
			},
			// Flat DRF would give 2 each; hierarchical gives eng (the
			// subtree) 3 and ops 3.
			agents: 6, want: map[string]int{"eng-batch": 2, "eng-web": 1, "ops": 3},
		},
		{
			name: "hierarchical weights: a parent's weight covers its subtree",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.SetRole(RoleInfo{Name: "eng", Weight: 2}))
				must(t, a.AddFramework(FrameworkInfo{ID: "eng-web", Roles: []string{"eng/web"}}))
				must(t, a.AddFramework(FrameworkInfo{ID: "eng-batch", Roles: []string{"eng/batch"}}))
				must(t, a.AddFramework(FrameworkInfo{ID: "ops", Roles: []string{"ops"}}))
			},
			agents: 9, want: map[string]int{"eng-web": 3, "eng-batch": 3, "ops": 3},
		},
		{
			name: "a parent's own frameworks compete with its sub-roles",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.AddFramework(FrameworkInfo{ID: "eng", Roles: []string{"eng"}}))
				must(t, a.AddFramework(FrameworkInfo{ID: "eng-web", Roles: []string{"eng/web"}}))
			},
			agents: 4, want: map[string]int{"eng": 2, "eng-web": 2},
		},
		{
			name: "deactivated framework gets nothing",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.AddFramework(FrameworkInfo{ID: "on"}))
				must(t, a.AddFramework(FrameworkInfo{ID: "off"}))
				must(t, a.DeactivateFramework("off"))
			},
			agents: 3, want: map[string]int{"on": 3},
		},
		{
			name: "suppressed role gets nothing, other roles of the framework do",
			setup: func(t *testing.T, a *Allocator) {
				must(t, a.AddFramework(FrameworkInfo{ID: "multi", Roles: []string{"x", "y"}, SuppressedRoles: []string{"x"}}))
			},
			agents: 2, want: map[string]int{"multi": 2},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{Seed: 7})
			tc.setup(t, a)
			addAgents(t, a, tc.agents, "cpus:1;mem:1Gi")
			offers := a.Allocate(t0)
			got := countBy(offers)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("offers per framework = %v, want %v", got, tc.want)
			}
			for _, o := range offers {
				if o.FrameworkID == "multi" && o.Role != "y" {
					t.Errorf("offer in suppressed role: %+v", o)
				}
			}
			if err := checkBooks(a); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTieBreakFewerAllocationsThenName(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "b"}))
	must(t, a.AddFramework(FrameworkInfo{ID: "a"}))
	addAgents(t, a, 1, "cpus:1;mem:1Gi")
	// Round 1: equal shares and no past allocations: the name decides.
	o := a.Allocate(t0)
	if len(o) != 1 || o[0].FrameworkID != "a" {
		t.Fatalf("round 1 = %v, want a", o)
	}
	must(t, a.Recover("a", "*", o[0].Agent, o[0].Resources, 0, t0))
	// Round 2: shares equal again (0); a has one past allocation, b none.
	o = a.Allocate(t0)
	if len(o) != 1 || o[0].FrameworkID != "b" {
		t.Fatalf("round 2 = %v, want b (fewer past allocations)", o)
	}
}

func TestMultipleOffersPerAgentAndMinAllocatable(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.SetRole(RoleInfo{Name: "capped", Limit: mustParse("cpus:1"), Limited: resources.KindsOf(resources.CPUs)}))
	must(t, a.AddFramework(FrameworkInfo{ID: "capped", Roles: []string{"capped"}}))
	must(t, a.AddFramework(FrameworkInfo{ID: "other", Roles: []string{"other"}}))
	must(t, a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:3;mem:1Gi")}))
	must(t, a.AddAllocation("other", "other", "n", mustParse("mem:1Mi")))
	// capped has the lower share: it gets 1 cpu (its limit) and all the
	// mem; the remaining 2 cpus go to other in a second offer.
	offers := a.Allocate(t0)
	if len(offers) != 2 || offers[0].FrameworkID != "capped" || !offers[0].Resources.Equal(mustParse("cpus:1;mem:1023Mi")) ||
		offers[1].FrameworkID != "other" || !offers[1].Resources.Equal(mustParse("cpus:2")) {
		t.Fatalf("offers = %v", offers)
	}
	// Below the minimum (0.01 cpus or 32 MiB) nothing is offered.
	b := New(Options{Seed: 1})
	must(t, b.AddFramework(FrameworkInfo{ID: "f"}))
	must(t, b.AddAgent(AgentInfo{Name: "tiny", Total: mustParse("cpus:0.009;mem:31Mi;disk:1Gi")}))
	if offers := b.Allocate(t0); len(offers) != 0 {
		t.Fatalf("offered below the minimum: %v", offers)
	}
	c := New(Options{Seed: 1, MinAllocatable: mustParse("disk:1Gi")})
	must(t, c.AddFramework(FrameworkInfo{ID: "f"}))
	must(t, c.AddAgent(AgentInfo{Name: "tiny", Total: mustParse("cpus:0.009;mem:31Mi;disk:1Gi")}))
	if offers := c.Allocate(t0); len(offers) != 1 {
		t.Fatalf("custom minimum not honoured: %v", offers)
	}
}

func TestSeedMakesRoundsReproducible(t *testing.T) {
	run := func(seed int64) string {
		a := New(Options{Seed: seed})
		for i := range 5 {
			must(t, a.AddFramework(FrameworkInfo{ID: fmt.Sprintf("f%d", i)}))
		}
		addAgents(t, a, 50, "cpus:1;mem:1Gi")
		return fmt.Sprint(a.Allocate(t0))
	}
	if run(1) != run(1) {
		t.Fatal("same seed, different offers")
	}
	if run(1) == run(2) {
		t.Fatal("different seeds gave the same agent order")
	}
}

func TestGPUGating(t *testing.T) {
	for _, exclude := range []bool{false, true} {
		t.Run(fmt.Sprintf("exclude=%v", exclude), func(t *testing.T) {
			a := New(Options{Seed: 1, ExcludeGPUsFromShares: exclude})
			must(t, a.AddFramework(FrameworkInfo{ID: "a-plain"}))
			must(t, a.AddFramework(FrameworkInfo{ID: "gpu", GPUAware: true}))
			must(t, a.AddAgent(AgentInfo{Name: "gpu-node", Total: mustParse("cpus:8;mem:8Gi;gpus:4")}))
			must(t, a.AddAgent(AgentInfo{Name: "cpu-node", Total: mustParse("cpus:8;mem:8Gi")}))
			offers := a.Allocate(t0)
			for _, o := range offers {
				if o.Agent == "gpu-node" && o.FrameworkID != "gpu" {
					t.Errorf("GPU agent offered to a framework without the GPU capability: %+v", o)
				}
				if o.Agent == "gpu-node" && !o.Resources.Equal(mustParse("cpus:8;mem:8Gi;gpus:4")) {
					t.Errorf("GPU agent not offered whole: %v", o.Resources)
				}
			}
			if len(offers) != 2 {
				t.Fatalf("offers = %v, want both agents offered", offers)
			}
			// The GPU framework's share: 4/4 gpus = 1, or 8/16 cpus = 0.5
			// when GPUs are excluded.
			want := 1.0
			if exclude {
				want = 0.5
			}
			if got := a.Shares()["gpu"]; got != want {
				t.Errorf("gpu share = %v, want %v", got, want)
			}
			// Without a GPU-aware framework the GPU agent is withheld: the
			// removal frees it, but it must not go to a-plain.
			must(t, a.RemoveFramework("gpu"))
			if av, _ := a.AgentAvailable("gpu-node"); !av.Equal(mustParse("cpus:8;mem:8Gi;gpus:4")) {
				t.Fatalf("gpu-node not freed by the removal: %v", av)
			}
			if offers := a.Allocate(t0); len(offers) != 0 {
				t.Errorf("GPU agent offered to a framework without the capability: %v", offers)
			}
		})
	}
}

func TestAgentRemovalReturnsResources(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "f"}))
	addAgents(t, a, 2, "cpus:4;mem:4Gi")
	must(t, a.AddAllocation("f", "*", "agent-000", mustParse("cpus:4;mem:4Gi")))
	must(t, a.AddAllocation("f", "*", "agent-001", mustParse("cpus:2;mem:1Gi")))
	if got := a.Shares()["f"]; got != 0.75 {
		t.Fatalf("share = %v, want 0.75", got)
	}
	must(t, a.RemoveAgent("agent-000"))
	alloc, err := a.Allocated("f")
	must(t, err)
	if !alloc["*"].Equal(mustParse("cpus:2;mem:1Gi")) {
		t.Errorf("after removal f holds %v, want the second agent's part only", alloc)
	}
	if got := a.Shares()["f"]; got != 0.5 {
		t.Errorf("share = %v, want 0.5 of the remaining agent", got)
	}
	if st := a.Stats(); st.Agents != 1 || !st.Total.Equal(mustParse("cpus:4;mem:4Gi")) || !st.Allocated.Equal(mustParse("cpus:2;mem:1Gi")) {
		t.Errorf("stats %+v", st)
	}
	if err := a.Recover("f", "*", "agent-000", mustParse("cpus:1"), 0, t0); !isErr(err, ErrUnknownAgent) {
		t.Errorf("recover on removed agent: %v", err)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableAgent(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "f"}))
	addAgents(t, a, 2, "cpus:4;mem:4Gi")
	must(t, a.SetAgentReachable("agent-001", false))
	offers := a.Allocate(t0)
	if len(offers) != 1 || offers[0].Agent != "agent-000" {
		t.Fatalf("offers = %v, want only the reachable agent", offers)
	}
	if st := a.Stats(); st.ReachableAgents != 1 || !st.Total.Equal(mustParse("cpus:4;mem:4Gi")) {
		t.Errorf("unreachable agent counted in totals: %+v", st)
	}
	must(t, a.SetAgentReachable("agent-001", true))
	if offers := a.Allocate(t0); len(offers) != 1 || offers[0].Agent != "agent-001" {
		t.Fatalf("offers after reachable again = %v", offers)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}

// An unreachable agent's allocations leave the books with its total, as
// Mesos removes the agent from its allocator: a share stays within 100%,
// and a framework cut off from its tasks is not charged for them. They
// come back with the agent, quota limit included.
func TestUnreachableAgentLeavesTheBooks(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.SetRole(RoleInfo{Name: "capped", Limit: mustParse("cpus:6"), Limited: resources.KindsOf(resources.CPUs)}))
	must(t, a.AddFramework(FrameworkInfo{ID: "cut", Roles: []string{"capped"}}))
	must(t, a.AddFramework(FrameworkInfo{ID: "other"}))
	addAgents(t, a, 2, "cpus:8;mem:8Gi")
	must(t, a.AddAllocation("cut", "capped", "agent-000", mustParse("cpus:4;mem:4Gi")))
	must(t, a.AddAllocation("other", DefaultRole, "agent-001", mustParse("cpus:1;mem:1Gi")))

	must(t, a.SetAgentReachable("agent-000", false))
	if sh := a.Shares(); sh["cut"] != 0 || sh["other"] != 0.125 {
		t.Fatalf("shares while agent-000 is unreachable = %v, want cut 0 (its tasks are off the books), other 1/8", sh)
	}
	if got, _ := a.Allocated("cut"); len(got) != 0 {
		t.Errorf("Allocated(cut) while unreachable = %v, want nothing", got)
	}
	// cut now has the lower share: agent-001's free cpus go to it, up to
	// its role's limit of 6 (its 4 on agent-000 do not count meanwhile).
	offers := a.Allocate(t0)
	if len(offers) != 2 || offers[0].FrameworkID != "cut" || !offers[0].Resources.Equal(mustParse("cpus:6;mem:7Gi")) {
		t.Fatalf("offers = %v, want cut offered cpus:6;mem:7Gi (then other the rest)", offers)
	}
	// A task on the unreachable agent ends: its agent gets it back, the
	// books (already without it) do not change.
	must(t, a.Recover("cut", "capped", "agent-000", mustParse("cpus:1;mem:1Gi"), 0, t0))
	if got, _ := a.Allocated("cut"); !got["capped"].Equal(mustParse("cpus:6;mem:7Gi")) {
		t.Errorf("Allocated(cut) after a recovery on the unreachable agent = %v, want only the offer", got)
	}

	// Back: its remaining 3 cpus count again, 9 in all, over the limit of
	// 6, so the role is offered nothing more until it is back within it.
	must(t, a.SetAgentReachable("agent-000", true))
	if got, _ := a.Allocated("cut"); !got["capped"].Equal(mustParse("cpus:9;mem:10Gi")) {
		t.Errorf("Allocated(cut) after agent-000 is back = %v, want cpus:9;mem:10Gi", got)
	}
	for _, o := range a.Allocate(t0) {
		if o.FrameworkID == "cut" {
			t.Errorf("offered %v to a role over its limit", o)
		}
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}

// A withheld (cordoned) agent is not offered and leaves the totals, but
// its tasks run on: they stay on the books, and a quota limit counts them.
func TestWithheldAgentKeepsItsBooks(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.SetRole(RoleInfo{Name: "capped", Limit: mustParse("cpus:6"), Limited: resources.KindsOf(resources.CPUs)}))
	must(t, a.AddFramework(FrameworkInfo{ID: "f", Roles: []string{"capped"}}))
	addAgents(t, a, 2, "cpus:8;mem:8Gi")
	must(t, a.AddAllocation("f", "capped", "agent-000", mustParse("cpus:4;mem:4Gi")))

	must(t, a.SetAgentWithheld("agent-000", true))
	if st := a.Stats(); st.ReachableAgents != 1 || !st.Total.Equal(mustParse("cpus:8;mem:8Gi")) {
		t.Errorf("withheld agent counted in the totals: %+v", st)
	}
	if got, _ := a.Allocated("f"); !got["capped"].Equal(mustParse("cpus:4;mem:4Gi")) {
		t.Errorf("Allocated(f) while its agent is withheld = %v, want its tasks' cpus:4;mem:4Gi", got)
	}
	offers := a.Allocate(t0)
	if len(offers) != 1 || offers[0].Agent != "agent-001" || !offers[0].Resources.Equal(mustParse("cpus:2;mem:8Gi")) {
		t.Fatalf("offers = %v, want cpus:2;mem:8Gi on agent-001 (the limit counts the withheld agent's 4 cpus)", offers)
	}
	// Withheld and then unreachable: its tasks leave the books; both
	// lifted, they come back once.
	must(t, a.SetAgentReachable("agent-000", false))
	if got, _ := a.Allocated("f"); !got["capped"].Equal(mustParse("cpus:2;mem:8Gi")) {
		t.Errorf("Allocated(f) while its agent is withheld and unreachable = %v, want only the offer", got)
	}
	must(t, a.SetAgentWithheld("agent-000", false))
	must(t, a.SetAgentReachable("agent-000", true))
	if got, _ := a.Allocated("f"); !got["capped"].Equal(mustParse("cpus:6;mem:12Gi")) {
		t.Errorf("Allocated(f) with both lifted = %v, want cpus:6;mem:12Gi", got)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}

func isErr(err, target error) bool {
	var e *Error
	return errors.As(err, &e) && errors.Is(err, target)
}

// TestExcludedFromShares is the master-failover case: a new leader finds
// three agents half free at once. Every offer carries the agent's whole
// disk, which no task asks for; counted, two offers give batch a disk
// share of 2/3 and the third agent goes to svc although batch runs
// nothing. Excluded (Mesos' --fair_sharing_excluded_resource_names),
// batch, the poorer framework in cpus and mem, is offered all three.
func TestExcludedFromShares(t *testing.T) {
	for _, tc := range []struct {
		name     string
		excluded resources.KindSet
		want     map[string]int
		share    float64 // of half the disk and a sixth of the cpus
	}{
		{"disk counted", 0, map[string]int{"batch": 2, "svc": 1}, 0.5},
		{"disk excluded", resources.KindsOf(resources.Disk), map[string]int{"batch": 3}, 1.0 / 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := New(Options{Seed: 1, ExcludedFromShares: tc.excluded})
			must(t, a.AddFramework(FrameworkInfo{ID: "svc"}))
			must(t, a.AddFramework(FrameworkInfo{ID: "batch"}))
			for i := range 3 {
				name := fmt.Sprintf("a%d", i)
				must(t, a.AddAgent(AgentInfo{Name: name, Total: mustParse("cpus:1;mem:1Gi;disk:100Gi")}))
				must(t, a.AddAllocation("svc", DefaultRole, name, mustParse("cpus:0.5;mem:400Mi")))
			}
			if got := countBy(a.Allocate(t0)); fmtAny(got) != fmtAny(tc.want) {
				t.Errorf("offers per framework %v, want %v", got, tc.want)
			}
			if err := checkBooks(a); err != nil {
				t.Fatal(err)
			}
			if got := a.DominantShare(mustParse("cpus:0.5;disk:150Gi")); math.Abs(got-tc.share) > 1e-9 {
				t.Errorf("DominantShare = %v, want %v", got, tc.share)
			}
		})
	}
}

func TestOfferBudget(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "a"}))
	must(t, a.AddFramework(FrameworkInfo{ID: "b"}))
	addAgents(t, a, 10, "cpus:1;mem:1Gi")
	must(t, a.SetOfferBudget("a", 2))
	must(t, a.SetOfferBudget("b", 0))
	offers := a.Allocate(t0)
	if len(offers) != 2 || offers[0].FrameworkID != "a" || offers[1].FrameworkID != "a" {
		t.Fatalf("budgets 2 and 0: offers = %v", offers)
	}
	// The budget is spent: nothing more until it is set again.
	if offers := a.Allocate(t0); len(offers) != 0 {
		t.Fatalf("budget spent, still offered %v", offers)
	}
	must(t, a.SetOfferBudget("b", -1))
	if offers := a.Allocate(t0); len(offers) != 8 {
		t.Fatalf("no cap: %d offers, want the 8 agents left", len(offers))
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
	if err := a.SetOfferBudget("nobody", 1); err == nil {
		t.Fatal("unknown framework accepted")
	}
}
