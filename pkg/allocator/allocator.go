// Package allocator decides which framework is offered which agent's
// resources: Mesos' hierarchical DRF allocator as a pure Go package.
//
// The master controller feeds it events (agents, frameworks, roles, offers
// answered, tasks ended) and calls Allocate periodically; the returned offers
// are already counted as allocated, and come back through Recover when they
// are declined, rescinded or expire, or when the tasks launched on them end.
//
// Rules (Mesos 1.x semantics):
//   - Two stages per round. Stage 1 offers roles below their quota
//     guarantee what they still need; stage 2 shares the rest by DRF.
//   - DRF order: roles sorted by weighted dominant share (at every level of
//     the role tree, like Mesos' hierarchical sorter), then frameworks in the
//     role by dominant share; ties by fewer past allocations, then name.
//     Shares count offered-but-unanswered resources.
//   - Static reservations go only to frameworks of exactly that role.
//   - An agent with GPUs is offered only to GPU-aware frameworks.
//   - A decline filter blocks an offer only if it is a subset of what was
//     refused, until the filter expires; ReviveFilters clears filters, and
//     Unsuppress does not.
//   - Quota limits are never exceeded by an offer; stage 2 holds back the
//     unreserved resources still needed by unsatisfied guarantees.
//   - Agents are visited in an order shuffled per round from Options.Seed.
//   - An unreachable agent is not offered, and it leaves the totals and its
//     allocations leave the books (shares, quota) until it is reachable
//     again, as Mesos removes it from its allocator. A withheld (cordoned)
//     agent is not offered and leaves the totals; its allocations stay.
//
// The Allocator is not safe for concurrent use; the master serialises calls.
// Time is passed in (now) so behaviour is reproducible in tests.
package allocator

