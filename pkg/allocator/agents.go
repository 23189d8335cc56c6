package allocator

import (
	"fmt"
	"maps"

	"github.com/agora-sched/agora/pkg/resources"
)

// agent is one agent's books. Rounds visit agents in a shuffled order and
// Recover comes in any order, so nearly every touch of an agent is a cache
// miss, and what a round costs at 10,000+ agents is the number of distinct
// cache lines it reads per agent. The fields are therefore ordered by use:
// the first line serves a Recover and a visit that finds nothing to offer,
// the next four what an offer, a decline filter and the filter check read,
// and everything else comes after. The struct is sized for a 64-byte-aligned
// allocation class (TestAgentLayout), so the lines are the real ones.
type agent struct {
	// Line 0: a Recover, and a visit with nothing to offer.
	free        resources.Resources // total minus everything allocated
	reachable   bool
	hasGPUs     bool
	hasReserved bool // len(reserved) > 0, without reading the map
	heldPorts   bool // some holding has ports: heldRanges is in use
	filtered    bool // len(recs) > 0: the filter lines need reading
	baseOK      bool // base is set (filters.go)

	// Line 1: holdings, as parallel arrays (see holding), and the name an
	// offer carries.
	heldBy []int32   // client slot of each holding: the key find scans
	held   []scalars // scalars of each holding
	name   string

	// Line 2: decline filters (filters.go).
	recs       []filterRec
	hasFilter  bitset // slots with a live filter here
	nextExpiry int64  // earliest filter expiry
	idx        int    // position in Allocator.agentList

	// Line 3.
	base      resources.Resources // availability the filter bits were computed for
	roundSeen uint64              // round of roundOffers (cold; fills the line)

	// Line 4.
	covered    bitset                         // slots whose filter refuses all of base
	heldRanges []resources.Ranges             // ports of each holding, once heldPorts
	reserved   map[string]resources.Resources // role -> reserved part of total
	roleAlloc  map[string]scalars             // per reserved role: allocation of that role here

	// Cold.
	roundOffers []int32 // stage 1 offers here this round (indices in Allocate's result), to merge
	refused     []refusedEntry
	hostname    string
	attributes  map[string]string
	total       resources.Resources
	reservedSum resources.Resources
}

// An agent's holdings are what each client holds there: few per agent (at
// most one per client, in practice up to one per task). They are parallel
// arrays rather than a map or a slice of structs: find scans 4 bytes per
// holding (an agent with 24 holders keeps its keys in two cache lines), the
// scalars take 32 bytes, and ports, which many clusters never use, get an
// array only on agents where some holding has them. None of the arrays holds
// pointers but the ports, so the garbage collector skips them.

// find returns the index of c's holding on ag, or -1.
func (ag *agent) find(c *client) int {
	if c == nil {
		return -1
	}
	for i, s := range ag.heldBy {
		if s == c.slot {
			return i
		}
	}
	return -1
}

// holding returns holding i.
func (ag *agent) holding(i int) resources.Resources {
	r := resources.Resources{Scalars: ag.held[i]}
	if ag.heldPorts {
		r.Ports = ag.heldRanges[i]
	}
	return r
}

// heldPortsOf returns the ports of holding i.
func (ag *agent) heldPortsOf(i int) resources.Ranges {
	if ag.heldPorts {
		return ag.heldRanges[i]
	}
	return nil
}

// setHolding replaces holding i.
func (ag *agent) setHolding(i int, r resources.Resources) {
	ag.held[i] = r.Scalars
	if len(r.Ports) > 0 {
		ag.usePorts()
	}
	if ag.heldPorts {
		ag.heldRanges[i] = r.Ports
	}
}

// addHolding appends a holding for slot.
func (ag *agent) addHolding(slot int32, r resources.Resources) {
	ag.heldBy = append(ag.heldBy, slot)
	ag.held = append(ag.held, r.Scalars)
	if ag.heldPorts {
		ag.heldRanges = append(ag.heldRanges, nil)
	}
	ag.setHolding(len(ag.held)-1, r)
}

