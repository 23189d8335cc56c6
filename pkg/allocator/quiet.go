package allocator

import "math"

// Quiet agents. A round reads every reachable agent: a cache miss, and
// past the TLB's reach (about 16 MB here, 16,000 agents of 1 KiB) a page
// walk too. In a round that offers nothing, for instance once every
// framework has declined every agent, those reads are the whole round,
// and they made such rounds grow three to four times from 10,000 to
// 20,000 agents. An agent that had nothing to offer anyone eligible
// (nothing allocatable, or every eligible client filtered for all of it)
// stays so until something about it changes, its earliest filter expires,
// or the eligible set or some client's filters change. A round notes such
// agents in a dense array of 16 bytes an agent, and later rounds skip
// them without reading them until then.
//
// What can end quietness: unbook (resources come back) and UpdateAgent
// call disturb; a changed eligible set and clearFilters (revive, a role
// or framework leaving) call disturbAll. Booking more on an agent, or a
// new filter (addFilter only adds a filter or widens one), only shrinks
// what it could offer; an unreachable agent is not visited, and what
// changes it meanwhile disturbs it.

// quietMark says that agentList[i] had nothing to offer at epoch, until.
type quietMark struct {
	until int64  // nanoseconds: its earliest filter expiry, or never
	epoch uint32 // Allocator.quietEpoch when noted; 0 matches nothing
}

const neverExpires = math.MaxInt64

// isQuiet reports whether the agent at agentList[i] may be skipped.
func (a *Allocator) isQuiet(i int32, now int64) bool {
	m := &a.quiet[i]
	return m.epoch == a.quietEpoch && now < m.until
}

// noteQuiet records that ag has nothing to offer the eligible set until until.
func (a *Allocator) noteQuiet(ag *agent, until int64) {
	a.quiet[ag.idx] = quietMark{until: until, epoch: a.quietEpoch}
	ag.quiet = true
}

// disturb forgets that ag was quiet: something about it changed. The flag
// and idx share the agent's first line, which every change reads anyway.
func (a *Allocator) disturb(ag *agent) {
	if ag.quiet {
		ag.quiet = false
		a.quiet[ag.idx] = quietMark{}
	}
}

// disturbAll forgets every quiet agent.
func (a *Allocator) disturbAll() {
	a.quietEpoch++
	if a.quietEpoch == 0 { // wrapped: marks this old could match again
		clear(a.quiet)
		a.quietEpoch = 1
	}
}

// noteEligible starts a new epoch if the round's eligible set differs from
// the last round's.
func (a *Allocator) noteEligible() {
	if !a.eligible.equal(a.lastEligible) {
		a.lastEligible = append(a.lastEligible[:0], a.eligible...)
		a.disturbAll()
	}
}
