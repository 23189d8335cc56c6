package allocator

import (
	"fmt"
	"slices"
)

type framework struct {
	id       string
	gpuAware bool
	active   bool
	budget   int                // new offers it may still get; negative: no limit
	clients  map[string]*client // by role, subscribed or still holding resources
}

// client is a framework in one role: the unit DRF sorts within a role and
// filters apply to.
type client struct {
	fw         *framework
	role       *roleNode // the real role
	slot       int32
	subscribed bool // false: role dropped but resources still allocated
	suppressed bool

	alloc       scalars // across agents
	allocations uint64  // offers made (tie-break)
	share       float64 // set each round
	nAgents     int     // agents where it holds something
	nFilters    int     // live filters
}

func (c *client) eligible() bool {
	return c.fw.active && c.subscribed && !c.suppressed && c.fw.budget != 0
}

func (c *client) String() string { return fmt.Sprintf("framework %q in role %q", c.fw.id, c.role.name) }

// validateFramework returns the roles of info ("*" if none); error subjects
// are formatted only on errors (see validateAgent).
func validateFramework(op string, info FrameworkInfo) (roles []string, err error) {
	if info.ID == "" {
		return nil, errorf(op, fwSubject(info.ID), ErrInvalid, "framework ID is empty")
	}
	roles = info.Roles
	if len(roles) == 0 {
		roles = []string{DefaultRole}
	}
	for i, r := range roles {
		if msg := validRoleName(r); msg != "" {
			return nil, errorf(op, fwSubject(info.ID), ErrInvalid, "role %q: %s", r, msg)
		}
		if slices.Contains(roles[:i], r) {
			return nil, errorf(op, fwSubject(info.ID), ErrInvalid, "role %q is listed twice", r)
		}
	}
	for _, r := range info.SuppressedRoles {
		if !slices.Contains(roles, r) {
			return nil, errorf(op, fwSubject(info.ID), ErrInvalid, "suppressed role %q is not one of its roles %v", r, roles)
		}
	}
	return roles, nil
}

// AddFramework adds an active framework.
func (a *Allocator) AddFramework(info FrameworkInfo) error {
	if _, ok := a.frameworks[info.ID]; ok {
		return errorf("AddFramework", fwSubject(info.ID), ErrExists, "use UpdateFramework to change it")
	}
	roles, err := validateFramework("AddFramework", info)
	if err != nil {
		return err
	}
	fw := &framework{id: info.ID, gpuAware: info.GPUAware, active: true, budget: -1, clients: map[string]*client{}}
	a.frameworks[fw.id] = fw
	for _, r := range roles {
		c := a.client(fw, r)
		c.subscribed = true
		c.suppressed = slices.Contains(info.SuppressedRoles, r)
	}
	return nil
}

// client returns fw's client for role, creating it unsubscribed.
func (a *Allocator) client(fw *framework, role string) *client {
	if c, ok := fw.clients[role]; ok {
		return c
	}
	n := a.role(role)
	c := &client{fw: fw, role: n}
	c.slot = a.newSlot(c)
	fw.clients[role] = c
	leaf := n.leaf()
	leaf.clients = append(leaf.clients, c)
	return c
}

// maybeDropClient forgets a client that is unsubscribed and holds nothing.
func (a *Allocator) maybeDropClient(c *client) {
	if c.subscribed || c.nAgents > 0 {
		return
	}
	a.dropClient(c)
}

func (a *Allocator) dropClient(c *client) {
	a.freeSlot(c)
	delete(c.fw.clients, c.role.name)
	leaf := c.role.self
	if i := slices.Index(leaf.clients, c); i >= 0 {
		leaf.clients = slices.Delete(leaf.clients, i, i+1)
	}
	a.prune(c.role)
}

