package allocator

import (
	"fmt"
	"maps"

	"github.com/agora-sched/agora/pkg/resources"
)

// agent is one agent's books. Rounds visit agents in a shuffled order and
// Recover comes in any order, so nearly every touch of an agent is a cache
// miss, and at 10,000+ agents a round costs about the number of dependent
// misses per agent (and the TLB misses of the pages they hit). So what a
// Recover and a visit read lives in this one struct: line 0 holds what
// both read first (free scalars, name, flags, holding count), line 1 the
// keys of the inline holdings, then the pointers (ports, filter state,
// spilled holdings, agentCold for what only configuration changes read),
// and last the pointer-free holding scalars, which the garbage collector
// then does not scan. The struct stays within the 1024-byte allocation
// class, so it never straddles a page (TestAgentLayout).
type agent struct {
	// Line 0.
	freeS        scalars // total minus everything allocated (ports: freePorts)
	name         string
	n            int32 // number of holdings (holdings.go)
	idx          int32 // position in Allocator.agentList; -1 once RemoveAgent forgot it (AgentRefs on it are stale)
	reachable    bool  // offered, and in the totals: neither unreachable nor withheld (agentCold)
	hasGPUs      bool
	hasReserved  bool // len(reserved) > 0, without reading the map
	filtered     bool // len(recs) > 0: the filter state needs reading
	baseOK       bool // base is set (filters.go)
	freeHasPorts bool // len(freePorts) > 0, so that agents without ports never read it
	heldPorts    bool // some holding may have ports (holdings.go)
	quiet        bool // noted quiet (quiet.go): a change must clear the mark

	// Line 1.
	keys [inlineHeld]int32 // client slots of the inline holdings

	freePorts resources.Ranges

	// Decline filters (filters.go).
	recs       []filterRec
	bits       filterBits // slots with a live filter here, and those covering base
	nextExpiry int64      // earliest filter expiry
	base       resources.Resources
	refused    []refusedEntry

	roundSeen   uint64  // round of roundOffers
	roundOffers []int32 // stage 1 offers here this round (indices in Allocate's result), to merge

	*agentCold

	// Holdings beyond the inline ones, and ports (holdings.go).
	moreBy     []int32
	moreS      []scalars
	ranges     [inlinePorts]resources.Ranges
	moreRanges []resources.Ranges

	s [inlineHeld]scalars // scalars of the inline holdings; last: no pointers
}

// free returns what is not allocated on ag.
func (ag *agent) free() resources.Resources {
	r := resources.Resources{Scalars: ag.freeS}
	if ag.freeHasPorts {
		r.Ports = ag.freePorts
	}
	return r
}

// setFree sets what is not allocated on ag.
func (ag *agent) setFree(r resources.Resources) {
	ag.freeS = r.Scalars
	if ag.freeHasPorts || len(r.Ports) > 0 {
		ag.freePorts, ag.freeHasPorts = r.Ports, len(r.Ports) > 0
	}
}

// agentCold is what only agent updates, reservations and status read.
type agentCold struct {
	hostname    string
	attributes  map[string]string
	total       resources.Resources
	reserved    map[string]resources.Resources // role -> reserved part of total
	reservedSum resources.Resources
	roleAlloc   map[string]scalars // per reserved role: allocation of that role here
	unreachable bool               // SetAgentReachable: its allocations are off the books too
	withheld    bool               // SetAgentWithheld
}

// booked reports whether ag's allocations are on the frameworks' and roles'
// books (bookScalars): unless it is unreachable. Reachable agents, nearly
// all of them, answer from the first line.
func (ag *agent) booked() bool { return ag.reachable || !ag.unreachable }

// holds returns what c holds on ag.
func (ag *agent) holds(c *client) resources.Resources {
	if i := ag.find(c); i >= 0 {
		return ag.holding(i)
	}
	return resources.Resources{}
}

// used returns what is allocated on ag (scalars).
func (ag *agent) used() scalars {
	u := ag.total.Scalars
	subS(&u, &ag.freeS)
	return u
}

// reservedUsed is how much of role's reservation is in use: reservations
// are consumed before unreserved resources.
func (ag *agent) reservedUsed(role string) scalars {
	var u scalars
	res, ok := ag.reserved[role]
	if !ok {
		return u
	}
	ra := ag.roleAlloc[role]
	for k := range u {
		u[k] = min(ra[k], res.Scalars[k])
	}
	return u
}

// unreserved returns the unreserved resources not allocated.
func (ag *agent) unreserved() resources.Resources {
	out := ag.free()
	if !ag.hasReserved {
		return out
	}
	for role, res := range ag.reserved {
		ru := ag.reservedUsed(role)
		for k := range out.Scalars {
			out.Scalars[k] -= res.Scalars[k] - ru[k]
		}
	}
	out.Ports = out.Ports.Subtract(ag.reservedSum.Ports)
	return out
}

