package controllers

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// AnnotationKillReason says why the master asked for a task's kill (it
// sets spec.kill when it tears a framework down; see docs/design.md).
const AnnotationKillReason = "scheduling.agora.dev/kill-reason"

// onTask applies an informer event (or a rebuild item) for a task.
func (e *engine) onTask(obj *agorav1.Task, deleted bool) {
	k := key(obj.Namespace, obj.Name)
	if deleted {
		if t := e.tasks[k]; t != nil && t.uid == string(obj.UID) {
			e.forgetTask(t)
		}
		return
	}
	var old *agorav1.TaskStatus
	if t := e.tasks[k]; t != nil && t.uid == string(obj.UID) {
		old = &t.obj.Status
	}
	if t := e.upsertTask(obj); t != nil {
		if old != nil && agentWrote(old, &obj.Status) {
			e.agentHeard(t.agent)
		}
		e.syncTask(t)
	}
}

// upsertTask records obj in the books if it is newer; it returns nil for a
// stale version.
func (e *engine) upsertTask(obj *agorav1.Task) *taskState {
	k := key(obj.Namespace, obj.Name)
	t := e.tasks[k]
	if t != nil && t.uid != string(obj.UID) {
		e.forgetTask(t) // recreated under the same name
		t = nil
	}
	if t == nil {
		res, _ := obj.Spec.Resources.Model()
		t = &taskState{
			key: k, ns: obj.Namespace, name: obj.Name, uid: string(obj.UID),
			fw: key(obj.Namespace, obj.Spec.FrameworkName), agent: obj.Spec.AgentName,
			offer: key(obj.Namespace, obj.Spec.OfferRef.Name), offerUID: obj.Spec.OfferRef.UID,
			res: res, obj: obj,
		}
		e.tasks[k] = t
		e.indexTask(obj)
		e.addAgentTask(t)
		return t
	}
	if sameVersion(obj.ResourceVersion, t.obj.ResourceVersion) {
		t.obj = obj
		return nil
	}
	if !newer(obj.ResourceVersion, t.obj.ResourceVersion) {
		return nil
	}
	t.obj = obj
	return t
}

// syncTask brings the books in line with the task's latest version.
func (e *engine) syncTask(t *taskState) {
	st := t.obj.Status
	if !t.bound && e.boundInAPI(t) {
		t.bound = true // bound by an earlier master
		if terminal(st.State) && !t.binding {
			// It ran and ended while no master watched (a failover): it
			// still counts as launched on its unsettled offer.
			e.chargeOffer(t)
		}
	}
	t.state = st.State
	switch {
	case terminal(st.State):
		e.releaseTask(t)
	case t.bound && !t.accounted && !t.binding:
		e.accountTask(t)
	}
	if ended(st.State) {
		if t.terminalSeen.IsZero() {
			t.terminalSeen = e.clock.Now()
			e.terminalTasks[t.key] = t
		}
	} else if !t.terminalSeen.IsZero() {
		t.terminalSeen = time.Time{} // LOST came back RUNNING
		delete(e.terminalTasks, t.key)
	}
	if !t.bound && st.State == "" && !t.finalising {
		e.evaluateTask(t)
		return
	}
	if t.bound && !ended(st.State) {
		e.maybeKill(t)
	}
	e.noteAssignment(t)
	e.forgetIfDeleted(t.fw)
}

// accountTask books a bound live task the books did not hold: bound by an
// earlier master, or found by the rebuild.
func (e *engine) accountTask(t *taskState) {
	if e.bookTask(t) {
		return
	}
	if e.unfit != nil {
		e.unfit.tasks = append(e.unfit.tasks, t) // fitted once the rebuild has replayed all (rebuildfit.go)
		return
	}
	e.logUnbooked(t)
}

// logUnbooked reports a bound live task that does not fit the books: the
// agent's admission keeps the node safe.
func (e *engine) logUnbooked(t *taskState) {
	e.log.Error(nil, "a bound task does not fit the allocator's books", "task", t.key, "agent", t.agent, "resources", t.res.String())
}

