package controllers

import (
	"fmt"
	"slices"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/allocator"
)

// onFramework applies a Framework event (Mesos' SUBSCRIBE and
// UPDATE_FRAMEWORK are both just writes of the object).
func (e *engine) onFramework(obj *agorav1.Framework, deleted bool) {
	k := key(obj.Namespace, obj.Name)
	f := e.frameworks[k]
	if deleted {
		if f != nil && f.uid == string(obj.UID) {
			e.removeFramework(f)
		}
		return
	}
	if f != nil && f.uid != string(obj.UID) {
		e.removeFramework(f)
		e.forgetFramework(f)
		f = nil
	}
	if f == nil {
		// The stored status counts as just written: a new leader rewrites
		// it once its books are recovered, not with empty counts at once.
		now := e.clock.Now()
		f = &fwState{key: k, ns: obj.Namespace, name: obj.Name, uid: string(obj.UID), connected: true, since: now, lastStatus: now}
		e.frameworks[k] = f
	} else if f.obj != nil && !newer(obj.ResourceVersion, f.obj.ResourceVersion) {
		return
	}
	f.obj = obj
	f.lastPhase = obj.Status.Phase
	if obj.Status.Phase == agorav1.FrameworkTornDown {
		f.tornDown = true // final: a torn-down framework ID never comes back
	}
	f.roles = obj.Spec.Roles
	if len(f.roles) == 0 {
		f.roles = []string{allocator.DefaultRole}
	}
	f.partitionAware = slices.Contains(obj.Spec.Capabilities, agorav1.CapabilityPartitionAware)
	e.syncFramework(f)
}

// syncFramework brings the allocator in line with the framework: roles,
// suppression, revive, activity; it rescinds offers it may no longer hold
// (an inactive framework's, and those of roles it left).
func (e *engine) syncFramework(f *fwState) {
	if f.obj == nil || f.deleted {
		return
	}
	f.allowed, f.rejectMsg = e.admit(f)
	info := allocator.FrameworkInfo{
		ID: f.key, Roles: f.roles, SuppressedRoles: f.obj.Spec.SuppressedRoles,
		GPUAware: slices.Contains(f.obj.Spec.Capabilities, agorav1.CapabilityGPUResources),
	}
	var err error
	if !f.inAlloc {
		err = e.alloc.AddFramework(info)
		f.inAlloc = err == nil
	} else {
		err = e.alloc.UpdateFramework(info)
	}
	if err != nil {
		e.log.Error(err, "registering framework with the allocator", "framework", f.key)
		return
	}
	if rt := f.obj.Spec.ReviveTime; rt != nil && rt.Time.After(f.revive) {
		// REVIVE clears decline filters only; it does not unsuppress.
		_ = e.alloc.ReviveFilters(f.key)
		f.revive = rt.Time
	}
	if f.active() {
		_ = e.alloc.ActivateFramework(f.key)
	} else {
		_ = e.alloc.DeactivateFramework(f.key)
		why, msg := e.inactiveReason(f)
		e.rescindWhere(func(o *offerState) bool { return o.fw == f.key }, why, msg)
	}
	// SUPPRESS stops new offers only, as in Mesos: the framework may still
	// be launching on the offers it holds, and it declines the rest.
	e.rescindWhere(func(o *offerState) bool { return o.fw == f.key && !slices.Contains(f.roles, o.role) }, RescindRoleUnsubscribed,
		"the framework no longer subscribes to the offer's role")
	e.dirty = true
	e.writeFrameworkStatus(f, e.clock.Now(), false)
}

func (e *engine) inactiveReason(f *fwState) (string, string) {
	switch {
	case f.tornDown:
		return RescindFrameworkTornDown, "the framework was torn down"
	case !f.allowed:
		return RescindFrameworkRejected, f.rejectMsg
	case f.obj.Spec.Deactivated:
		return RescindFrameworkInactive, "the framework is deactivated (spec.deactivated)"
	default:
		return RescindFrameworkInactive, fmt.Sprintf("the framework's lease %s was not renewed within %s", f.leaseKey(), e.opts.FrameworkTimeout)
	}
}

