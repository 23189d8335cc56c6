package allocator

import "unsafe"

// Prefetching. A round visits agents in a random order, and each visit
// starts with cache misses (and past the TLB's reach, page walks) on an
// agent at a random address and on its filter state, found through it.
// At 20,000 agents what a round reads no longer fits in the cache, and
// those misses were what made a round at 20,000 agents cost more than
// twice one at 10,000 (docs/benchmarks.md).
//
// Go has no prefetch, and a plain load that misses stalls the processor
// once it is the oldest unfinished instruction; reading a batch of agents
// ahead of their visits (how this package did it before) overlapped the
// misses of a batch, but every batch still waited for its slowest one.
// The processor's prefetch instruction (prefetch_*.s) does not wait: so
// visitAll and RecoverAll run a two-step pipeline. While they work on the
// i-th visit or call, they prefetch the first lines of the agent of the
// one at i+2*prefetchAhead (prefetchHead), and the lines found through the
// agent of the one at i+prefetchAhead (prefetchVisit, prefetchRecover),
// whose first lines arrived meanwhile.
// Each call passes addresses only: nothing read ahead changes what the
// calls do.

// prefetchAhead is the pipeline's distance, in agents. From 4 to 32 made no
// difference at 20,000 agents; the latency to hide is one memory access.
const prefetchAhead = 8

// headLines is how many of an agent's lines prefetchHead fetches: line 0
// (free scalars, name, flags, holding count), line 1 (holding keys), and
// lines 2-4 (filter state: records, bits, next expiry, base, refused).
const headLines = 5

// prefetchHead prefetches ag's first lines.
func prefetchHead(ag *agent) {
	if ag != nil {
		prefetchLines(uintptr(unsafe.Pointer(ag)), headLines)
	}
}

// prefetchVisit prefetches what a visit of ag reads beyond its first
// lines: its filter bits, and where an offer is booked (the holding's
// scalars, and the ports of the holdings when some may have ports).
func (a *Allocator) prefetchVisit(ag *agent) {
	if ag.filtered {
		ag.bits.prefetch()
	}
	if n := int(ag.n); n < inlineHeld && a.allocatable(&ag.freeS) {
		ag.prefetchHoldings(0, n+1)
	}
}

// prefetchRecover prefetches what a Recover on ag reads beyond its first
// lines: c's holding (all inline holdings if c is nil) and, for a decline,
// the filter state it adds to. ag may be a guess (a stale handle), and c
// one dropped since: only addresses are taken from them.
func prefetchRecover(ag *agent, c *client, decline bool) {
	if ag == nil {
		return
	}
	if decline && ag.filtered {
		ag.bits.prefetch()
		// Each slice is read once: a guess's slice must not change
		// between its length and its element.
		if recs := ag.recs; len(recs) > 0 {
			prefetchRange(unsafe.Pointer(&recs[len(recs)-1]), 2*unsafe.Sizeof(recs[0])) // the last, and where the next goes
		}
		if refused := ag.refused; len(refused) > 0 {
			prefetchRange(unsafe.Pointer(&refused[0]), unsafe.Sizeof(refused[0]))
		}
	}
	if c == nil {
		ag.prefetchHoldings(0, min(int(ag.n), inlineHeld))
	} else if i := ag.findInline(c.slot); i >= 0 {
		// An agent holds for about one client per task: of its
		// holdings' lines, a Recover reads one.
		ag.prefetchHoldings(i, i+1)
	}
}

// prefetchHoldings prefetches the scalars of ag's inline holdings from to
// end-1, and the inline ports if some holding may have ports.
func (ag *agent) prefetchHoldings(from, end int) {
	if from >= end {
		return
	}
	prefetchRange(unsafe.Pointer(&ag.s[from]), uintptr(end-from)*unsafe.Sizeof(ag.s[0]))
	if ag.heldPorts {
		prefetchRange(unsafe.Pointer(&ag.ranges[0]), unsafe.Offsetof(ag.moreRanges)+unsafe.Sizeof(ag.moreRanges)-unsafe.Offsetof(ag.ranges))
	}
}

// prefetch prefetches the lines of b.
func (b filterBits) prefetch() {
	if len(b) > 0 {
		prefetchRange(unsafe.Pointer(&b[0]), uintptr(len(b))*8)
	}
}

// prefetchRange prefetches the lines of the size bytes from p on.
func prefetchRange(p unsafe.Pointer, size uintptr) {
	prefetchLines(uintptr(p)&^63, linesOf(uintptr(p), size))
}

// linesOf is how many cache lines the size bytes from address p span.
func linesOf(p, size uintptr) int {
	from := p &^ 63
	return int((p + size - from + 63) / 64)
}
