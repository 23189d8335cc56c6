package allocator

import (
	"github.com/agora-sched/agora/pkg/resources"
)

// Shares returns every framework's dominant share: over all its roles,
// the largest fraction of any scalar of the reachable cluster it holds
// (offers included), unweighted. GPUs are left out if so configured.
func (a *Allocator) Shares() map[string]float64 {
	out := make(map[string]float64, len(a.frameworks))
	for id, fw := range a.frameworks {
		var sum scalars
		for _, c := range fw.clients {
			addS(&sum, &c.alloc)
		}
		out[id] = a.share(&sum)
	}
	return out
}

// DominantShare is r's dominant share of the reachable cluster, counted
// as the allocator counts it: kinds excluded from shares are left out.
func (a *Allocator) DominantShare(r resources.Resources) float64 {
	return a.share(&r.Scalars)
}

// RoleShares returns every known role's weighted dominant share: what the
// role and its sub-roles hold over the cluster total, divided by its weight.
func (a *Allocator) RoleShares() map[string]float64 {
	out := make(map[string]float64, len(a.roles))
	for name, n := range a.roles {
		out[name] = a.share(&n.alloc) / n.weight
	}
	return out
}

// Allocated returns what a framework holds in each of its roles, summed
// over agents (scalars only: ports are per agent, see AllocatedOn).
func (a *Allocator) Allocated(fw string) (map[string]resources.Resources, error) {
	f, ok := a.frameworks[fw]
	if !ok {
		return nil, errorf("Allocated", fwSubject(fw), ErrUnknownFramework, "")
	}
	out := make(map[string]resources.Resources, len(f.clients))
	for role, c := range f.clients {
		if c.alloc != (scalars{}) {
			out[role] = resources.Resources{Scalars: c.alloc}
		}
	}
	return out, nil
}

// AllocatedOn returns exactly what a framework holds in a role on an agent.
func (a *Allocator) AllocatedOn(fw, role, agentName string) (resources.Resources, error) {
	c, ag, err := a.lookup("AllocatedOn", fw, role, agentName, resources.Resources{})
	if err != nil || c == nil {
		return resources.Resources{}, err
	}
	return ag.holds(c), nil
}

// AgentAvailable returns what is not allocated on an agent (reserved parts
// included).
func (a *Allocator) AgentAvailable(agentName string) (resources.Resources, error) {
	ag := a.agents.get(agentName)
	if ag == nil {
		return resources.Resources{}, errorf("AgentAvailable", agentSubject(agentName), ErrUnknownAgent, "")
	}
	return ag.free(), nil
}

// Stats returns counters for metrics.
func (a *Allocator) Stats() Stats {
	s := Stats{
		Agents:          len(a.agentList),
		Frameworks:      len(a.frameworks),
		Roles:           len(a.roles),
		Filters:         a.filters,
		Total:           resources.Resources{Scalars: a.total},
		Allocated:       resources.Resources{Scalars: a.allocated},
		Rounds:          a.round,
		LastRoundOffers: a.lastOffers,
	}
	s.ReachableAgents = len(a.agentList) - a.unreachable
	for _, fw := range a.frameworks {
		if fw.active {
			s.ActiveFrameworks++
		}
	}
	return s
}
