package allocator

import (
	"fmt"
	"maps"

	"github.com/agora-sched/agora/pkg/resources"
)

type agent struct {
	// Hot: read on every visit of a round and on every Recover. Kept
	// together so a visit touches few cache lines.
	reachable   bool
	hasGPUs     bool
	roundSeen   uint64                         // per round: offers made here, to merge
	roundOffers []int32                        // stage 1 and stage 2 offers
	reserved    map[string]resources.Resources // role -> reserved part of total
	free        resources.Resources            // total minus everything allocated
	heldBy      []int32                        // client slot of each holding: the key find scans
	alloc       []holding                      // per client, exact (ports too); few per agent
	agentFilters

	name        string
	idx         int // position in Allocator.agentList
	hostname    string
	attributes  map[string]string
	total       resources.Resources
	reservedSum resources.Resources
	roleAlloc   map[string]scalars // per reserved role: allocation of that role here
}

// holding is what one client holds on an agent. A slice of these beats a
// map: agents hold few clients (up to one per task). The keys live apart,
// in heldBy, so that a lookup scans 4 bytes per holding instead of 64: an
// agent running 24 tasks of 24 frameworks keeps its keys in two cache
// lines rather than 24.
type holding struct {
	c *client
	r resources.Resources
}

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

// holds returns what c holds on ag.
func (ag *agent) holds(c *client) resources.Resources {
	if i := ag.find(c); i >= 0 {
		return ag.alloc[i].r
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
	if len(ag.reserved) == 0 {
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
	return ag, nil
}

// AddAgent adds a reachable agent with nothing allocated; use AddAllocation
// for the tasks it already runs.
func (a *Allocator) AddAgent(info AgentInfo) error {
	if _, ok := a.agents[info.Name]; ok {
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
	a.agents[ag.name] = ag
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
	old, ok := a.agents[info.Name]
	if !ok {
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
	for _, h := range old.alloc {
		c, r := h.c, h.r
		if _, ok := ag.reserved[c.role.name]; ok {
			ra := ag.roleAlloc[c.role.name]
			addS(&ra, &r.Scalars)
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
	old.baseOK = false
	a.joinTotals(old, +1)
	return nil
}

// RemoveAgent forgets an agent. Everything allocated there (tasks and
// outstanding offers) is released from the frameworks' books, and its
// filters go with it; the master rescinds the offers.
func (a *Allocator) RemoveAgent(name string) error {
	ag, ok := a.agents[name]
	if !ok {
		return errorf("RemoveAgent", agentSubject(name), ErrUnknownAgent, "")
	}
	a.joinTotals(ag, -1)
	for _, h := range ag.alloc {
		c := h.c
		a.unbookScalars(c, &h.r.Scalars)
		c.nAgents--
		a.maybeDropClient(c)
	}
	for _, rec := range ag.recs {
		if s := a.slots[rec.slot]; s.c != nil && s.gen == rec.gen {
			s.c.nFilters--
			a.filters--
		}
	}
	last := a.agentList[len(a.agentList)-1]
	a.agentList[ag.idx] = last
	last.idx = ag.idx
	a.agentList[len(a.agentList)-1] = nil
	a.agentList = a.agentList[:len(a.agentList)-1]
	delete(a.agents, name)
	return nil
}

// SetAgentReachable marks an agent unreachable (no offers, left out of the
// cluster totals; its allocations stay, as its tasks may come back) or
// reachable again.
func (a *Allocator) SetAgentReachable(name string, reachable bool) error {
	ag, ok := a.agents[name]
	if !ok {
		return errorf("SetAgentReachable", agentSubject(name), ErrUnknownAgent, "")
	}
	if ag.reachable == reachable {
		return nil
	}
	a.joinTotals(ag, -1)
	ag.reachable = reachable
	a.joinTotals(ag, +1)
	return nil
}

func (ag *agent) String() string { return fmt.Sprintf("agent %q", ag.name) }
