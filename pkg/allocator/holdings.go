package allocator

import "github.com/agora-sched/agora/pkg/resources"

// inlineHeld is how many holdings an agent keeps inside its own struct,
// and inlinePorts for how many of them it keeps the ports there too.
const (
	inlineHeld  = 16
	inlinePorts = 3
)

// An agent's holdings are what each client holds there: few per agent (at
// most one per client; in practice up to one per task). Recover finds the
// holding of a random (client, agent) pair, so its cost is the chain of
// dependent cache misses: the agent, then the holding. Keeping the first
// inlineHeld holdings inside the agent makes the second one a read of the
// same (already mapped) page instead of a pointer chase to another
// allocation; beyond that they spill to slices (agent.moreBy, moreS). The
// keys (client slots) are apart from the scalars, so that find scans one
// line for 16 holdings. Ports, which many clusters never use, are read
// only on agents where a holding may have some (heldPorts); they are kept
// inline for the first inlinePorts holdings (slice headers are 24 bytes),
// and in moreRanges, allocated when needed, for the others.

// find returns the index of c's holding on ag, or -1.
func (ag *agent) find(c *client) int {
	if c == nil {
		return -1
	}
	if i := ag.findInline(c.slot); i >= 0 {
		return i
	}
	if ag.n > inlineHeld {
		for i, s := range ag.moreBy {
			if s == c.slot {
				return inlineHeld + i
			}
		}
	}
	return -1
}

// findInline returns the index of slot's holding among ag's inline ones,
// or -1.
func (ag *agent) findInline(slot int32) int {
	for i, s := range ag.keys[:min(int(ag.n), inlineHeld)] {
		if s == slot {
			return i
		}
	}
	return -1
}

// key returns the client slot of holding i.
func (ag *agent) key(i int) int32 {
	if i < inlineHeld {
		return ag.keys[i]
	}
	return ag.moreBy[i-inlineHeld]
}

// scalarsOf returns the scalars of holding i, to read or update in place.
func (ag *agent) scalarsOf(i int) *scalars {
	if i < inlineHeld {
		return &ag.s[i]
	}
	return &ag.moreS[i-inlineHeld]
}

// portsOf returns the ports of holding i.
func (ag *agent) portsOf(i int) resources.Ranges {
	switch {
	case !ag.heldPorts:
		return nil
	case i < inlinePorts:
		return ag.ranges[i]
	case ag.moreRanges != nil:
		return ag.moreRanges[i-inlinePorts]
	}
	return nil
}

// setPorts sets the ports of holding i.
func (ag *agent) setPorts(i int, p resources.Ranges) {
	if len(p) == 0 && !ag.heldPorts {
		return
	}
	ag.heldPorts = true
	if i < inlinePorts {
		ag.ranges[i] = p
		return
	}
	if len(p) > 0 && ag.moreRanges == nil {
		ag.moreRanges = make([]resources.Ranges, int(ag.n)-inlinePorts)
	}
	if ag.moreRanges != nil {
		ag.moreRanges[i-inlinePorts] = p
	}
}

// holding returns holding i.
func (ag *agent) holding(i int) resources.Resources {
	return resources.Resources{Scalars: *ag.scalarsOf(i), Ports: ag.portsOf(i)}
}

// setHolding replaces holding i.
func (ag *agent) setHolding(i int, r resources.Resources) {
	*ag.scalarsOf(i) = r.Scalars
	ag.setPorts(i, r.Ports)
}

// addHolding appends a holding for slot.
func (ag *agent) addHolding(slot int32, r resources.Resources) {
	i := int(ag.n)
	if i < inlineHeld {
		ag.keys[i] = slot
	} else {
		ag.moreBy = append(ag.moreBy, slot)
		ag.moreS = append(ag.moreS, scalars{})
	}
	ag.n++
	if ag.moreRanges != nil {
		ag.moreRanges = append(ag.moreRanges, nil)
	}
	ag.setHolding(i, r)
}

// dropHolding removes holding i; the last one takes its place.
func (ag *agent) dropHolding(i int) {
	last := int(ag.n) - 1
	if i != last {
		*ag.scalarsOf(i) = *ag.scalarsOf(last)
		if i < inlineHeld {
			ag.keys[i] = ag.key(last)
		} else {
			ag.moreBy[i-inlineHeld] = ag.key(last)
		}
		ag.setPorts(i, ag.portsOf(last))
	}
	if last >= inlineHeld {
		ag.moreBy = ag.moreBy[:last-inlineHeld]
		ag.moreS = ag.moreS[:last-inlineHeld]
	} else {
		ag.keys[last], ag.s[last] = 0, scalars{}
	}
	ag.n--
	if !ag.heldPorts {
		return
	}
	if last < inlinePorts {
		ag.ranges[last] = nil
	} else if ag.moreRanges != nil {
		ag.moreRanges[last-inlinePorts] = nil
		ag.moreRanges = ag.moreRanges[:last-inlinePorts]
		if len(ag.moreRanges) == 0 {
			ag.moreRanges = nil
		}
	}
	if ag.n == 0 {
		ag.heldPorts = false
	}
}
