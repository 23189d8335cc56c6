package allocator

import (
	"slices"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

// Allocate runs one allocation round at time now and returns the offers to
// make, in the order they were decided. Their resources are counted as
// allocated (to the framework in the offer's role, on the agent) until they
// come back through Recover. An agent's remaining resources in a round go
// to the first framework in DRF order that is eligible for them: active,
// subscribed to and not suppressed in the role, not filtered on the agent
// for that offer, GPU-aware if the agent has GPUs, and with quota left.
// At most one offer is made per framework, role and agent in a round.
//
// The Offer values share port slices with the allocator's books; treat them
// as read-only (as every resources value is).
func (a *Allocator) Allocate(now time.Time) []Offer {
	return a.AllocateAppend(now, nil)
}

// AllocateAppend is Allocate, appending the round's offers to dst and
// returning the extended slice (dst itself if the round offers nothing). A
// caller that is done with the previous round's offers passes them back
// as offers[:0], so that a round writes its offers into memory already in
// use instead of a new slice (104 bytes an offer, about 2 MB a round at
// 20000 agents), which also spares the collector most of its work.
func (a *Allocator) AllocateAppend(now time.Time, dst []Offer) []Offer {
	a.round++
	nowN := nowNanos(now)
	unsatisfied := a.prepare()
	if a.nEligible == 0 {
		a.lastOffers = 0
		return dst
	}
	a.order = a.order[:0]
	for i, ag := range a.agentList {
		if a.unreachable == 0 || ag.reachable { // without reading every agent when all are
			a.order = append(a.order, int32(i))
		}
	}
	a.rng.Shuffle(len(a.order), func(i, j int) { a.order[i], a.order[j] = a.order[j], a.order[i] })

	out := slices.Grow(dst, a.lastOffers+a.lastOffers/8+8) // rounds vary; growing copies it all
	a.stage1 = unsatisfied
	if unsatisfied {
		a.visitAll(1, nowN, &out)
	}
	a.visitAll(2, nowN, &out)
	a.lastOffers = len(out) - len(dst)
	return out
}

// visitAll visits the agents in the round's order, prefetching each
// agent's lines a few visits ahead (prefetch.go). Quiet agents (quiet.go)
// are left out unread.
func (a *Allocator) visitAll(stage int, now int64, out *[]Offer) {
	list := a.visitList[:0]
	for _, j := range a.order {
		if !a.isQuiet(j, now) {
			list = append(list, a.agentList[j])
		}
	}
	ahead := func(i int) {
		if k := i + 2*prefetchAhead; k < len(list) {
			prefetchHead(list[k])
		}
		if k := i + prefetchAhead; 0 <= k && k < len(list) {
			a.prefetchVisit(list[k])
		}
	}
	for i := -2 * prefetchAhead; i < 0; i++ { // fill the pipeline
		ahead(i)
	}
	for i, ag := range list {
		ahead(i)
		a.visit(ag, stage, now, out)
	}
	clear(list) // the scratch keeps no removed agent alive
	a.visitList = list[:0]
}

// prepare sorts the role tree and frameworks for the round and marks the
// eligible clients. It reports whether some guarantee is unsatisfied.
func (a *Allocator) prepare() bool {
	a.sortTree(a.root)
	a.eligible.reset()
	a.nEligible, a.nGPUAware = 0, 0
	a.markEligible(a.root)
	a.noteEligible()
	return a.computeRequired()
}

func (a *Allocator) markEligible(n *roleNode) {
	for _, k := range n.kids {
		if !k.isLeaf() {
			a.markEligible(k)
			continue
		}
		for _, c := range k.order {
			a.eligible.set(c.slot)
			a.nEligible++
			if c.fw.gpuAware {
				a.nGPUAware++
			}
		}
	}
}

// visit offers what is left on ag, framework by framework in DRF order,
// until nothing allocatable is left or nobody eligible wants it.
func (a *Allocator) visit(ag *agent, stage int, now int64, out *[]Offer) {
	if ag.hasGPUs && a.nGPUAware == 0 {
		return
	}
	quota := len(a.guaranteed) > 0 || a.anyLimit
	a.visitOffs = a.visitOffs[:0]
	for {
		unres := ag.unreserved()
		resv := ag.hasReserved && ag.anyReservedFree()
		if !resv && !a.allocatable(&unres.Scalars) {
			a.noteQuiet(ag, neverExpires)
			return
		}
		a.refresh(ag, unres, now)
		// Every eligible client has a filter refusing all of it.
		if !resv && ag.filtered && ag.bits.coveredAmong(a.eligible) == a.nEligible {
			a.noteQuiet(ag, ag.nextExpiry)
			return
		}
		c, o := a.pick(a.root, ag, unres, stage, quota, now)
		if c == nil {
			return
		}
		a.offer(ag, c, o, stage, out)
	}
}

func (ag *agent) anyReservedFree() bool {
	for role := range ag.reserved {
		if _, ok := ag.reservedFree(role); ok {
			return true
		}
	}
	return false
}

// pick walks the role tree in DRF order and returns the first eligible
// client with its offer.
func (a *Allocator) pick(n *roleNode, ag *agent, unres resources.Resources, stage int, quota bool, now int64) (*client, resources.Resources) {
	for _, k := range n.kids {
		if !k.isLeaf() {
			if c, o := a.pick(k, ag, unres, stage, quota, now); c != nil {
				return c, o
			}
			continue
		}
		o, same, ok := a.roleOffer(ag, k.owner, unres, stage, quota)
		if !ok {
			continue
		}
		inBase, eqBase := true, true
		if !same {
			inBase = unres.Contains(o)
			eqBase = inBase && o.Equal(unres)
		}
		for _, c := range k.order {
			if ag.hasGPUs && !c.fw.gpuAware || c.fw.budget == 0 {
				continue
			}
			if a.blocked(ag, c, o, inBase, eqBase, now) {
				continue
			}
			return c, o
		}
	}
	return nil, resources.Resources{}
}

// offer books o for c and restores the DRF order of c and its roles, which
// are the only keys that changed.
func (a *Allocator) offer(ag *agent, c *client, o resources.Resources, stage int, out *[]Offer) {
	leaf := c.role.self
	ci := indexClient(leaf.order, c)
	a.pos = a.pos[:0]
	for x := leaf; x != a.root; x = x.parent {
		a.pos = append(a.pos, indexRole(x.parent.kids, x))
	}
	if err := a.book(ag, c, o); err != nil {
		return // o was computed from ag's free resources: cannot happen
	}
	if len(a.guaranteed) > 0 {
		a.computeRequired() // the headroom owed shrank if c's role was owed
	}
	c.allocations++
	c.share = a.share(&c.alloc)
	moveClient(leaf.order, ci)
	i := 0
	for x := leaf; x != a.root; x = x.parent {
		x.allocations++
		w := x.weight
		if x.isLeaf() {
			w = x.owner.weight
		}
		x.share = a.share(&x.alloc) / w
		moveRole(x.parent.kids, a.pos[i])
		i++
	}

	if j := a.earlierOffer(ag, c, *out); j >= 0 {
		(*out)[j].Resources = (*out)[j].Resources.Add(o)
		return
	}
	j := int32(len(*out))
	a.visitOffs = append(a.visitOffs, j)
	if stage == 1 {
		if ag.roundSeen != a.round {
			ag.roundSeen = a.round
			ag.roundOffers = ag.roundOffers[:0]
		}
		ag.roundOffers = append(ag.roundOffers, j)
	}
	if c.fw.budget > 0 {
		c.fw.budget--
	}
	*out = append(*out, Offer{FrameworkID: c.fw.id, Role: c.role.name, Agent: ag.name, Resources: o, Ref: AgentRef{ag}})
}

// earlierOffer returns the index in out of this round's offer to c on ag,
// or -1: a framework gets one offer per role and agent in a round. Offers
// on ag come from its stage 1 visit (kept on the agent, a cold line read
// only when stage 1 ran) and from the current visit (kept in scratch).
func (a *Allocator) earlierOffer(ag *agent, c *client, out []Offer) int {
	same := func(j int32) bool {
		return out[j].FrameworkID == c.fw.id && out[j].Role == c.role.name
	}
	for _, j := range a.visitOffs {
		if same(j) {
			return int(j)
		}
	}
	if a.stage1 && ag.roundSeen == a.round {
		for _, j := range ag.roundOffers {
			if same(j) {
				return int(j)
			}
		}
	}
	return -1
}
