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
//     skipped in one popcount. The two share one allocation (filterBits).
//   - Reviving a client bumps its slot generation, which kills its filters
//     everywhere at once; the dead records are dropped lazily.

// bitset is a set of client slots (the round's eligible clients).
type bitset []uint64

func (b *bitset) set(i int32) {
	w := int(i >> 6)
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	(*b)[w] |= 1 << (uint(i) & 63)
}

func (b bitset) reset() { clear(b) }

// equal reports whether b and o hold the same bits, whatever their lengths.
func (b bitset) equal(o bitset) bool {
	if len(b) < len(o) {
		b, o = o, b
	}
	for i, w := range b {
		if i < len(o) && w != o[i] || i >= len(o) && w != 0 {
			return false
		}
	}
	return true
}

// filterBits is an agent's hasFilter and covered bitsets interleaved word
// by word (hasFilter in even words, covered in odd ones) in one slice: a
// client's two bits share a cache line, and the agent's filter state is one
// allocation (and page) fewer to reach. covered is a subset of hasFilter.
type filterBits []uint64

func (b filterBits) bit(i int32, odd int) bool {
	w := 2*int(i>>6) + odd
	return w < len(b) && b[w]&(1<<(uint(i)&63)) != 0
}

func (b filterBits) hasFilter(i int32) bool { return b.bit(i, 0) }
func (b filterBits) covers(i int32) bool    { return b.bit(i, 1) }

// set sets i's hasFilter bit, and its covered bit if covered.
func (b *filterBits) set(i int32, covered bool) {
	w := 2 * int(i>>6)
	for w+1 >= len(*b) {
		*b = append(*b, 0, 0)
	}
	m := uint64(1) << (uint(i) & 63)
	(*b)[w] |= m
	if covered {
		(*b)[w+1] |= m
	}
}

// unset clears both of i's bits.
func (b filterBits) unset(i int32) {
	if w := 2 * int(i>>6); w < len(b) {
		m := uint64(1) << (uint(i) & 63)
		b[w] &^= m
		b[w+1] &^= m
	}
}

func (b filterBits) reset() { clear(b) }

// coveredAmong counts the covered slots that are in set.
func (b filterBits) coveredAmong(set bitset) int {
	n := 0
	for i := range min(len(b)/2, len(set)) {
		n += bits.OnesCount64(b[2*i+1] & set[i])
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
	a.disturbAll()
	for _, ag := range a.agentList {
		if ag.filtered {
			ag.bits.unset(c.slot)
		}
	}
}

func (a *Allocator) freeSlot(c *client) {
	a.clearFilters(c)
	a.slots[c.slot].c = nil
	a.freeSlots = append(a.freeSlots, c.slot)
}

func (ag *agent) live(a *Allocator, r *filterRec, now int64) bool {
	s := a.slots[r.slot]
	return s.c != nil && s.gen == r.gen && r.until > now
}

func (ag *agent) intern(res resources.Resources) int32 {
	free := int32(-1)
	for i := range ag.refused {
		e := &ag.refused[i]
		if e.refs > 0 && e.res.Equal(res) {
			e.refs++
			return int32(i)
		}
		if e.refs == 0 && free < 0 {
			free = int32(i)
		}
	}
	if free >= 0 {
		ag.refused[free] = refusedEntry{res: res, refs: 1}
		return free
	}
	ag.refused = append(ag.refused, refusedEntry{res: res, refs: 1})
	return int32(len(ag.refused) - 1)
}

func (ag *agent) release(ref int32) {
	e := &ag.refused[ref]
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
	gen := a.slots[c.slot].gen
	if ag.bits.hasFilter(c.slot) {
		for i := range ag.recs {
			r := &ag.recs[i]
			if r.slot != c.slot || r.gen != gen || r.until <= now {
				continue
			}
			old := ag.refused[r.ref].res
			if old.Contains(res) && r.until >= until {
				return // already refused for longer
			}
			if res.Contains(old) && until >= r.until {
				ag.release(r.ref)
				r.ref, r.until = ag.intern(res), until
				ag.nextExpiry = min(ag.nextExpiry, until)
				if ag.baseOK && res.Contains(ag.base) {
					ag.bits.set(c.slot, true)
				}
				return
			}
		}
	}
	if len(ag.recs) == cap(ag.recs) && len(ag.recs) > 0 {
		a.sweep(ag, now) // drop dead records before growing
	}
	ag.recs = append(ag.recs, filterRec{until: until, slot: c.slot, gen: gen, ref: ag.intern(res)})
	ag.filtered = true
	ag.bits.set(c.slot, ag.baseOK && res.Contains(ag.base))
	if len(ag.recs) == 1 || until < ag.nextExpiry {
		ag.nextExpiry = until
	}
	c.nFilters++
	a.filters++
}

// sweep drops expired and dead records and recomputes the bits.
func (a *Allocator) sweep(ag *agent, now int64) {
	n := 0
	ag.nextExpiry = math.MaxInt64
	for _, r := range ag.recs {
		if !ag.live(a, &r, now) {
			if s := a.slots[r.slot]; s.c != nil && s.gen == r.gen { // expired, not revived
				s.c.nFilters--
				a.filters--
			}
			ag.release(r.ref)
			continue
		}
		ag.recs[n] = r
		n++
		ag.nextExpiry = min(ag.nextExpiry, r.until)
	}
	clear(ag.recs[n:])
	ag.recs = ag.recs[:n]
	ag.filtered = n > 0
	if n == 0 {
		ag.recs = nil // give the memory back
		ag.refused = ag.refused[:0]
	}
	ag.rebuild(a, ag.base)
}

// rebuild recomputes the bits against base.
func (ag *agent) rebuild(a *Allocator, base resources.Resources) {
	ag.bits.reset()
	ag.base, ag.baseOK = base, true
	for i := range ag.recs {
		r := &ag.recs[i]
		s := a.slots[r.slot]
		if s.c == nil || s.gen != r.gen {
			continue
		}
		ag.bits.set(r.slot, ag.refused[r.ref].res.Contains(base))
	}
}

// refresh brings ag's filter bits up to date for availability unres.
// The bits are always right for base, whatever it is; an agent without
// filters keeps a stale base rather than writing one more cache line per
// visit, and the first refresh after a filter arrives corrects it.
func (a *Allocator) refresh(ag *agent, unres resources.Resources, now int64) {
	if !ag.filtered {
		return
	}
	if now >= ag.nextExpiry {
		ag.base = unres
		a.sweep(ag, now)
		return
	}
	// In place: a copy of base would load its ports' capacity, on the
	// agent's next cache line, which nothing else in a visit reads.
	if !ag.baseOK || !ag.base.EqualTo(&unres) {
		ag.rebuild(a, unres)
	}
}

// blocked reports whether a filter of c on ag blocks offer o. inBase and
// eqBase say how o compares with the base of the bits (see refresh).
func (a *Allocator) blocked(ag *agent, c *client, o resources.Resources, inBase, eqBase bool, now int64) bool {
	if !ag.filtered {
		return false
	}
	if inBase && ag.bits.covers(c.slot) {
		return true // covered implies hasFilter
	}
	if !ag.bits.hasFilter(c.slot) {
		return false
	}
	if eqBase {
		return false
	}
	gen := a.slots[c.slot].gen
	for i := range ag.recs {
		r := &ag.recs[i]
		if r.slot == c.slot && r.gen == gen && r.until > now && ag.refused[r.ref].res.Contains(o) {
			return true
		}
	}
	return false
}