// UpdateFramework replaces a framework's roles, suppressed roles and
// capabilities (Mesos' UPDATE_FRAMEWORK). A dropped role keeps its
// allocations until they are recovered, but gets no more offers and loses
// its filters.
func (a *Allocator) UpdateFramework(info FrameworkInfo) error {
	fw, ok := a.frameworks[info.ID]
	if !ok {
		return errorf("UpdateFramework", fwSubject(info.ID), ErrUnknownFramework, "add it first")
	}
	roles, err := validateFramework("UpdateFramework", info)
	if err != nil {
		return err
	}
	fw.gpuAware = info.GPUAware
	for role, c := range fw.clients {
		if !slices.Contains(roles, role) && c.subscribed {
			c.subscribed, c.suppressed = false, false
			a.clearFilters(c)
			a.maybeDropClient(c)
		}
	}
	for _, r := range roles {
		c := a.client(fw, r)
		c.subscribed = true
		c.suppressed = slices.Contains(info.SuppressedRoles, r)
	}
	return nil
}

// RemoveFramework forgets a framework: all its allocations (tasks and
// outstanding offers) are released and its filters dropped.
func (a *Allocator) RemoveFramework(id string) error {
	fw, ok := a.frameworks[id]
	if !ok {
		return errorf("RemoveFramework", fwSubject(id), ErrUnknownFramework, "")
	}
	for _, c := range fw.clients {
		if c.nAgents > 0 {
			for _, ag := range a.agentList {
				if i := ag.find(c); i >= 0 {
					a.release(ag, c, i)
				}
			}
		}
		a.dropClient(c)
	}
	delete(a.frameworks, id)
	return nil
}

// ActivateFramework resumes offers to a framework (its scheduler is back).
func (a *Allocator) ActivateFramework(id string) error {
	return a.setActive("ActivateFramework", id, true)
}

// DeactivateFramework stops offers to a framework without touching its
// allocations or filters (its scheduler is away, within failoverTimeout).
func (a *Allocator) DeactivateFramework(id string) error {
	return a.setActive("DeactivateFramework", id, false)
}

func (a *Allocator) setActive(op, id string, active bool) error {
	fw, ok := a.frameworks[id]
	if !ok {
		return errorf(op, fwSubject(id), ErrUnknownFramework, "")
	}
	fw.active = active
	return nil
}

// SetOfferBudget caps how many new offers (one per agent and role) the
// framework may get from the coming rounds; negative lifts the cap. It is
// not Mesos': the master uses it to cap the offers a framework holds
// unanswered, so that a round does not flood one framework with an offer
// per agent when it answers only a few at a time.
func (a *Allocator) SetOfferBudget(id string, n int) error {
	fw, ok := a.frameworks[id]
	if !ok {
		return errorf("SetOfferBudget", fwSubject(id), ErrUnknownFramework, "")
	}
	fw.budget = n
	return nil
}

// clients resolves roles (all subscribed roles when empty) to clients.
func (a *Allocator) clients(op, id string, roles []string) ([]*client, error) {
	fw, ok := a.frameworks[id]
	if !ok {
		return nil, errorf(op, fwSubject(id), ErrUnknownFramework, "")
	}
	var out []*client
	if len(roles) == 0 {
		for _, c := range fw.clients {
			if c.subscribed {
				out = append(out, c)
			}
		}
		return out, nil
	}
	for _, r := range roles {
		c, ok := fw.clients[r]
		if !ok || !c.subscribed {
			return nil, errorf(op, fwSubject(id), ErrUnknownRole, "it is not subscribed to role %q", r)
		}
		out = append(out, c)
	}
	return out, nil
}

// Suppress stops offers to a framework for the given roles (all its roles
// when none are given) until Unsuppress. Filters are untouched.
func (a *Allocator) Suppress(id string, roles ...string) error {
	cs, err := a.clients("Suppress", id, roles)
	for _, c := range cs {
		c.suppressed = true
	}
	return err
}

// Unsuppress resumes offers for the given roles (all when none). Unlike
// Mesos' REVIVE it does not clear filters; call ReviveFilters for that.
func (a *Allocator) Unsuppress(id string, roles ...string) error {
	cs, err := a.clients("Unsuppress", id, roles)
	for _, c := range cs {
		c.suppressed = false
	}
	return err
}

// ReviveFilters clears the framework's decline filters for the given roles
// (all when none). It does not unsuppress.
func (a *Allocator) ReviveFilters(id string, roles ...string) error {
	cs, err := a.clients("ReviveFilters", id, roles)
	for _, c := range cs {
		a.clearFilters(c)
	}
	return err
}
