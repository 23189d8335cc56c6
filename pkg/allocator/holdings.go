package allocator

import "github.com/agora-sched/agora/pkg/resources"

// inlineHeld is how many holdings an agent keeps inside its own struct.
const inlineHeld = 16

// holdings is what each client holds on one agent: few per agent (at most
// one per client; in practice up to one per task). Recover finds the
// holding of a random (client, agent) pair, so its cost is the chain of
// dependent cache misses: the agent, then the holding. Keeping the first
// inlineHeld holdings inside the agent makes the second one a read of the
// same (already mapped) page instead of a pointer chase to another
// allocation; beyond that they spill to slices. Keys (client slots) are
// apart from the scalars, so that find scans 64 bytes for 16 holdings.
// Ports, which many clusters never use, get an array only on agents where
// some holding has them. Only that array holds pointers.
type holdings struct {
	n      int32 // number of holdings
	ports  bool  // some holding has ports: ranges is in use
	keys   [inlineHeld]int32
	s      [inlineHeld]scalars
	moreBy []int32   // keys of holdings inlineHeld and up
	moreS  []scalars // their scalars
	ranges []resources.Ranges
}

// find returns the index of c's holding on ag, or -1.
func (h *holdings) find(c *client) int {
	if c == nil {
		return -1
	}
	n := int(h.n)
	for i, s := range h.keys[:min(n, inlineHeld)] {
		if s == c.slot {
			return i
		}
	}
	if n > inlineHeld {
		for i, s := range h.moreBy {
			if s == c.slot {
				return inlineHeld + i
			}
		}
	}
	return -1
}

// key returns the client slot of holding i.
func (h *holdings) key(i int) int32 {
	if i < inlineHeld {
		return h.keys[i]
	}
	return h.moreBy[i-inlineHeld]
}

// scalarsOf returns the scalars of holding i, to read or update in place.
func (h *holdings) scalarsOf(i int) *scalars {
	if i < inlineHeld {
		return &h.s[i]
	}
	return &h.moreS[i-inlineHeld]
}

// portsOf returns the ports of holding i.
func (h *holdings) portsOf(i int) resources.Ranges {
	if h.ports {
		return h.ranges[i]
	}
	return nil
}

// holding returns holding i.
func (h *holdings) holding(i int) resources.Resources {
	return resources.Resources{Scalars: *h.scalarsOf(i), Ports: h.portsOf(i)}
}

// setHolding replaces holding i.
func (h *holdings) setHolding(i int, r resources.Resources) {
	*h.scalarsOf(i) = r.Scalars
	if len(r.Ports) > 0 && !h.ports {
		h.ports = true
		h.ranges = make([]resources.Ranges, h.n)
	}
	if h.ports {
		h.ranges[i] = r.Ports
	}
}

// addHolding appends a holding for slot.
func (h *holdings) addHolding(slot int32, r resources.Resources) {
	i := int(h.n)
	if i < inlineHeld {
		h.keys[i] = slot
	} else {
		h.moreBy = append(h.moreBy, slot)
		h.moreS = append(h.moreS, scalars{})
	}
	h.n++
	if h.ports {
		h.ranges = append(h.ranges, nil)
	}
	h.setHolding(i, r)
}

// dropHolding removes holding i; the last one takes its place.
func (h *holdings) dropHolding(i int) {
	last := int(h.n) - 1
	if i != last {
		*h.scalarsOf(i) = *h.scalarsOf(last)
		if i < inlineHeld {
			h.keys[i] = h.key(last)
		} else {
			h.moreBy[i-inlineHeld] = h.key(last)
		}
	}
	if last >= inlineHeld {
		h.moreBy = h.moreBy[:last-inlineHeld]
		h.moreS = h.moreS[:last-inlineHeld]
	} else {
		h.keys[last], h.s[last] = 0, scalars{}
	}
	h.n--
	if h.ports {
		h.ranges[i] = h.ranges[last]
		h.ranges[last] = nil
		h.ranges = h.ranges[:last]
		if last == 0 {
			h.ports, h.ranges = false, nil
		}
	}
}