// ensureFramework makes sure the allocator knows fw, so the tasks of a
// deleted framework can still be booked until they end.
func (e *engine) ensureFramework(fw string) *fwState {
	f := e.frameworks[fw]
	if f != nil && f.inAlloc {
		return f
	}
	if f == nil {
		ns, name := splitKey(fw)
		f = &fwState{key: fw, ns: ns, name: name, deleted: true, roles: []string{allocator.DefaultRole}, since: e.clock.Now()}
		e.frameworks[fw] = f
	}
	if err := e.alloc.AddFramework(allocator.FrameworkInfo{ID: fw, Roles: f.roles}); err == nil {
		f.inAlloc = true
		_ = e.alloc.DeactivateFramework(fw)
	}
	return f
}

func splitKey(k string) (string, string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return "", k
}

// tearDown: the scheduler stayed away past failoverTimeout. Its offers
// are rescinded and its live tasks killed (spec.kill); it stays TornDown.
func (e *engine) tearDown(f *fwState, silent time.Duration) {
	f.tornDown = true
	_ = e.alloc.DeactivateFramework(f.key)
	e.rescindWhere(func(o *offerState) bool { return o.fw == f.key }, RescindFrameworkTornDown, "the framework was torn down")
	e.killAll(f)
	frameworksTornDownTotal.Inc()
	e.event(f.obj, "Warning", "FrameworkTornDown", "TearDown",
		"scheduler away for %s, past its failoverTimeout %s: tasks killed", silent.Truncate(time.Second), f.failoverTimeout())
	e.writeFrameworkStatus(f, e.clock.Now(), true)
}

func (e *engine) killAll(f *fwState) {
	for _, t := range e.tasks {
		if t.fw == f.key && t.bound && !ended(t.state) {
			e.maybeKill(t)
		}
	}
}

// removeFramework: the Framework object was deleted. Its offers are
// deleted with it, its tasks killed; the allocator keeps booking them
// until they end, then forgets the framework.
func (e *engine) removeFramework(f *fwState) {
	f.deleted = true
	if f.inAlloc {
		_ = e.alloc.DeactivateFramework(f.key)
	}
	for _, o := range e.offers {
		if o.fw == f.key && o.obj != nil && !o.deleting {
			o.deleting = true
			if o.stage == offerOutstanding {
				o.withdrawPhase = agorav1.OfferRescinded // finished by the delete event
			}
			k := o.key
			e.doIn(laneBackground, e.deleteJob(o.obj, func(e *engine, err error) {
				if o := e.offers[k]; o != nil && err != nil {
					o.deleting = false
				}
			}))
		}
	}
	e.killAll(f)
	e.maybeForgetFramework(f)
}

// forgetIfDeleted drops framework fw if it was deleted and its last offer
// or task just left the books.
func (e *engine) forgetIfDeleted(fw string) {
	if f := e.frameworks[fw]; f != nil && f.deleted {
		e.maybeForgetFramework(f)
	}
}

// maybeForgetFramework drops a deleted framework once nothing of it is
// booked any more.
func (e *engine) maybeForgetFramework(f *fwState) {
	for _, t := range e.tasks {
		if t.fw == f.key && t.accounted {
			return
		}
	}
	for _, o := range e.offers {
		if o.fw == f.key && o.holdsAlloc() {
			return
		}
	}
	e.forgetFramework(f)
}

func (e *engine) forgetFramework(f *fwState) {
	if f.inAlloc {
		if err := e.alloc.RemoveFramework(f.key); err != nil {
			e.log.Error(err, "removing framework", "framework", f.key)
		}
		f.inAlloc = false
		for _, t := range e.tasks {
			if t.fw == f.key {
				t.accounted = false // RemoveFramework released them
			}
		}
	}
	delete(e.frameworks, f.key)
	frameworkShare.DeleteLabelValues(f.key)
}