// reservedFree returns role's reserved resources not allocated.
func (ag *agent) reservedFree(role string) (resources.Resources, bool) {
	res, ok := ag.reserved[role]
	if !ok {
		return resources.Resources{}, false
	}
	ru := ag.reservedUsed(role)
	out := resources.Resources{Ports: res.Ports.Intersect(ag.free().Ports)}
	for k := range out.Scalars {
		out.Scalars[k] = res.Scalars[k] - ru[k]
	}
	return out, !out.IsEmpty()
}

// availableTo returns what role may use on ag (before quota).
func (ag *agent) availableTo(role string) resources.Resources {
	u := ag.unreserved()
	if rf, ok := ag.reservedFree(role); ok {
		u = u.Add(rf)
	}
	return u
}

// validateAgent builds the agent for info. Error subjects are formatted only
// on errors: a new master adds every agent, and formatting cost one
// allocation each.
func validateAgent(op string, info AgentInfo) (*agent, error) {
	if info.Name == "" {
		return nil, errorf(op, agentSubject(info.Name), ErrInvalid, "agent name is empty")
	}
	if err := info.Total.Validate(); err != nil {
		return nil, errorf(op, agentSubject(info.Name), ErrInvalid, "total: %v", err)
	}
	ag := &agent{
		name: info.Name, hasGPUs: info.Total.Scalars[resources.GPUs] > 0,
		agentCold: &agentCold{hostname: info.Hostname, attributes: maps.Clone(info.Attributes), total: info.Total},
	}
	if len(info.Reserved) > 0 {
		ag.reserved = map[string]resources.Resources{}
		ag.roleAlloc = map[string]scalars{}
	}
	for role, res := range info.Reserved {
		if msg := validRoleName(role); msg != "" {
			return nil, errorf(op, agentSubject(info.Name), ErrInvalid, "reservation for %q: %s", role, msg)
		}
		if err := res.Validate(); err != nil {
			return nil, errorf(op, agentSubject(info.Name), ErrInvalid, "reservation for %q: %v", role, err)
		}
		if res.IsEmpty() {
			continue
		}
		if ag.reservedSum.Ports.Overlaps(res.Ports) {
			return nil, errorf(op, agentSubject(info.Name), ErrInvalid, "reservation for %q: ports overlap another role's reservation", role)
		}
		ag.reserved[role] = res
		ag.reservedSum = ag.reservedSum.Add(res)
	}
	if !ag.total.Contains(ag.reservedSum) {
		return nil, errorf(op, agentSubject(info.Name), ErrInvalid, "reservations (%v) do not fit in the total (%v)", ag.reservedSum, ag.total)
	}
	ag.hasReserved = len(ag.reserved) > 0
	return ag, nil
}

// AddAgent adds a reachable agent with nothing allocated; use AddAllocation
// for the tasks it already runs.
func (a *Allocator) AddAgent(info AgentInfo) error {
	if a.agents.get(info.Name) != nil {
		return errorf("AddAgent", agentSubject(info.Name), ErrExists, "remove it first or use UpdateAgent")
	}
	ag, err := validateAgent("AddAgent", info)
	if err != nil {
		return err
	}
	ag.setFree(ag.total)
	ag.reachable = true
	ag.idx = int32(len(a.agentList))
	a.agentList = append(a.agentList, ag)
	a.quiet = append(a.quiet, quietMark{})
	a.agents.put(ag)
	a.joinTotals(ag, +1)
	return nil
}

// joinBooks adds (sign=+1) or takes off (-1) a booked agent's
// allocations to or from the frameworks' and roles' books (bookScalars).
func (a *Allocator) joinBooks(ag *agent, sign int64) {
	if !ag.booked() {
		return
	}
	for i := range int(ag.n) {
		c := a.slots[ag.key(i)].c
		if sign > 0 {
			a.bookScalars(c, ag.scalarsOf(i))
		} else {
			a.unbookScalars(c, ag.scalarsOf(i))
		}
	}
}

// joinTotals adds (sign=+1) or removes (-1) a reachable agent from the
// cluster totals shares and headroom are computed against.
func (a *Allocator) joinTotals(ag *agent, sign int64) {
	if !ag.reachable {
		return
	}
	u := ag.unreserved()
	for k := range a.total {
		a.total[k] += sign * ag.total.Scalars[k]
		a.freeUnres[k] += sign * u.Scalars[k]
	}
}

