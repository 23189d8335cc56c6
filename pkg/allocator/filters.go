package allocator

import (
	"math"
	"math/bits"

	"github.com/agora-sched/agora/pkg/resources"
)

// Decline filters are the bulk of the allocator's state (Mesos' DeclineOffers
// benchmark ends with one filter per agent and framework: 10^7 of them at
// 10000 x 1000), and checking them is the inner loop of a round. So:
//
//   - Each agent keeps its filters in a flat, pointer-free slice (24 bytes a
//     filter, invisible to the garbage collector), with the refused
//     resources interned in a small per-agent table.
//   - Each agent keeps two bitsets indexed by client slot: hasFilter, and
//     covered = "a live filter refuses at least base", where base is the
//     agent's unreserved availability when the bits were computed. An offer
//     that is a subset of base is blocked by a covered bit without looking
//     at the filter, and an agent whose every eligible client is covered is
//     skipped in one popcount.
//   - Reviving a client bumps its slot generation, which kills its filters
//     everywhere at once; the dead records are dropped lazily.

// bitset is a set of client slots.
type bitset []uint64

func (b bitset) has(i int32) bool {
	w := int(i >> 6)
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

func (b *bitset) set(i int32) {
	w := int(i >> 6)
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}

func (b bitset) unset(i int32) {
	if w := int(i >> 6); w < len(b) {
		b[w] &^= 1 << (uint(i) & 63)
	}
}

func (b bitset) reset() { clear(b) }

// andCount counts the slots in both sets.
func andCount(x, y bitset) int {
	n := 0
	for i := range min(len(x), len(y)) {
		n += bits.OnesCount64(x[i] & y[i])
	}
	return n
}

// slot is a client's index in the bitsets; gen invalidates old filters.
type slot struct {
	c   *client
	gen uint32
}

type filterRec struct {
	until int64 // unix nanos; the filter blocks while now < until
	slot  int32
	gen   uint32
	ref   int32 // index in agent.refused
}

type refusedEntry struct {
	res  resources.Resources
	refs int32
}

// agentFilters is the filter state embedded in each agent.
type agentFilters struct {
	recs       []filterRec
	refused    []refusedEntry
	hasFilter  bitset
	covered    bitset
	base       resources.Resources
	baseOK     bool
	nextExpiry int64
}

func (a *Allocator) newSlot(c *client) int32 {
	if n := len(a.freeSlots); n > 0 {
		s := a.freeSlots[n-1]
		a.freeSlots = a.freeSlots[:n-1]
		a.slots[s].c = c
		return s
	}
	a.slots = append(a.slots, slot{c: c})
	return int32(len(a.slots) - 1)
}

// clearFilters drops every filter of c (revive, role or framework removal).
func (a *Allocator) clearFilters(c *client) {
	a.filters -= c.nFilters
	c.nFilters = 0
	a.slots[c.slot].gen++
	for _, ag := range a.agentList {
		ag.hasFilter.unset(c.slot)
		ag.covered.unset(c.slot)
	}
}

func (a *Allocator) freeSlot(c *client) {
	a.clearFilters(c)
	a.slots[c.slot].c = nil
	a.freeSlots = append(a.freeSlots, c.slot)
}

func (f *agentFilters) live(a *Allocator, r *filterRec, now int64) bool {
	s := a.slots[r.slot]
	return s.c != nil && s.gen == r.gen && r.until > now
}

func (f *agentFilters) intern(res resources.Resources) int32 {
	free := int32(-1)
	for i := range f.refused {
		e := &f.refused[i]
		if e.refs > 0 && e.res.Equal(res) {
			e.refs++
			return int32(i)
		}
		if e.refs == 0 && free < 0 {
			free = int32(i)
		}
	}
	if free >= 0 {
		f.refused[free] = refusedEntry{res: res, refs: 1}
		return free
	}
	f.refused = append(f.refused, refusedEntry{res: res, refs: 1})
	return int32(len(f.refused) - 1)
}

func (f *agentFilters) release(ref int32) {
	e := &f.refused[ref]
	if e.refs--; e.refs == 0 {
		e.res = resources.Resources{}
	}
}

// addFilter installs a filter for c on ag refusing res until the given
// time, merging with a filter it dominates or is dominated by.
func (a *Allocator) addFilter(ag *agent, c *client, res resources.Resources, until, now int64) {
	if until <= now || res.IsEmpty() {
		return // blocks nothing
	}
	f := &ag.agentFilters
	gen := a.slots[c.slot].gen
	if f.hasFilter.has(c.slot) {
		for i := range f.recs {
			r := &f.recs[i]
			if r.slot != c.slot || r.gen != gen || r.until <= now {
				continue
			}
			old := f.refused[r.ref].res
			if old.Contains(res) && r.until >= until {
				return // already refused for longer
			}
			if res.Contains(old) && until >= r.until {
				f.release(r.ref)
				r.ref, r.until = f.intern(res), until
				f.nextExpiry = min(f.nextExpiry, until)
				if f.baseOK && res.Contains(f.base) {
					f.covered.set(c.slot)
				}
				return
			}
		}
	}
	if len(f.recs) == cap(f.recs) && len(f.recs) > 0 {
		a.sweep(ag, now) // drop dead records before growing
	}
	f.recs = append(f.recs, filterRec{until: until, slot: c.slot, gen: gen, ref: f.intern(res)})
	f.hasFilter.set(c.slot)
	if f.baseOK && res.Contains(f.base) {
		f.covered.set(c.slot)
	}
	if len(f.recs) == 1 || until < f.nextExpiry {
		f.nextExpiry = until
	}
	c.nFilters++
	a.filters++
}

// sweep drops expired and dead records and recomputes the bits.
func (a *Allocator) sweep(ag *agent, now int64) {
	f := &ag.agentFilters
	n := 0
	f.nextExpiry = math.MaxInt64
	for _, r := range f.recs {
		if !f.live(a, &r, now) {
			if s := a.slots[r.slot]; s.c != nil && s.gen == r.gen { // expired, not revived
				s.c.nFilters--
				a.filters--
			}
			f.release(r.ref)
			continue
		}
		f.recs[n] = r
		n++
		f.nextExpiry = min(f.nextExpiry, r.until)
	}
	clear(f.recs[n:])
	f.recs = f.recs[:n]
	if n == 0 {
		f.recs = nil // give the memory back
		f.refused = f.refused[:0]
	}
	f.rebuild(a, f.base)
}

// rebuild recomputes the bits against base.
func (f *agentFilters) rebuild(a *Allocator, base resources.Resources) {
	f.hasFilter.reset()
	f.covered.reset()
	f.base, f.baseOK = base, true
	for i := range f.recs {
		r := &f.recs[i]
		s := a.slots[r.slot]
		if s.c == nil || s.gen != r.gen {
			continue
		}
		f.hasFilter.set(r.slot)
		if f.refused[r.ref].res.Contains(base) {
			f.covered.set(r.slot)
		}
	}
}

// refresh brings ag's filter bits up to date for availability unres.
func (a *Allocator) refresh(ag *agent, unres resources.Resources, now int64) {
	f := &ag.agentFilters
	if len(f.recs) == 0 {
		f.base, f.baseOK = unres, true
		return
	}
	if now >= f.nextExpiry {
		f.base = unres
		a.sweep(ag, now)
		return
	}
	if !f.baseOK || !f.base.Equal(unres) {
		f.rebuild(a, unres)
	}
}

// blocked reports whether a filter of c on ag blocks offer o. inBase and
// eqBase say how o compares with the base of the bits (see refresh).
func (a *Allocator) blocked(ag *agent, c *client, o resources.Resources, inBase, eqBase bool, now int64) bool {
	f := &ag.agentFilters
	if !f.hasFilter.has(c.slot) {
		return false
	}
	if inBase && f.covered.has(c.slot) {
		return true
	}
	if eqBase {
		return false
	}
	gen := a.slots[c.slot].gen
	for i := range f.recs {
		r := &f.recs[i]
		if r.slot == c.slot && r.gen == gen && r.until > now && f.refused[r.ref].res.Contains(o) {
			return true
		}
	}
	return false
}