// dropHolding removes holding i (the last one takes its place).
func (ag *agent) dropHolding(i int) {
	last := len(ag.held) - 1
	ag.heldBy[i], ag.held[i] = ag.heldBy[last], ag.held[last]
	ag.heldBy, ag.held = ag.heldBy[:last], ag.held[:last]
	if ag.heldPorts {
		ag.heldRanges[i] = ag.heldRanges[last]
		ag.heldRanges[last] = nil
		ag.heldRanges = ag.heldRanges[:last]
		if last == 0 {
			ag.heldPorts, ag.heldRanges = false, nil
		}
	}
}

// usePorts starts keeping ports for ag's holdings.
func (ag *agent) usePorts() {
	if !ag.heldPorts {
		ag.heldPorts = true
		ag.heldRanges = make([]resources.Ranges, len(ag.held), cap(ag.held))
	}
}

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
	subS(&u, &ag.free.Scalars)
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
	if !ag.hasReserved {
		return ag.free
	}
	out := ag.free
	for role, res := range ag.reserved {
		ru := ag.reservedUsed(role)
		for k := range out.Scalars {
			out.Scalars[k] -= res.Scalars[k] - ru[k]
		}
	}
	out.Ports = ag.free.Ports.Subtract(ag.reservedSum.Ports)
	return out
}

