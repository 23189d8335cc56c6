package controllers

import (
	"context"
	"fmt"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// Summary status (shares, counts) is written at most once per object per
// statusPeriod; a change of phase or conditions is written at once.

type fwCounts struct {
	states      map[string]int32
	active      int32
	outstanding int32
}

// counts tallies tasks and offers per framework (one pass per tick).
func (e *engine) counts() (map[string]*fwCounts, map[agorav1.TaskState]int) {
	per := map[string]*fwCounts{}
	get := func(fw string) *fwCounts {
		c := per[fw]
		if c == nil {
			c = &fwCounts{states: map[string]int32{}}
			per[fw] = c
		}
		return c
	}
	global := map[agorav1.TaskState]int{}
	for _, t := range e.tasks {
		s := t.state
		if s == "" {
			continue
		}
		c := get(t.fw)
		c.states[string(s)]++
		global[s]++
		if !ended(s) {
			c.active++
		}
	}
	for _, o := range e.offers {
		if o.stage == offerOutstanding || o.stage == offerSettling || o.stage == offerWithdrawing {
			get(o.fw).outstanding++
		}
	}
	return per, global
}

func (e *engine) phase(f *fwState) agorav1.FrameworkPhase {
	switch {
	case f.tornDown:
		return agorav1.FrameworkTornDown
	case !f.allowed:
		return agorav1.FrameworkRejected
	case !f.connected || f.obj.Spec.Deactivated:
		return agorav1.FrameworkInactive
	default:
		return agorav1.FrameworkActive
	}
}

// writeStatuses writes the frameworks' and roles' summaries that are due.
func (e *engine) writeStatuses(now time.Time, force bool) {
	per, global := e.counts()
	for _, s := range allTaskStates {
		tasksByState.WithLabelValues(string(s)).Set(float64(global[s]))
	}
	for _, f := range e.frameworks {
		if f.obj == nil || f.deleted {
			continue
		}
		e.writeFrameworkStatusWith(f, now, force, per[f.key])
	}
	e.writeRoleStatuses(now)
}

// writeFrameworkStatus writes one framework's status if due (a phase or
// condition change is always due).
func (e *engine) writeFrameworkStatus(f *fwState, now time.Time, force bool) {
	c := &fwCounts{states: map[string]int32{}}
	for _, t := range e.tasks {
		if t.fw == f.key && t.state != "" {
			c.states[string(t.state)]++
			if !ended(t.state) {
				c.active++
			}
		}
	}
	for _, o := range e.offers {
		if o.fw == f.key && (o.stage == offerOutstanding || o.stage == offerSettling || o.stage == offerWithdrawing) {
			c.outstanding++
		}
	}
	e.writeFrameworkStatusWith(f, now, force, c)
}

func (e *engine) writeFrameworkStatusWith(f *fwState, now time.Time, force bool, c *fwCounts) {
	if f.obj == nil || f.deleted || e.ctx.Err() != nil {
		return
	}
	if c == nil {
		c = &fwCounts{states: map[string]int32{}}
	}
	phase := e.phase(f)
	// A new generation is written at once too: observedGeneration tells
	// the user that the master acted on a suppress or a revive.
	phaseKey := fmt.Sprintf("%s|%t|%s|%d", phase, f.connected, f.rejectMsg, f.obj.Generation)
	shares, dominant := e.frameworkShares(f)
	summary := fmt.Sprintf("%v|%d|%d|%s|%v", c.states, c.active, c.outstanding, dominant, shares)
	phaseChanged := phaseKey != f.lastPhaseKey()
	if !force && !phaseChanged && (summary == f.lastSummary || now.Sub(f.lastStatus) < statusPeriod) {
		return
	}
	f.lastPhase, f.lastSummary, f.lastStatus = phase, summary, now
	f.phaseKey = phaseKey
	frameworkShare.WithLabelValues(f.key).Set(parseShare(dominant))

	base := f.obj.DeepCopy()
	next := base.DeepCopy()
	st := &next.Status
	st.Phase = phase
	st.FrameworkID = f.uid
	st.ObservedGeneration = f.obj.Generation
	if f.allowed && st.RegisteredTime == nil {
		st.RegisteredTime = &metav1.Time{Time: now}
	}
	if f.tornDown && st.TornDownTime == nil {
		st.TornDownTime = &metav1.Time{Time: now}
	}
	st.DominantShare = dominant
	st.Shares = shares
	st.ActiveTasks, st.TaskCounts, st.OutstandingOffers = c.active, c.states, c.outstanding
	reg := metav1.Condition{Type: agorav1.FrameworkConditionRegistered, Status: metav1.ConditionTrue, Reason: "Registered",
		Message: "the master accepted the framework", ObservedGeneration: f.obj.Generation}
	if !f.allowed {
		reg.Status, reg.Reason, reg.Message = metav1.ConditionFalse, "RoleNotAllowed", f.rejectMsg
	} else if f.tornDown {
		reg.Status, reg.Reason, reg.Message = metav1.ConditionFalse, "TornDown", "the framework was torn down after its failoverTimeout; delete and recreate it"
	}
	conn := metav1.Condition{Type: agorav1.FrameworkConditionConnected, Status: metav1.ConditionTrue, Reason: "LeaseRenewed",
		Message: fmt.Sprintf("lease %s is renewed", f.leaseKey()), ObservedGeneration: f.obj.Generation}
	if !f.connected {
		conn.Status, conn.Reason = metav1.ConditionFalse, "LeaseExpired"
		conn.Message = fmt.Sprintf("lease %s was not renewed within %s", f.leaseKey(), e.opts.FrameworkTimeout)
	}
	for _, cond := range []metav1.Condition{reg, conn} {
		cond.LastTransitionTime = metav1.NewTime(now)
		meta.SetStatusCondition(&st.Conditions, cond)
	}
	e.do(func(ctx context.Context) msg {
		if err := e.m.client.Status().Patch(ctx, next, client.MergeFrom(base)); err != nil && ctx.Err() == nil && !isNotFound(err) {
			e.log.Error(err, "writing framework status", "framework", f.key)
			return func(e *engine) { e.statusWriteFailed(f, phaseKey, summary) }
		}
		return nil
	})
}

// statusWriteFailed makes the next round write the status again: the books
// say it was written, and nothing may change to make it due again.
func (e *engine) statusWriteFailed(f *fwState, phaseKey, summary string) {
	if e.frameworks[f.key] != f || f.phaseKey != phaseKey || f.lastSummary != summary {
		return // a later write is already on its way
	}
	f.phaseKey = "" // compare with what is stored
	f.lastSummary, f.lastStatus = "", time.Time{}
}

func (f *fwState) lastPhaseKey() string {
	if f.phaseKey == "" && f.obj != nil {
		// First sight: take what is written, so a new leader does not rewrite it.
		conn := meta.IsStatusConditionTrue(f.obj.Status.Conditions, agorav1.FrameworkConditionConnected)
		msg := ""
		if c := meta.FindStatusCondition(f.obj.Status.Conditions, agorav1.FrameworkConditionRegistered); c != nil && c.Status == metav1.ConditionFalse && c.Reason == "RoleNotAllowed" {
			msg = c.Message
		}
		return fmt.Sprintf("%s|%t|%s|%d", f.obj.Status.Phase, conn, msg, f.obj.Status.ObservedGeneration)
	}
	return f.phaseKey
}

// frameworkShares computes the framework's weighted dominant share per role.
func (e *engine) frameworkShares(f *fwState) ([]agorav1.RoleShare, string) {
	if !f.inAlloc {
		return nil, "0.000"
	}
	alloc, err := e.alloc.Allocated(f.key)
	if err != nil {
		return nil, "0.000"
	}
	var out []agorav1.RoleShare
	best := 0.0
	roles := make([]string, 0, len(alloc))
	for r := range alloc {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		// As the allocator counts it, so the status shows the share DRF uses.
		s := e.alloc.DominantShare(alloc[r]) / e.roleWeight(r)
		best = max(best, s)
		if len(out) < 8 {
			out = append(out, agorav1.RoleShare{Role: r, Share: fmt.Sprintf("%.3f", s), Allocated: agorav1.FromModel(alloc[r])})
		}
	}
	return out, fmt.Sprintf("%.3f", best)
}

func (e *engine) roleWeight(role string) float64 {
	if rr := e.roles[role]; rr != nil && rr.Spec.Weight != nil {
		if w := rr.Spec.Weight.AsApproximateFloat64(); w > 0 {
			return w
		}
	}
	return 1
}

func parseShare(s string) float64 {
	var f float64
	_, _ = fmt.Sscanf(s, "%f", &f)
	return f
}

// writeRoleStatuses writes each ResourceRole's share, allocation and
// framework count, coalesced.
func (e *engine) writeRoleStatuses(now time.Time) {
	shares := e.alloc.RoleShares()
	for role, s := range shares {
		roleShare.WithLabelValues(role).Set(s)
	}
	if now.Sub(e.lastRoleStatus) < statusPeriod {
		return
	}
	e.lastRoleStatus = now
	allocated := map[string]resources.Resources{}
	nfw := map[string]int32{}
	for _, f := range e.frameworks {
		if !f.inAlloc {
			continue
		}
		for _, r := range f.roles {
			nfw[r]++
		}
		if al, err := e.alloc.Allocated(f.key); err == nil {
			for r, res := range al {
				allocated[r] = allocated[r].Add(res)
			}
		}
	}
	for role, rr := range e.roles {
		next := agorav1.ResourceRoleStatus{Role: role, Share: fmt.Sprintf("%.3f", shares[role]),
			Allocated: agorav1.FromModel(allocated[role]), Frameworks: nfw[role], Conditions: rr.Status.Conditions}
		if rr.Status.Role == next.Role && rr.Status.Share == next.Share && rr.Status.Frameworks == next.Frameworks &&
			allocatedEqual(rr.Status.Allocated, allocated[role]) {
			continue
		}
		base := rr.DeepCopy()
		obj := rr.DeepCopy()
		obj.Status = next
		e.doIn(laneBackground, func(ctx context.Context) msg {
			if err := e.m.client.Status().Patch(ctx, obj, client.MergeFrom(base)); err != nil && ctx.Err() == nil && !isNotFound(err) {
				e.log.Error(err, "writing resource role status", "resourceRole", obj.Name)
			}
			return nil
		})
	}
}

func allocatedEqual(a agorav1.Resources, b resources.Resources) bool {
	m, err := a.Model()
	return err == nil && m.Equal(b)
}

var allTaskStates = []agorav1.TaskState{
	agorav1.TaskStaging, agorav1.TaskStarting, agorav1.TaskRunning, agorav1.TaskKilling, agorav1.TaskFinished,
	agorav1.TaskFailed, agorav1.TaskKilled, agorav1.TaskError, agorav1.TaskLost, agorav1.TaskDropped,
	agorav1.TaskUnreachable, agorav1.TaskGone, agorav1.TaskGoneByOperator, agorav1.TaskUnknown,
}
