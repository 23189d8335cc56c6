package allocator

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestAgentIndex drives the index with random adds and removes (the
// allocator's swap-remove of its list included) against a map, through growth and
// probe runs that wrap around the table.
func TestAgentIndex(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		x := newAgentIndex()
		var list []*agent
		model := map[string]*agent{}
		for step := range 3000 {
			if len(list) > 0 && rng.IntN(3) == 0 {
				ag := list[rng.IntN(len(list))]
				x.remove(ag.name)
				last := list[len(list)-1]
				list[ag.idx], last.idx = last, ag.idx
				list = list[:len(list)-1]
				delete(model, ag.name)
			} else {
				name := fmt.Sprintf("a%d", rng.IntN(400))
				if model[name] != nil {
					continue
				}
				ag := &agent{name: name, idx: int32(len(list))}
				list = append(list, ag)
				x.put(ag)
				model[name] = ag
			}
			if x.n != len(model) {
				t.Fatalf("seed %d step %d: %d entries, want %d", seed, step, x.n, len(model))
			}
			for i := range 400 {
				name := fmt.Sprintf("a%d", i)
				if got := x.get(name); got != model[name] {
					t.Fatalf("seed %d step %d: get(%s) = %v, want %v", seed, step, name, got, model[name])
				}
			}
		}
	}
}