// bookTask books t on its offer, or beside it under one of its roles. It
// reports false only when t does not fit.
func (e *engine) bookTask(t *taskState) bool {
	a := e.agents[t.agent]
	if a == nil || !a.inAlloc {
		return true // booked when the agent registers (accountAgentTasks)
	}
	if e.chargeOffer(t) {
		return true
	}
	f := e.ensureFramework(t.fw)
	for _, role := range e.candidateRoles(t, f) {
		if err := e.alloc.AddAllocation(t.fw, role, t.agent, t.res); err == nil {
			t.role, t.accounted = role, true
			return true
		} else if role == "" {
			break
		}
	}
	return false
}

// chargeOffer books a bound task on its offer while the offer still holds
// resources: they move from the offer's remainder to the task, and the
// offer settles with the task counted.
func (e *engine) chargeOffer(t *taskState) bool {
	o := e.offers[t.offer]
	if o == nil || o.uid != t.offerUID {
		return false
	}
	t.role = o.role
	if !o.holdsAlloc() || o.stage == offerCreating || !o.remaining.Contains(t.res) {
		return false
	}
	e.bookOnOffer(t, o)
	return true
}

// candidateRoles are the roles a task may be booked under: the role its
// bind recorded, else its offer's role when known, else (a task bound by
// an older master that did not record it, its offer gone) the
// framework's roles.
func (e *engine) candidateRoles(t *taskState, f *fwState) []string {
	if r := t.obj.Status.Role; r != "" {
		return []string{r}
	}
	if t.role != "" {
		return []string{t.role}
	}
	if f != nil && len(f.roles) > 0 {
		return f.roles
	}
	return []string{"*"}
}

// releaseTask returns a task's resources to the allocator (no filter). A
// task that ended or was deleted returns them at once, even while the offer
// it was launched on is unanswered: the offer holds only what has not been
// launched on it (its remainder), so what the task held may be offered
// again without over-committing the agent (invariant 1, docs/design.md).
func (e *engine) releaseTask(t *taskState) {
	if !t.accounted {
		return
	}
	t.accounted = false
	a := e.agents[t.agent]
	if a == nil || !a.inAlloc {
		return
	}
	now := e.clock.Now()
	if t.role != "" && e.alloc.Recover(t.fw, t.role, t.agent, t.res, 0, now) == nil {
		e.dirty = true
		return
	}
	if f := e.frameworks[t.fw]; f != nil {
		for _, role := range f.roles {
			if e.alloc.Recover(t.fw, role, t.agent, t.res, 0, now) == nil {
				e.dirty = true
				return
			}
		}
	}
	e.log.Error(nil, "could not return a task's resources", "task", t.key, "role", t.role)
}

// forgetTask drops a deleted task from the books.
func (e *engine) forgetTask(t *taskState) {
	if t.binding {
		// No Assignment will list it now: give the resources back to the
		// offer, which no longer waits for this bind.
		e.unbook(t)
		e.endBind(t)
	}
	e.releaseTask(t)
	delete(e.tasks, t.key)
	delete(e.terminalTasks, t.key)
	e.removeAgentTask(t)
	e.forgetIfDeleted(t.fw)
}

// writeMasterState writes state, reason and message on t's status as the
// master's, one such write per task at a time (t.finalising): one asked
// for meanwhile follows it (the latest such). A write that fails is
// tried again by the tick (stateretry.go). check runs off the engine loop
// on the stored status: it says whether that may take the state and sets
// what goes with it. done gets the outcome, unless the task has been
// forgotten or recreated (another UID) meanwhile.
func (e *engine) writeMasterState(t *taskState, state agorav1.TaskState, reason, message string,
	check func(x *agorav1.Task, now *metav1.Time) bool,
	done func(e *engine, t *taskState, obj *agorav1.Task, out writeOutcome)) {
	write := func() { e.writeMasterState(t, state, reason, message, check, done) }
	if t.finalising {
		t.nextState = write
		return
	}
	t.finalising = true
	now := metav1.NewTime(e.clock.Now())
	tk := t.key
	e.do(e.taskStatusJob(t.obj, func(x *agorav1.Task) bool {
		if !check(x, &now) {
			return false
		}
		x.Status.State, x.Status.Reason, x.Status.Message = state, reason, message
		x.Status.Source = agorav1.SourceMaster
		return true
	}, nil, func(e *engine, obj *agorav1.Task, out writeOutcome) {
		t := e.tasks[tk]
		if t == nil || string(obj.UID) != t.uid {
			return
		}
		t.finalising = false
		e.stateWritten(t, out, write)
		done(e, t, obj, out)
		if next := t.nextState; next != nil && !t.finalising && e.tasks[tk] == t {
			t.nextState = nil
			next()
		}
	}))
}

