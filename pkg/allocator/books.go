package allocator

import (
	"math"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

// book moves o from ag's free resources to c. The caller has checked that
// o fits in what c's role may use on ag.
func (a *Allocator) book(ag *agent, c *client, o resources.Resources) error {
	var before resources.Resources
	if ag.reachable && ag.hasReserved {
		before = ag.unreserved()
	}
	free, err := ag.free().Subtract(o)
	if err != nil {
		return err
	}
	ag.setFree(free)
	if i := ag.find(c); i >= 0 {
		ag.setHolding(i, ag.holding(i).Add(o))
	} else {
		ag.addHolding(c.slot, o)
		c.nAgents++
	}
	if ag.hasReserved {
		ag.bookReserved(c, &o.Scalars, +1)
	}
	if ag.reachable {
		if !ag.hasReserved {
			subS(&a.freeUnres, &o.Scalars)
		} else {
			after := ag.unreserved()
			subS(&a.freeUnres, &before.Scalars)
			addS(&a.freeUnres, &after.Scalars)
		}
	}
	if ag.booked() {
		a.bookScalars(c, &o.Scalars)
	}
	return nil
}

// bookScalars adds s to c's and its roles' books. What is allocated on an
// unreachable agent is not on them, as the agent is not in the totals:
// Mesos removes an unreachable agent from its allocator, its allocations
// with it, and adds both back when the agent returns. So a partition does
// not push shares past 100%, and a framework whose tasks are cut off is
// not charged for them while it cannot use them. A withheld agent's
// tasks run on, and stay on the books (SetAgentWithheld).
func (a *Allocator) bookScalars(c *client, s *scalars) {
	addS(&c.alloc, s)
	addS(&c.role.self.alloc, s)
	for n := c.role; n != a.root; n = n.parent {
		addS(&n.alloc, s)
	}
	addS(&a.allocated, s)
}

// bookReserved adds (sign=+1) or takes off (-1) s from what c's role is
// allocated on ag, if the role has a reservation there.
func (ag *agent) bookReserved(c *client, s *scalars, sign int64) {
	if _, ok := ag.reserved[c.role.name]; !ok {
		return
	}
	ra := ag.roleAlloc[c.role.name]
	for k := range ra {
		ra[k] += sign * s[k]
	}
	ag.roleAlloc[c.role.name] = ra
}

// unbook returns r (contained in holding i, c's) from c to ag.
func (a *Allocator) unbook(ag *agent, c *client, i int, r resources.Resources) {
	var before resources.Resources
	if ag.reachable && ag.hasReserved {
		before = ag.unreserved()
	}
	left, _ := ag.holding(i).Subtract(r) // callers checked that c holds r
	if left.IsEmpty() {
		ag.dropHolding(i)
		c.nAgents--
	} else {
		ag.setHolding(i, left)
	}
	ag.setFree(ag.free().Add(r))
	a.disturb(ag)
	if ag.hasReserved {
		ag.bookReserved(c, &r.Scalars, -1)
	}
	if ag.reachable {
		if !ag.hasReserved {
			addS(&a.freeUnres, &r.Scalars)
		} else {
			after := ag.unreserved()
			subS(&a.freeUnres, &before.Scalars)
			addS(&a.freeUnres, &after.Scalars)
		}
	}
	if ag.booked() {
		a.unbookScalars(c, &r.Scalars)
	}
}

// unbookScalars takes s off c's and its roles' books (see bookScalars).
func (a *Allocator) unbookScalars(c *client, s *scalars) {
	subS(&c.alloc, s)
	subS(&c.role.self.alloc, s)
	for n := c.role; n != a.root; n = n.parent {
		subS(&n.alloc, s)
	}
	subS(&a.allocated, s)
}

// release returns everything c holds on ag (its holding i).
func (a *Allocator) release(ag *agent, c *client, i int) {
	a.unbook(ag, c, i, ag.holding(i))
}

// Recover returns resources of framework fw in role on agent: an offer
// declined, rescinded or expired, or tasks that ended. With refuse > 0 it
// also installs a decline filter: until now+refuse, fw is not offered in
// this role on this agent anything that is a subset of r. Returning more
// than is allocated fails with ErrNotAllocated and changes nothing.
func (a *Allocator) Recover(fw, role, agentName string, r resources.Resources, refuse time.Duration, now time.Time) error {
	ag := a.agents.get(agentName)
	// The holding Recover needs is known only from the keys, on another
	// line; fetching the holdings now overlaps their miss with the keys'.
	prefetchRecover(ag, nil, refuse > 0)
	return a.recoverOn(ag, nil, fw, role, agentName, r, refuse, now)
}

// recoverOn is Recover with the agent, and perhaps the client, already
// looked up (nil: unknown, or not yet), so that RecoverAll does not hash
// each name twice.
func (a *Allocator) recoverOn(ag *agent, c *client, fw, role, agentName string, r resources.Resources, refuse time.Duration, now time.Time) error {
	const op = "Recover"
	c, ag, err := a.lookupOn(ag, c, op, fw, role, agentName, r)
	if err != nil {
		return err
	}
	i := ag.find(c)
	var have resources.Resources
	if i >= 0 {
		have = ag.holding(i)
	}
	if c == nil || i < 0 || !have.Contains(r) {
		return errorf(op, fwSubject(fw), ErrNotAllocated, "it holds %q in role %q on agent %q, cannot return %q", have.String(), role, agentName, r.String())
	}
	a.unbook(ag, c, i, r)
	if refuse > 0 && c.subscribed {
		n := nowNanos(now)
		until := n + int64(refuse)
		if until < n {
			until = math.MaxInt64
		}
		a.addFilter(ag, c, r, until, n)
	}
	a.maybeDropClient(c)
	return nil
}

// AddAllocation records resources already in use by fw in role on the
// agent: tasks and outstanding offers found when a new master rebuilds its
// books. They must fit in what the role may use there (unreserved plus its
// reservation); quota limits are not enforced, since they are facts.
func (a *Allocator) AddAllocation(fw, role, agentName string, r resources.Resources) error {
	const op = "AddAllocation"
	if msg := validRoleName(role); msg != "" {
		return errorf(op, roleSubject(role), ErrInvalid, "%s", msg)
	}
	if _, ok := a.frameworks[fw]; !ok {
		return errorf(op, fwSubject(fw), ErrUnknownFramework, "add the framework before its allocations")
	}
	_, ag, err := a.lookup(op, fw, role, agentName, r)
	if err != nil {
		return err
	}
	if r.IsEmpty() {
		return nil // nothing to record
	}
	if avail := ag.availableTo(role); !avail.Contains(r) {
		return errorf(op, agentSubject(agentName), ErrInsufficient, "%q does not fit in what role %q may use there (%q)", r.String(), role, avail.String())
	}
	c := a.client(a.frameworks[fw], role)
	if err := a.book(ag, c, r); err != nil {
		a.maybeDropClient(c)
		return errorf(op, agentSubject(agentName), ErrInsufficient, "%v", err)
	}
	return nil
}

// AddFilter installs a decline filter directly, to rebuild filters from the
// declined offers a new master finds: fw is not offered, in role on the
// agent, anything that is a subset of refused before until.
func (a *Allocator) AddFilter(fw, role, agentName string, refused resources.Resources, until time.Time) error {
	const op = "AddFilter"
	c, ag, err := a.lookup(op, fw, role, agentName, refused)
	if err != nil {
		return err
	}
	if c == nil || !c.subscribed {
		return errorf(op, fwSubject(fw), ErrUnknownRole, "it is not subscribed to role %q", role)
	}
	a.addFilter(ag, c, refused, nowNanos(until), math.MinInt64)
	return nil
}

func sameSlice(a, b resources.Ranges) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// lookup validates the common arguments; the client may be nil. Ports are
// not validated when they are the very slice the allocator handed out
// (canonical already): reading them again costs cache misses on the
// decline path.
func (a *Allocator) lookup(op, fw, role, agentName string, r resources.Resources) (*client, *agent, error) {
	return a.lookupOn(nil, nil, op, fw, role, agentName, r)
}

// lookupOn is lookup with agentName's agent already found (nil: not yet),
// and perhaps fw's client in role, found earlier: it is used while it has
// its slot (clients are dropped, never added, between the two).
func (a *Allocator) lookupOn(ag *agent, c *client, op, fw, role, agentName string, r resources.Resources) (*client, *agent, error) {
	if err := r.ScalarsOnly().Validate(); err != nil {
		return nil, nil, errorf(op, fwSubject(fw), ErrInvalid, "resources: %v", err)
	}
	var f *framework
	if c == nil || a.slots[c.slot].c != c {
		var ok bool
		if f, ok = a.frameworks[fw]; !ok {
			return nil, nil, errorf(op, fwSubject(fw), ErrUnknownFramework, "")
		}
	}
	if ag == nil {
		ag = a.agents.get(agentName)
	}
	if ag == nil {
		return nil, nil, errorf(op, agentSubject(agentName), ErrUnknownAgent, "")
	}
	if f != nil {
		c = f.clients[role]
	}
	if len(r.Ports) > 0 {
		if i := ag.find(c); i < 0 || !sameSlice(ag.portsOf(i), r.Ports) {
			if err := r.Ports.Validate(); err != nil {
				return nil, nil, errorf(op, fwSubject(fw), ErrInvalid, "resources: %v", err)
			}
		}
	}
	return c, ag, nil
}