// UpdateAgent changes an agent's total, attributes or reservations. It
// fails with ErrInsufficient if what is allocated there would not fit.
// Filters stay (Mesos keeps them too).
func (a *Allocator) UpdateAgent(info AgentInfo) error {
	old := a.agents.get(info.Name)
	if old == nil {
		return errorf("UpdateAgent", agentSubject(info.Name), ErrUnknownAgent, "add it first")
	}
	ag, err := validateAgent("UpdateAgent", info)
	if err != nil {
		return err
	}
	used := old.total
	var uerr error
	if used, uerr = used.Subtract(old.free()); uerr != nil {
		return errorf("UpdateAgent", agentSubject(info.Name), ErrInvalid, "books are inconsistent: %v", uerr)
	}
	free, err2 := ag.total.Subtract(used)
	if err2 != nil {
		return errorf("UpdateAgent", agentSubject(info.Name), ErrInsufficient, "the new total does not hold what is allocated (%v): %v", used, err2)
	}
	ag.setFree(free)
	for i := range int(old.n) {
		ag.bookReserved(a.slots[old.key(i)].c, old.scalarsOf(i), +1)
	}
	for _, v := range ag.unreserved().Scalars {
		if v < 0 {
			return errorf("UpdateAgent", agentSubject(info.Name), ErrInsufficient, "the unreserved part would not hold what is allocated from it")
		}
	}
	a.disturb(old)
	a.joinTotals(old, -1)
	old.hostname, old.attributes, old.total, old.hasGPUs = ag.hostname, ag.attributes, ag.total, ag.hasGPUs
	old.reserved, old.reservedSum, old.roleAlloc = ag.reserved, ag.reservedSum, ag.roleAlloc
	old.setFree(ag.free())
	old.hasReserved = ag.hasReserved
	old.baseOK = false
	a.joinTotals(old, +1)
	return nil
}

// RemoveAgent forgets an agent. Everything allocated there (tasks and
// outstanding offers) is released from the frameworks' books, and its
// filters go with it; the master rescinds the offers.
func (a *Allocator) RemoveAgent(name string) error {
	ag := a.agents.get(name)
	if ag == nil {
		return errorf("RemoveAgent", agentSubject(name), ErrUnknownAgent, "")
	}
	a.joinTotals(ag, -1)
	a.joinBooks(ag, -1)
	for i := range int(ag.n) {
		c := a.slots[ag.key(i)].c
		c.nAgents--
		a.maybeDropClient(c)
	}
	for _, rec := range ag.recs {
		if s := a.slots[rec.slot]; s.c != nil && s.gen == rec.gen {
			s.c.nFilters--
			a.filters--
		}
	}
	if !ag.reachable {
		a.unreachable--
	}
	a.agents.remove(name)
	last := a.agentList[len(a.agentList)-1]
	a.agentList[ag.idx] = last
	a.quiet[ag.idx] = a.quiet[last.idx]
	last.idx = ag.idx
	a.agentList[len(a.agentList)-1] = nil
	a.agentList = a.agentList[:len(a.agentList)-1]
	a.quiet = a.quiet[:len(a.quiet)-1]
	ag.idx = -1 // handles on it are stale
	return nil
}

// SetAgentReachable marks an agent unreachable or reachable again. An
// unreachable agent is not offered, and it leaves the cluster totals and
// its allocations leave the frameworks' and roles' books (shares, quota),
// as Mesos removes an unreachable agent from its allocator. The
// allocations stay on the agent, as its tasks may come back: they return
// to the books with the agent, and Recover of them works meanwhile.
func (a *Allocator) SetAgentReachable(name string, reachable bool) error {
	ag := a.agents.get(name)
	if ag == nil {
		return errorf("SetAgentReachable", agentSubject(name), ErrUnknownAgent, "")
	}
	a.setAvailability(ag, !reachable, ag.withheld)
	return nil
}

// SetAgentWithheld withholds an agent from offers (a cordoned or draining
// agent) or gives it back. A withheld agent leaves the cluster totals, but
// its tasks still run, so its allocations stay on the books: a role keeps
// being charged for them, and its quota limit still counts them.
func (a *Allocator) SetAgentWithheld(name string, withheld bool) error {
	ag := a.agents.get(name)
	if ag == nil {
		return errorf("SetAgentWithheld", agentSubject(name), ErrUnknownAgent, "")
	}
	a.setAvailability(ag, ag.unreachable, withheld)
	return nil
}

// setAvailability moves ag out of the totals and books it is in and into
// those its new state puts it in.
func (a *Allocator) setAvailability(ag *agent, unreachable, withheld bool) {
	if ag.unreachable == unreachable && ag.withheld == withheld {
		return
	}
	was := ag.reachable
	a.joinTotals(ag, -1)
	a.joinBooks(ag, -1)
	ag.unreachable, ag.withheld = unreachable, withheld
	ag.reachable = !unreachable && !withheld
	a.joinTotals(ag, +1)
	a.joinBooks(ag, +1)
	switch {
	case was && !ag.reachable:
		a.unreachable++
	case !was && ag.reachable:
		a.unreachable--
	}
}

func (ag *agent) String() string { return fmt.Sprintf("agent %q", ag.name) }