import (
	"math/rand/v2"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

// DefaultMinAllocatable is Mesos' default min_allocatable_resources
// ("cpus:0.01|mem:32"): an offer needs at least 0.01 cpus or 32 MiB of mem.
var DefaultMinAllocatable = resources.Scalars(10, 32*resources.MiB, 0, 0)

// DefaultRole is Mesos' default role.
const DefaultRole = "*"

// Options configure an Allocator.
type Options struct {
	// Seed drives the per-round shuffle of agents, so runs are reproducible.
	Seed int64
	// MinAllocatable: an offer is made only if, for at least one scalar kind
	// set (non-zero) here, it holds at least that amount (Mesos' any-of
	// semantics). The zero value means DefaultMinAllocatable.
	MinAllocatable resources.Resources
	// ExcludeGPUsFromShares leaves GPUs out of dominant-share computations,
	// so that a GPU framework is not starved of CPUs for holding scarce GPUs.
	ExcludeGPUsFromShares bool
	// ExcludedFromShares are further kinds left out of dominant shares
	// (Mesos' --fair_sharing_excluded_resource_names), e.g. disk that every
	// offer carries whole but no task asks for: counted, it makes whichever
	// framework holds a few outstanding offers look rich.
	ExcludedFromShares resources.KindSet
}

// AgentInfo describes an agent.
type AgentInfo struct {
	Name       string // unique; the node name
	Hostname   string
	Total      resources.Resources
	Attributes map[string]string
	// Reserved maps a role to the part of Total statically reserved for it.
	// Reserved resources are offered only to frameworks of exactly that role
	// (not to sub-roles). The reservations must fit in Total together and
	// their ports must not overlap.
	Reserved map[string]resources.Resources
}

// FrameworkInfo describes a framework.
type FrameworkInfo struct {
	ID              string   // "namespace/name"
	Roles           []string // the roles it subscribes to; "*" if empty
	SuppressedRoles []string // subset of Roles not to be offered resources
	GPUAware        bool     // it may be offered agents that have GPUs
}

// RoleInfo configures a role. Roles that frameworks name exist implicitly
// with weight 1 and no quota.
type RoleInfo struct {
	Name   string
	Weight float64 // > 0; 0 means 1
	// Guarantee is the quota guarantee: stage 1 of every round offers the
	// role (with its sub-roles) resources until its allocation reaches it,
	// and stage 2 holds back unreserved resources it still needs. Zero
	// kinds are not guaranteed. Ports are ignored.
	Guarantee resources.Resources
	// Limit caps the role's (and its sub-roles') allocation in the kinds
	// listed in Limited; other kinds are unlimited. Ports are ignored.
	Limit   resources.Resources
	Limited resources.KindSet
}

// Offer is one decision of Allocate: resources of an agent for a framework
// in one of its roles. They are counted as allocated from the moment they
// are returned.
type Offer struct {
	FrameworkID string
	Role        string
	Agent       string
	Resources   resources.Resources
	// Ref is the agent's handle: passed back in a Recovery, it spares
	// RecoverAll the lookup by name.
	Ref AgentRef
}

// AgentRef is a handle on an agent, from an Offer, good only with the
// Allocator that made the offer. The zero value is no handle; a handle on
// an agent since removed is ignored (the name is looked up instead).
type AgentRef struct{ ag *agent }

// String names the agent ("" for no handle), so that offers print the
// same from one allocator to another.
func (r AgentRef) String() string {
	if r.ag == nil {
		return ""
	}
	return r.ag.name
}

// Stats summarises the allocator for metrics.
type Stats struct {
	Agents, ReachableAgents      int // reachable: offered, neither unreachable nor withheld
	Frameworks, ActiveFrameworks int
	Roles                        int
	Filters                      int                 // decline filters held; expired ones are dropped at the agent's next round
	Total                        resources.Resources // scalars of reachable agents, not withheld
	Allocated                    resources.Resources // scalars allocated (offers and tasks) on the books: all agents but unreachable ones
	Rounds                       uint64              // Allocate calls so far
	LastRoundOffers              int
}

// Allocator holds the books. Create it with New.
type Allocator struct {
	opts    Options
	minimum scalars
	rng     *rand.Rand

	agents      agentIndex // by name
	agentList   []*agent   // dense; agent.idx is the position
	unreachable int        // agents not reachable or withheld: rounds copy agentList when 0
	frameworks  map[string]*framework
	roles       map[string]*roleNode // real roles by name
	root        *roleNode

	slots     []slot // client slots: index into agents' filter bitsets
	freeSlots []int32

	total     scalars // reachable agents' totals
	allocated scalars // everything allocated on the books (bookScalars)
	freeUnres scalars // unreserved, unallocated, reachable

	guaranteed []*roleNode // roles with a guarantee (for headroom)
	anyLimit   bool        // some role has a quota limit
	filters    int         // live filters

	round      uint64
	lastOffers int

	quiet        []quietMark // by agent.idx (quiet.go)
	quietEpoch   uint32
	lastEligible bitset // the eligible set quiet marks were noted against

	// per-round scratch, reused to keep rounds allocation-light
	order     []int32 // the round's agents: positions in agentList
	stage1    bool    // stage 1 runs this round
	visitOffs []int32 // offers of the current visit (indices in the result)
	eligible  bitset
	nEligible int
	nGPUAware int
	required  scalars  // headroom still owed to unsatisfied guarantees
	pos       []int    // positions of a role chain while re-sorting
	visitList []*agent // visitAll's scratch: the agents to visit

	grouping grouping // RecoverAll's scratch (recoverall.go)
}

// New returns an empty allocator.
func New(opts Options) *Allocator {
	if opts.ExcludeGPUsFromShares {
		opts.ExcludedFromShares |= resources.KindsOf(resources.GPUs) // share reads the set alone
	}
	a := &Allocator{
		opts:       opts,
		rng:        rand.New(rand.NewPCG(uint64(opts.Seed), 0x5eed)),
		agents:     newAgentIndex(),
		frameworks: map[string]*framework{},
		roles:      map[string]*roleNode{},
		root:       &roleNode{weight: 1},
	}
	minR := opts.MinAllocatable
	if minR.ScalarsOnly().IsEmpty() {
		minR = DefaultMinAllocatable
	}
	a.minimum = minR.Scalars
	a.quietEpoch = 1
	return a
}

// allocatable applies the any-of minimum to an offer's scalars.
func (a *Allocator) allocatable(s *scalars) bool {
	for k, m := range a.minimum {
		if m > 0 && s[k] >= m {
			return true
		}
	}
	return false
}

// scalars is the arithmetic type of the books.
type scalars = [resources.NumScalars]int64

func addS(a *scalars, b *scalars) {
	for k := range a {
		a[k] += b[k]
	}
}

func subS(a *scalars, b *scalars) {
	for k := range a {
		a[k] -= b[k]
	}
}

func nowNanos(t time.Time) int64 { return t.UnixNano() }
