package controllers

import (
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Leases are judged by when the master saw them change, on its own clock
// (like the node lifecycle controller), never by their renewTime, so
// clock skew between machines cannot fail agents or frameworks.

func (e *engine) onLease(obj client.Object, deleted bool) {
	if deleted {
		return // judged by its silence
	}
	k := key(obj.GetNamespace(), obj.GetName())
	l := e.leases[k]
	if l != nil && !newer(obj.GetResourceVersion(), l.rv) {
		return
	}
	if l == nil {
		l = &leaseObs{}
		e.leases[k] = l
	}
	l.rv, l.seenAt = obj.GetResourceVersion(), e.clock.Now()
	if obj.GetNamespace() == e.opts.AgentNamespace {
		if a := e.agents[obj.GetName()]; a != nil && a.inAlloc && !a.reachable {
			e.agentBack(a)
		}
	}
	for _, f := range e.frameworks {
		if f.ns == obj.GetNamespace() && !f.connected && f.leaseKey() == k && !f.tornDown {
			f.connected = true
			e.syncFramework(f)
		}
	}
}

// lastSeen is when the master last saw the lease change, or since if later
// (a new leader gives everyone a full timeout).
func (e *engine) lastSeen(leaseKey string, since time.Time) time.Time {
	if l := e.leases[leaseKey]; l != nil && l.seenAt.After(since) {
		return l.seenAt
	}
	return since
}

// judgeFrameworks marks frameworks Inactive when their Lease is silent for
// FrameworkTimeout, and tears them down past their failoverTimeout.
func (e *engine) judgeFrameworks(now time.Time) {
	for _, f := range e.frameworks {
		if f.tornDown || f.deleted || f.obj == nil {
			continue
		}
		silent := now.Sub(e.lastSeen(f.leaseKey(), f.since))
		if f.connected && silent > e.opts.FrameworkTimeout {
			f.connected = false
			e.syncFramework(f)
		}
		if !f.connected && silent > max(e.opts.FrameworkTimeout, f.failoverTimeout()) {
			e.tearDown(f, silent)
		}
	}
}
