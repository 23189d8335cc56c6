package allocator

import (
	"math"

	"github.com/agora-sched/agora/pkg/resources"
)

// SetRole sets a role's weight and quota, creating the role if needed.
// A parent's weight and quota cover its whole subtree.
func (a *Allocator) SetRole(info RoleInfo) error {
	const op = "SetRole"
	subj := roleSubject(info.Name)
	if msg := validRoleName(info.Name); msg != "" {
		return errorf(op, subj, ErrInvalid, "%s", msg)
	}
	w := info.Weight
	if w == 0 {
		w = 1
	}
	if !(w > 0) || math.IsInf(w, 0) {
		return errorf(op, subj, ErrInvalid, "weight must be a positive number, got %v", info.Weight)
	}
	if err := info.Guarantee.Validate(); err != nil {
		return errorf(op, subj, ErrInvalid, "guarantee: %v", err)
	}
	if err := info.Limit.Validate(); err != nil {
		return errorf(op, subj, ErrInvalid, "limit: %v", err)
	}
	for k := range resources.NumScalars {
		if info.Limited.Has(k) && info.Guarantee.Scalars[k] > info.Limit.Scalars[k] {
			return errorf(op, subj, ErrInvalid, "guarantee of %s is above its limit; lower the guarantee or raise the limit", k)
		}
	}
	n := a.role(info.Name)
	n.configured = true
	n.weight = w
	n.guarantee = info.Guarantee.Scalars
	n.hasGuar = n.guarantee != scalars{}
	n.limit = info.Limit.Scalars
	n.limited = info.Limited & resources.AllScalars
	a.reindexQuota()
	return nil
}

// RemoveRole resets a role to weight 1 and no quota; the role itself stays
// while frameworks use it.
func (a *Allocator) RemoveRole(name string) error {
	n, ok := a.roles[name]
	if !ok || !n.configured {
		return errorf("RemoveRole", roleSubject(name), ErrUnknownRole, "it was not set with SetRole")
	}
	n.configured, n.weight, n.hasGuar, n.guarantee, n.limit, n.limited = false, 1, false, scalars{}, scalars{}, 0
	a.reindexQuota()
	a.prune(n)
	return nil
}

func (a *Allocator) reindexQuota() {
	a.guaranteed = a.guaranteed[:0]
	a.anyLimit = false
	for _, n := range a.roles {
		if n.hasGuar {
			a.guaranteed = append(a.guaranteed, n)
		}
		if n.limited != 0 {
			a.anyLimit = true
		}
	}
}

// topGuarantor returns the highest role on n's chain guaranteeing kind k:
// its unsatisfied guarantee is what the headroom holds for the subtree.
func (a *Allocator) topGuarantor(n *roleNode, k int) *roleNode {
	var top *roleNode
	for m := n; m != a.root; m = m.parent {
		if m.guarantee[k] > 0 {
			top = m
		}
	}
	return top
}

// computeRequired sums the unsatisfied guarantees: unreserved resources
// that stage 2 must leave for them.
func (a *Allocator) computeRequired() (unsatisfied bool) {
	a.required = scalars{}
	for _, n := range a.guaranteed {
		for k, g := range n.guarantee {
			if g <= 0 || n.alloc[k] >= g {
				continue
			}
			unsatisfied = true
			if a.topGuarantor(n, k) == n {
				a.required[k] += g - n.alloc[k]
			}
		}
	}
	return unsatisfied
}

// need is what role n still needs in stage 1: per guaranteed kind, the
// smallest unsatisfied guarantee on its chain.
func (a *Allocator) need(n *roleNode) (need scalars, guaranteed resources.KindSet, any bool) {
	for k := range need {
		need[k] = math.MaxInt64
	}
	for m := n; m != a.root; m = m.parent {
		if !m.hasGuar {
			continue
		}
		for k, g := range m.guarantee {
			if g > 0 {
				guaranteed |= 1 << k
				need[k] = min(need[k], max(g-m.alloc[k], 0))
			}
		}
	}
	for k := range need {
		if guaranteed.Has(resources.Kind(k)) && need[k] > 0 {
			any = true
		}
	}
	return need, guaranteed, any
}

// roleOffer returns what role n can be offered on ag in this stage, given
// the agent's unreserved availability unres: headroom for guarantees,
// stage 1 needs, the role's reservation and quota limits applied. same
// reports that the result is unres itself.
func (a *Allocator) roleOffer(ag *agent, n *roleNode, unres resources.Resources, stage int, quota bool) (o resources.Resources, same, ok bool) {
	o = unres
	same = true
	if quota && len(a.guaranteed) > 0 {
		for k := range o.Scalars {
			allowed := max(a.freeUnres[k]-a.required[k], 0)
			if top := a.topGuarantor(n, k); top != nil {
				allowed += max(top.guarantee[k]-top.alloc[k], 0)
			}
			if o.Scalars[k] > allowed {
				o.Scalars[k], same = allowed, false
			}
		}
	}
	if stage == 1 {
		need, kinds, any := a.need(n)
		if !any {
			return o, same, false
		}
		for k := range o.Scalars {
			if kinds.Has(resources.Kind(k)) && o.Scalars[k] > need[k] {
				o.Scalars[k], same = need[k], false
			}
		}
	}
	if ag.hasReserved {
		if rf, ok := ag.reservedFree(n.name); ok {
			o, same = o.Add(rf), false
		}
	}
	if a.anyLimit {
		for m := n; m != a.root; m = m.parent {
			if m.limited == 0 {
				continue
			}
			for k := range o.Scalars {
				if m.limited.Has(resources.Kind(k)) {
					if rem := max(m.limit[k]-m.alloc[k], 0); o.Scalars[k] > rem {
						o.Scalars[k], same = rem, false
					}
				}
			}
		}
	}
	return o, same, a.allocatable(&o.Scalars)
}