// setTaskState writes a master-sourced state on a bound task that has not
// ended (agent unreachable or removed).
func (e *engine) setTaskState(t *taskState, state agorav1.TaskState, reason, message string) {
	bind, role := t.bind, t.role
	e.writeMasterState(t, state, reason, message, func(x *agorav1.Task, now *metav1.Time) bool {
		if ended(x.Status.State) || x.Status.State == state {
			return false
		}
		if x.Status.State == agorav1.TaskUnreachable && state != agorav1.TaskGone {
			return false
		}
		if x.Status.BindTime == nil && bind != nil {
			// The first state written on the task records its bind, as the
			// agent's first write would.
			x.Status.BindTime = bind
			if x.Status.Role == "" {
				x.Status.Role = role
			}
		}
		if ended(state) {
			x.Status.CompletionTime = now
		}
		return true
	}, func(e *engine, t *taskState, obj *agorav1.Task, out writeOutcome) {
		if out == wrote {
			tasksMarkedTotal.WithLabelValues(string(state), reason).Inc()
		}
		if out != gone && newer(obj.ResourceVersion, t.obj.ResourceVersion) {
			t.obj = obj
			e.syncTask(t)
		}
	})
}

// maybeKill asks the agent to kill a live task of a torn-down or deleted
// framework by setting spec.kill (see docs/design.md: the master's only
// Task spec write).
func (e *engine) maybeKill(t *taskState) {
	f := e.frameworks[t.fw]
	if t.killSent || t.obj.Spec.Kill || (f != nil && !f.tornDown && !f.deleted) {
		return
	}
	if f == nil && !e.frameworkGone(t.fw) {
		return
	}
	t.killSent = true
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"kill":true}}`,
		AnnotationKillReason, agorav1.ReasonFrameworkRemoved))
	obj := t.obj.DeepCopy()
	e.do(func(ctx context.Context) msg {
		err := e.m.client.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
		if err == nil || isNotFound(err) || ctx.Err() != nil {
			return nil
		}
		return func(e *engine) {
			if t := e.tasks[key(obj.Namespace, obj.Name)]; t != nil {
				t.killSent = false // retried on the framework's next sweep
			}
		}
	})
}

// frameworkGone: the books hold no framework of that key; frameworks are
// all known after the rebuild, so its tasks are orphans.
func (e *engine) frameworkGone(fw string) bool {
	_, ok := e.frameworks[fw]
	return !ok
}

// collectTasks deletes ended tasks kept past their retention.
func (e *engine) collectTasks(now time.Time) {
	for _, t := range e.terminalTasks {
		if t.deleting {
			continue
		}
		keep := e.opts.TaskRetention
		if f := e.frameworks[t.fw]; f != nil && !f.deleted {
			keep = max(keep, f.failoverTimeout())
		}
		if now.Sub(t.terminalSeen) < keep {
			continue
		}
		t.deleting = true
		tk := t.key
		e.doIn(laneBackground, e.deleteJob(t.obj, func(e *engine, err error) {
			if t := e.tasks[tk]; t != nil && err != nil {
				t.deleting = false
			}
		}))
	}
}

// accountAgentTasks books the bound live tasks of an agent that just
// registered with the allocator.
func (e *engine) accountAgentTasks(agent string) {
	for _, t := range e.agentTasks[agent] {
		if t.bound && !t.accounted && !t.binding && !terminal(t.state) {
			e.accountTask(t)
		}
	}
}

// liveTasksOn lists the bound tasks on an agent that have not ended.
func (e *engine) liveTasksOn(agent string) []*taskState {
	var out []*taskState
	for _, t := range e.agentTasks[agent] {
		if t.bound && !terminal(t.state) {
			out = append(out, t)
		}
	}
	return out
}
