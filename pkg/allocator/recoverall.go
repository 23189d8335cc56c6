package allocator

import (
	"errors"
	"slices"
	"time"
	"unsafe"

	"github.com/agora-sched/agora/pkg/resources"
)

// Recovery is the arguments of one Recover call.
type Recovery struct {
	FrameworkID, Role, Agent string
	Resources                resources.Resources
	Refuse                   time.Duration
	Ref                      AgentRef // optional: the agent's handle, from its Offer
}

// RecoverAll makes the Recover calls rs at time now and returns the errors
// of those that fail, joined, in the order of rs. The result is that of
// calling Recover for each in turn and going on past failures (a failing
// Recover changes nothing).
//
// Its calls on one agent are made in the order given, but calls on
// different agents may be made in another order: with many calls they are
// grouped by where their agents lie in memory. Tasks end, and offers are
// declined, in no order, so one Recover after another reads agents at
// random addresses, each a cache miss; grouped, the calls sweep the agents
// in address order, and calls on agents next to each other share pages
// and the processor's prefetches. That is the same result: a call on one
// agent changes only that agent's books and sums over clients, and whether
// a call can be made depends only on the earlier calls on its agent (a
// client is dropped only once it holds nothing anywhere).
func (a *Allocator) RecoverAll(rs []Recovery, now time.Time) error {
	ags, cs, order := a.groupByAgent(rs)
	defer clear(ags) // the scratch keeps no removed agent or client alive
	defer clear(cs)
	// call is the index in rs of the k-th call; guess is rs[j]'s agent,
	// perhaps a stale handle's; client is its client when the calls
	// began (nil: none, or not looked up).
	call := func(k int) int {
		if order != nil {
			return int(order[k])
		}
		return k
	}
	guess := func(j int) *agent {
		if ags != nil {
			return ags[j]
		}
		return rs[j].Ref.ag
	}
	client := func(j int) *client {
		if cs != nil {
			return cs[j]
		}
		return nil
	}
	ahead := func(k int) {
		if n := k + 2*prefetchAhead; n < len(rs) {
			j := call(n)
			// The calls are read in the agents' order, not their own.
			prefetchRange(unsafe.Pointer(&rs[j]), unsafe.Sizeof(rs[j]))
			prefetchHead(guess(j))
		}
		if n := k + prefetchAhead; 0 <= n && n < len(rs) {
			j := call(n)
			prefetchRecover(guess(j), client(j), rs[j].Refuse > 0)
		}
	}
	for k := -2 * prefetchAhead; k < 0; k++ { // fill the pipeline
		ahead(k)
	}
	var failed []indexedError
	for k := range rs {
		ahead(k)
		j := call(k)
		r := &rs[j]
		ag := guess(j)
		if ag == nil || ag.idx < 0 || ag.name != r.Agent {
			ag = a.agents.get(r.Agent)
		}
		if err := a.recoverOn(ag, client(j), r.FrameworkID, r.Role, r.Agent, r.Resources, r.Refuse, now); err != nil {
			failed = append(failed, indexedError{j, err})
		}
	}
	slices.SortFunc(failed, func(x, y indexedError) int { return x.i - y.i })
	errs := make([]error, len(failed))
	for k, f := range failed {
		errs[k] = f.err
	}
	return errors.Join(errs...)
}

type indexedError struct {
	i   int
	err error
}

// Grouping RecoverAll's calls by agent: below groupMin calls, sorting costs
// more than it saves (a variable so that the property tests can group
// their small batches); groupBuckets bounds the counting sort's table.
var groupMin = 128

const groupBuckets = 4096

// groupByAgent returns each call's agent (from its handle, or looked up by
// name; nil if unknown), its client (nil if none) and the order to make
// the calls in: by the agent's address, calls on one agent (and calls
// whose agent is unknown) in the order given. It returns nil, nil, nil for
// few calls: in order. The clients are looked up here, in the order of rs,
// so that the prefetches know which holding each call reads.
//
// The sort is one pass of a counting sort on the addresses' 1 KiB slots
// (an agent is a 1 KiB object, TestAgentLayout), scaled down to at most
// groupBuckets buckets: agents close in memory share a bucket, which is
// all the sweep needs. Go's collector does not move objects, so an
// address is a stable key for the call.
func (a *Allocator) groupByAgent(rs []Recovery) ([]*agent, []*client, []int32) {
	if len(rs) < groupMin {
		return nil, nil, nil
	}
	g := &a.grouping
	g.ags = slices.Grow(g.ags[:0], len(rs))[:len(rs)]
	g.cs = slices.Grow(g.cs[:0], len(rs))[:len(rs)]
	g.order = slices.Grow(g.order[:0], len(rs))[:len(rs)]
	lo, hi := ^uintptr(0), uintptr(0)
	for i := range rs {
		r := &rs[i]
		ag := r.Ref.ag
		if ag == nil {
			ag = a.agents.get(r.Agent)
		}
		g.ags[i] = ag
		g.cs[i] = nil
		if f := a.frameworks[r.FrameworkID]; f != nil {
			g.cs[i] = f.clients[r.Role]
		}
		if ag != nil {
			k := slotOf(ag)
			lo, hi = min(lo, k), max(hi, k)
		}
	}
	shift := 0
	for hi >= lo && (hi-lo)>>shift >= groupBuckets-1 {
		shift++
	}
	// Bucket 0: unknown agents; bucket b+1: slots lo+b<<shift onwards.
	cnt := &g.cnt
	clear(cnt[:])
	bucket := func(i int) int {
		if g.ags[i] == nil {
			return 0
		}
		return int((slotOf(g.ags[i])-lo)>>shift) + 1
	}
	for i := range rs {
		cnt[bucket(i)]++
	}
	sum := int32(0)
	for b := range cnt {
		sum, cnt[b] = sum+cnt[b], sum
	}
	for i := range rs {
		b := bucket(i)
		g.order[cnt[b]] = int32(i)
		cnt[b]++
	}
	return g.ags, g.cs, g.order
}

// slotOf is ag's 1 KiB slot in the address space.
func slotOf(ag *agent) uintptr { return uintptr(unsafe.Pointer(ag)) >> 10 }

// grouping is groupByAgent's scratch, reused from call to call.
type grouping struct {
	ags   []*agent
	cs    []*client
	order []int32
	cnt   [groupBuckets + 1]int32
}
