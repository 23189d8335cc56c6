package allocator

import (
	"math/rand/v2"
	"testing"

	"github.com/agora-sched/agora/pkg/resources"
)

// TestHoldings drives one agent's holdings past the inline capacity and
// back with random adds, updates and drops, with and without ports,
// against a map.
func TestHoldings(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var h agent
		model := map[int32]resources.Resources{}
		clients := make([]*client, 3*inlineHeld)
		for i := range clients {
			clients[i] = &client{slot: int32(i)}
		}
		for step := range 2000 {
			c := clients[rng.IntN(len(clients))]
			r := resources.Scalars(int64(rng.IntN(5)+1), 0, 0, 0)
			if rng.IntN(4) == 0 {
				p := uint32(rng.IntN(100))
				r = r.WithPorts(resources.Ranges{{Begin: p, End: p}})
			}
			i := h.find(c)
			_, had := model[c.slot]
			if (i >= 0) != had {
				t.Fatalf("seed %d step %d: find(%d) = %d, model has it: %v", seed, step, c.slot, i, had)
			}
			switch {
			case i < 0:
				h.addHolding(c.slot, r)
				model[c.slot] = r
			case rng.IntN(2) == 0:
				h.dropHolding(i)
				delete(model, c.slot)
			default:
				h.setHolding(i, r)
				model[c.slot] = r
			}
			if int(h.n) != len(model) || len(h.moreBy) != max(int(h.n)-inlineHeld, 0) || len(h.moreS) != len(h.moreBy) {
				t.Fatalf("seed %d step %d: %d holdings (%d spilled), model %d", seed, step, h.n, len(h.moreBy), len(model))
			}
			for j := range int(h.n) {
				if want, ok := model[h.key(j)]; !ok || !h.holding(j).Equal(want) {
					t.Fatalf("seed %d step %d: holding %d of %d = %v, want %v", seed, step, j, h.key(j), h.holding(j), want)
				}
			}
		}
	}
}

// TestHoldingsSpillInAllocator runs a small Churn: agents of 40 one-cpu
// tasks of 100 frameworks, a tenth of the tasks ending each round, so that
// agents come to hold more clients than fit inline; the books are checked
// after every round.
func TestHoldingsSpillInAllocator(t *testing.T) {
	a := New(Options{Seed: 3})
	for i := range 100 {
		must(t, a.AddFramework(FrameworkInfo{ID: fmtAny(i)}))
	}
	addAgents(t, a, 20, "cpus:40;mem:40Gi")
	task := mustParse("cpus:1;mem:1Gi")
	type tk struct{ fw, agent string }
	var tasks []tk
	rng := rand.New(rand.NewPCG(5, 6))
	spilled := false
	for round := range 60 {
		for range len(tasks) / 10 {
			j := rng.IntN(len(tasks))
			must(t, a.Recover(tasks[j].fw, DefaultRole, tasks[j].agent, task, 0, t0))
			tasks[j] = tasks[len(tasks)-1]
			tasks = tasks[:len(tasks)-1]
		}
		for _, o := range a.Allocate(t0) {
			for range o.Resources.Scalars[resources.CPUs] / 1000 {
				tasks = append(tasks, tk{o.FrameworkID, o.Agent})
			}
		}
		for _, ag := range a.agentList {
			spilled = spilled || ag.n > inlineHeld
		}
		if err := checkBooks(a); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if !spilled {
		t.Fatal("no agent held more than inlineHeld clients; the test does not cover spilling")
	}
}