// reservedFree returns role's reserved resources not allocated.
func (ag *agent) reservedFree(role string) (resources.Resources, bool) {
	res, ok := ag.reserved[role]
	if !ok {
		return resources.Resources{}, false
	}
	ru := ag.reservedUsed(role)
	out := resources.Resources{Ports: res.Ports.Intersect(ag.free.Ports)}
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

func validateAgent(op string, info AgentInfo) (*agent, error) {
	subj := agentSubject(info.Name)
	if info.Name == "" {
		return nil, errorf(op, subj, ErrInvalid, "agent name is empty")
	}
	if err := info.Total.Validate(); err != nil {
		return nil, errorf(op, subj, ErrInvalid, "total: %v", err)
	}
	ag := &agent{
		name: info.Name, hostname: info.Hostname, attributes: maps.Clone(info.Attributes),
		total: info.Total, hasGPUs: info.Total.Scalars[resources.GPUs] > 0,
	}
	if len(info.Reserved) > 0 {
		ag.reserved = map[string]resources.Resources{}
		ag.roleAlloc = map[string]scalars{}
	}
	for role, res := range info.Reserved {
		if msg := validRoleName(role); msg != "" {
			return nil, errorf(op, subj, ErrInvalid, "reservation for %q: %s", role, msg)
		}
		if err := res.Validate(); err != nil {
			return nil, errorf(op, subj, ErrInvalid, "reservation for %q: %v", role, err)
		}
		if res.IsEmpty() {
			continue
		}
		if ag.reservedSum.Ports.Overlaps(res.Ports) {
			return nil, errorf(op, subj, ErrInvalid, "reservation for %q: ports overlap another role's reservation", role)
		}
		ag.reserved[role] = res
		ag.reservedSum = ag.reservedSum.Add(res)
	}
	if !ag.total.Contains(ag.reservedSum) {
		return nil, errorf(op, subj, ErrInvalid, "reservations (%v) do not fit in the total (%v)", ag.reservedSum, ag.total)
	}
	ag.hasReserved = len(ag.reserved) > 0
	return ag, nil
}

// AddAgent adds a reachable agent with nothing allocated; use AddAllocation
// for the tasks it already runs.
func (a *Allocator) AddAgent(info AgentInfo) error {
	if a.agents.get(info.Name, a.agentList) != nil {
		return errorf("AddAgent", agentSubject(info.Name), ErrExists, "remove it first or use UpdateAgent")
	}
	ag, err := validateAgent("AddAgent", info)
	if err != nil {
		return err
	}
	ag.free = ag.total
	ag.reachable = true
	ag.idx = len(a.agentList)
	a.agentList = append(a.agentList, ag)
	a.agents.put(ag.name, ag.idx, a.agentList)
	a.joinTotals(ag, +1)
	return nil
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
	old := a.agents.get(info.Name, a.agentList)
	if old == nil {
		return errorf("UpdateAgent", agentSubject(info.Name), ErrUnknownAgent, "add it first")
	}
	ag, err := validateAgent("UpdateAgent", info)
	if err != nil {
		return err
	}
	used := old.total
	var uerr error
	if used, uerr = used.Subtract(old.free); uerr != nil {
		return errorf("UpdateAgent", agentSubject(info.Name), ErrInvalid, "books are inconsistent: %v", uerr)
	}
	free, err2 := ag.total.Subtract(used)
	if err2 != nil {
		return errorf("UpdateAgent", agentSubject(info.Name), ErrInsufficient, "the new total does not hold what is allocated (%v): %v", used, err2)
	}
	ag.free = free
	for i, s := range old.heldBy {
		c := a.slots[s].c
		if _, ok := ag.reserved[c.role.name]; ok {
			ra := ag.roleAlloc[c.role.name]
			addS(&ra, &old.held[i])
			ag.roleAlloc[c.role.name] = ra
		}
	}
	for _, v := range ag.unreserved().Scalars {
		if v < 0 {
			return errorf("UpdateAgent", agentSubject(info.Name), ErrInsufficient, "the unreserved part would not hold what is allocated from it")
		}
	}
	a.joinTotals(old, -1)
	old.hostname, old.attributes, old.total, old.hasGPUs = ag.hostname, ag.attributes, ag.total, ag.hasGPUs
	old.reserved, old.reservedSum, old.free, old.roleAlloc = ag.reserved, ag.reservedSum, ag.free, ag.roleAlloc
	old.hasReserved = ag.hasReserved
	old.baseOK = false
	a.joinTotals(old, +1)
	return nil
}

// RemoveAgent forgets an agent. Everything allocated there (tasks and
// outstanding offers) is released from the frameworks' books, and its
// filters go with it; the master rescinds the offers.
func (a *Allocator) RemoveAgent(name string) error {
	ag := a.agents.get(name, a.agentList)
	if ag == nil {
		return errorf("RemoveAgent", agentSubject(name), ErrUnknownAgent, "")
	}
	a.joinTotals(ag, -1)
	for i, s := range ag.heldBy {
		c := a.slots[s].c
		a.unbookScalars(c, &ag.held[i])
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
	a.agents.remove(name, a.agentList)
	last := a.agentList[len(a.agentList)-1]
	if last != ag {
		a.agents.move(last.name, ag.idx, a.agentList)
	}
	a.agentList[ag.idx] = last
	last.idx = ag.idx
	a.agentList[len(a.agentList)-1] = nil
	a.agentList = a.agentList[:len(a.agentList)-1]
	return nil
}

// SetAgentReachable marks an agent unreachable (no offers, left out of the
// cluster totals; its allocations stay, as its tasks may come back) or
// reachable again.
func (a *Allocator) SetAgentReachable(name string, reachable bool) error {
	ag := a.agents.get(name, a.agentList)
	if ag == nil {
		return errorf("SetAgentReachable", agentSubject(name), ErrUnknownAgent, "")
	}
	if ag.reachable == reachable {
		return nil
	}
	a.joinTotals(ag, -1)
	ag.reachable = reachable
	a.joinTotals(ag, +1)
	if reachable {
		a.unreachable--
	} else {
		a.unreachable++
	}
	return nil
}

func (ag *agent) String() string { return fmt.Sprintf("agent %q", ag.name) }
