package controllers

import (
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// evaluateTask decides an unbound task with no state: bind it, park it
// until its offer's fate is known, or end it (invariant 2).
func (e *engine) evaluateTask(t *taskState) {
	if t.obj.Spec.Kill {
		e.finaliseTask(t, agorav1.TaskKilled, agorav1.ReasonTaskKilledDuringLaunch, "killed before it was bound")
		return
	}
	o := e.offers[t.offer]
	if o == nil {
		e.invalidOffer(t, fmt.Sprintf("offer %q does not exist (it was never made, or was settled and deleted)", t.obj.Spec.OfferRef.Name))
		return
	}
	if o.uid != "" && o.uid != t.offerUID {
		e.invalidOffer(t, fmt.Sprintf("offer %q has UID %s, not %s: the task names an older offer of the same name", o.name, o.uid, t.offerUID))
		return
	}
	if o.unfit {
		// Set aside by the rebuild: judged once it is fitted (rebuildfit.go).
		e.parked[o.key] = append(e.parked[o.key], t.key)
		return
	}
	switch o.stage {
	case offerCreating, offerSettling, offerWithdrawing:
		e.parked[o.key] = append(e.parked[o.key], t.key)
		return
	case offerSettled:
		e.invalidOffer(t, fmt.Sprintf("offer %q was already %s", o.name, settledWord(o)))
		return
	}
	if o.obj.Spec.Answer != nil {
		// Answered: the settle's consistent list decides this task.
		e.parked[o.key] = append(e.parked[o.key], t.key)
		e.startSettle(o)
		return
	}
	e.judgeTask(t, o, false)
}

func settledWord(o *offerState) string {
	if o.obj != nil && o.obj.Status.Phase != "" {
		return map[agorav1.OfferPhase]string{
			agorav1.OfferAccepted: "accepted and settled", agorav1.OfferDeclined: "declined and settled",
			agorav1.OfferRescinded: "rescinded", agorav1.OfferExpired: "expired",
		}[o.obj.Status.Phase]
	}
	return "settled"
}

// judgeTask binds t on the outstanding (or settling) offer o, or ends it.
func (e *engine) judgeTask(t *taskState, o *offerState, settling bool) {
	switch {
	case o.uid != t.offerUID:
		e.invalidOffer(t, fmt.Sprintf("offer %q has UID %s, not %s", o.name, o.uid, t.offerUID))
	case t.fw != o.fw:
		e.invalidOffer(t, fmt.Sprintf("offer %q was made to framework %q, not %q", o.name, o.obj.Spec.FrameworkName, t.obj.Spec.FrameworkName))
	case t.agent != o.agent:
		e.finaliseTask(t, agorav1.TaskError, agorav1.ReasonTaskInvalid,
			fmt.Sprintf("spec.agentName %q differs from offer %q's agent %q", t.agent, o.name, o.agent))
	case e.agentLeft(t, o):
	case !o.remaining.Contains(t.res):
		e.finaliseTask(t, agorav1.TaskError, agorav1.ReasonTaskInvalid,
			fmt.Sprintf("needs %s but offer %q has only %s left", t.res, o.name, o.remaining))
	default:
		e.bindTask(t, o)
	}
}

// agentLeft drops t if the agent of its offer was removed or is
// unreachable: an answer that beat the offer's rescind still names it. As
// in Mesos, the task failed to launch for a passing cause and may be
// launched again elsewhere: TASK_DROPPED, or TASK_LOST for a framework
// that is not partition-aware, never TASK_ERROR.
func (e *engine) agentLeft(t *taskState, o *offerState) bool {
	reason, why := "", ""
	switch a := e.agents[o.agent]; {
	case a == nil || !a.inAlloc:
		reason, why = agorav1.ReasonAgentRemoved, "was removed"
	case !a.reachable:
		reason, why = agorav1.ReasonAgentUnreachable, "is unreachable"
	default:
		return false
	}
	e.dropTask(t, reason, fmt.Sprintf("offer %q's agent %q %s", o.name, o.agent, why))
	return true
}

func (e *engine) invalidOffer(t *taskState, message string) {
	e.dropTask(t, agorav1.ReasonInvalidOffers, message)
}

// dropTask ends an unbound task that failed to launch for a cause outside
// it: TASK_DROPPED, or TASK_LOST for a framework that is not
// partition-aware.
func (e *engine) dropTask(t *taskState, reason, message string) {
	state := agorav1.TaskLost
	if f := e.frameworks[t.fw]; f != nil && f.partitionAware {
		state = agorav1.TaskDropped
	}
	e.finaliseTask(t, state, reason, message)
}

// bindTask books the task on its offer and lists it in its agent's
// Assignment: that entry is the bind (docs/design.md). The task stays
// binding until a stored Assignment lists it.
func (e *engine) bindTask(t *taskState, o *offerState) {
	e.bookOnOffer(t, o)
	o.pendingBinds++
	t.bound, t.binding = true, true
	// Whole seconds, as the API stores it: the entry compares equal after
	// its round trip.
	now := metav1.NewTime(e.clock.Now().Truncate(time.Second))
	t.bind, t.bindRV = &now, t.obj.ResourceVersion
	e.noteAssignment(t)
}

// bindLanded: a stored Assignment lists the binding task.
func (e *engine) bindLanded(t *taskState) {
	e.endBind(t)
	e.syncTask(t)
}

// endBind ends the task's bind in flight and counts it off its offer,
// which may then settle.
func (e *engine) endBind(t *taskState) {
	t.binding = false
	o := e.offers[t.offer]
	if o == nil || o.uid != t.offerUID {
		return
	}
	if o.pendingBinds > 0 {
		o.pendingBinds--
	}
	e.maybeFinishSettle(o)
}

// dropBinds ends the binds in flight on a removed agent: no Assignment
// will list them. The tasks stay bound and are marked lost with the
// agent's other tasks.
func (e *engine) dropBinds(agent string) {
	for _, t := range e.agentTasks[agent] {
		if t.binding {
			e.endBind(t)
		}
	}
}

// bookOnOffer moves a task's resources from its offer's remainder to the
// task (the allocator's books do not change): the offer settles with it
// counted. unbook is the inverse.
func (e *engine) bookOnOffer(t *taskState, o *offerState) {
	o.remaining, _ = o.remaining.Subtract(t.res)
	o.nLaunched++
	t.accounted, t.role = true, o.role
}

// unbook takes a task's resources off its books: back into its offer if
// that still holds resources, else back to the allocator.
func (e *engine) unbook(t *taskState) {
	if !t.accounted {
		return
	}
	if o := e.holdingOffer(t); o != nil {
		t.accounted = false
		o.remaining = o.remaining.Add(t.res)
		o.nLaunched--
		return
	}
	e.releaseTask(t) // it clears accounted: clearing it first made this a no-op
}

// holdingOffer is the offer the task names while that offer (the same one,
// by UID) still holds resources in the allocator, else nil.
func (e *engine) holdingOffer(t *taskState) *offerState {
	if o := e.offers[t.offer]; o != nil && o.uid == t.offerUID && o.holdsAlloc() {
		return o
	}
	return nil
}

// finaliseTask writes a master-sourced state on an unbound task; it never
// consumed anything.
func (e *engine) finaliseTask(t *taskState, state agorav1.TaskState, reason, message string) {
	e.writeMasterState(t, state, reason, message, func(x *agorav1.Task, now *metav1.Time) bool {
		if x.Status.BindTime != nil || x.Status.State != "" {
			return false
		}
		x.Status.CompletionTime = now
		return true
	}, func(e *engine, t *taskState, obj *agorav1.Task, out writeOutcome) {
		if out == wrote {
			invalidTasksTotal.WithLabelValues(string(state), reason).Inc()
			if state != agorav1.TaskKilled {
				e.event(obj, "Warning", "TaskDropped", "Drop", "%s %s: %s", state, reason, message)
			}
		}
		if out == gone {
			e.forgetTask(t)
			return
		}
		if newer(obj.ResourceVersion, t.obj.ResourceVersion) {
			t.obj = obj
			e.syncTask(t)
		}
	})
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
