package allocator

import "github.com/agora-sched/agora/pkg/resources"

// inlineHeld is how many holdings an agent keeps inside its own struct,
// and inlinePorts for how many of them it keeps the ports there too.
const (
	inlineHeld  = 16
	inlinePorts = 3
)

// holdings is what each client holds on one agent: few per agent (at most
// one per client; in practice up to one per task). Recover finds the
// holding of a random (client, agent) pair, so its cost is the chain of
// dependent cache misses: the agent, then the holding. Keeping the first
// inlineHeld holdings inside the agent makes the second one a read of the
// same (already mapped) page instead of a pointer chase to another
// allocation; beyond that they spill to slices. Keys (client slots) are
// apart from the scalars, so that find scans 64 bytes for 16 holdings.
// Ports, which many clusters never use, are kept inline for the first
// inlinePorts holdings only (slice headers are 24 bytes); the rest get an
// array only on agents where some of them has ports.
type holdings struct {
	moreBy     []int32   // keys of holdings inlineHeld and up
	moreS      []scalars // their scalars
	ranges     [inlinePorts]resources.Ranges
	moreRanges []resources.Ranges // ports of holdings inlinePorts and up; nil while none has any
	n          int32              // number of holdings
	keys       [inlineHeld]int32
	s          [inlineHeld]scalars
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
	if i < inlinePorts {
		return h.ranges[i]
	}
	if h.moreRanges != nil {
		return h.moreRanges[i-inlinePorts]
	}
	return nil
}

// setPorts sets the ports of holding i.
func (h *holdings) setPorts(i int, p resources.Ranges) {
	if i < inlinePorts {
		h.ranges[i] = p
		return
	}
	if len(p) > 0 && h.moreRanges == nil {
		h.moreRanges = make([]resources.Ranges, int(h.n)-inlinePorts)
	}
	if h.moreRanges != nil {
		h.moreRanges[i-inlinePorts] = p
	}
}

// holding returns holding i.
func (h *holdings) holding(i int) resources.Resources {
	return resources.Resources{Scalars: *h.scalarsOf(i), Ports: h.portsOf(i)}
}

// setHolding replaces holding i.
func (h *holdings) setHolding(i int, r resources.Resources) {
	*h.scalarsOf(i) = r.Scalars
	h.setPorts(i, r.Ports)
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
	if h.moreRanges != nil {
		h.moreRanges = append(h.moreRanges, nil)
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
		h.setPorts(i, h.portsOf(last))
	}
	if last < inlinePorts {
		h.ranges[last] = nil
	} else if h.moreRanges != nil {
		h.moreRanges[last-inlinePorts] = nil
		h.moreRanges = h.moreRanges[:last-inlinePorts]
		if len(h.moreRanges) == 0 {
			h.moreRanges = nil
		}
	}
	if last >= inlineHeld {
		h.moreBy = h.moreBy[:last-inlineHeld]
		h.moreS = h.moreS[:last-inlineHeld]
	} else {
		h.keys[last], h.s[last] = 0, scalars{}
	}
	h.n--
}
