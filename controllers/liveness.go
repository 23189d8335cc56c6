package controllers

import (
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Leases are judged by when the master saw them change, on its own clock
// (like the node lifecycle controller), never by their renewTime, so
// clock skew between machines cannot fail agents or frameworks. An agent's
// status writes count as its heartbeats too (agentHeard).

func (e *engine) onLease(obj client.Object, deleted bool) {
	if deleted {
		return // judged by its silence
	}
	k := key(obj.GetNamespace(), obj.GetName())
	l := e.leases[k]
	if l != nil && !newer(obj.GetResourceVersion(), l.rv) {
		return
	}
	first := l == nil
	if first {
		l = &leaseObs{}
		e.leases[k] = l
	}
	l.rv, l.seenAt = obj.GetResourceVersion(), e.clock.Now()
	// The first sight (a new leader's list) is no heartbeat: the agent may
	// have been silent for long.
	if obj.GetNamespace() == e.opts.AgentNamespace && !first {
		e.agentHeard(obj.GetName())
	}
	for _, f := range e.frameworks {
		if f.ns == obj.GetNamespace() && !f.connected && f.leaseKey() == k && !f.tornDown {
			f.connected = true
			e.syncFramework(f)
		}
	}
}

// agentHeard: the master saw the agent change its Lease, its Agent status
// or a Task status it reports. Each is a heartbeat (as the node lifecycle
// controller counts a Node's status as well as its Lease), so a busy agent
// renews its Lease less often (docs/design.md, Liveness).
func (e *engine) agentHeard(name string) {
	if name == "" {
		return
	}
	k := key(e.opts.AgentNamespace, name)
	l := e.leases[k]
	if l == nil {
		l = &leaseObs{} // no rv yet: the Lease's first version is newer
		e.leases[k] = l
	}
	l.seenAt = e.clock.Now()
	a := e.agents[name]
	if a == nil {
		return
	}
	if a.inAlloc && !a.reachable {
		e.agentBack(a)
	}
	if a.reachable {
		e.syncAgentReady(a, "the agent heartbeats again")
	}
}

// agentWrote: a Task's status changed to one its agent reports (the
// master's own states carry SOURCE_MASTER; frameworks cannot write status).
func agentWrote(old, cur *agorav1.TaskStatus) bool {
	switch cur.Source {
	case agorav1.SourceAgent, agorav1.SourceExecutor:
		return !equality.Semantic.DeepEqual(old, cur)
	}
	return false
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
