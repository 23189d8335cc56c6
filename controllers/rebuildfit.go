package controllers

import (
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// The rebuild replays the outstanding offers before the tasks, so that the
// tasks' replay can judge unbound tasks against their offers. Until its
// tasks are replayed and charged to it, an offer is booked at its full
// size, although tasks bound on it may have ended since and given back
// what it lent them, which the master may have offered again. So a live
// task bound on another offer, or another outstanding offer, may not fit
// beside it in the middle of the replay, though the previous leader's
// books were whole. What does not fit is set aside and fitted once all is
// replayed: the tasks first (they run), then the offers, at what their
// tasks left of them.

// rebuildUnfit is what did not fit the books during the rebuild's replay.
type rebuildUnfit struct {
	tasks  []*taskState
	offers []*offerState // outstanding and unanswered
}

// fitUnfit books what the replay set aside. What still does not fit is a
// real conflict (two masters overlapped): a task's agent has its
// unanswered offers rescinded to make room for it, and an offer that does
// not fit is rescinded.
func (e *engine) fitUnfit() {
	u := e.unfit
	e.unfit = nil // what fails now is logged and withdrawn as in live events
	for _, t := range u.tasks {
		if e.tasks[t.key] != t || t.accounted || !t.bound || terminal(t.state) {
			continue
		}
		if !e.bookTask(t) {
			e.makeRoomFor(t)
		}
	}
	for _, o := range u.offers {
		e.fitOffer(o)
	}
}

// makeRoomFor rescinds the unanswered offers on t's agent, taking back
// what they hold, until the live task t fits the books.
func (e *engine) makeRoomFor(t *taskState) {
	for _, o := range e.offers {
		if o.agent != t.agent || o.stage != offerOutstanding || o.obj.Spec.Answer != nil || o.remaining.IsEmpty() {
			continue
		}
		e.recoverOffer(o, 0)
		e.withdraw(o, agorav1.OfferRescinded, RescindUnaccountable, "the agent's resources are taken by tasks that run on it")
		if e.bookTask(t) {
			return
		}
	}
	e.logUnbooked(t)
}

// fitOffer books a set-aside offer at what the tasks bound on it, running
// or ended, left of it, or rescinds it if that does not fit.
func (e *engine) fitOffer(o *offerState) {
	if e.offers[o.key] != o || o.stage != offerOutstanding || o.obj.Spec.Answer != nil {
		return
	}
	o.unfit = false
	defer e.unpark(o.key) // the unbound tasks naming it, judged now
	rest := o.res
	for name, uid := range o.seenTasks {
		t := e.tasks[key(o.ns, name)]
		if t == nil || uid != o.uid || t.offerUID != o.uid || !t.bound {
			continue
		}
		left, err := rest.Subtract(t.res)
		if err != nil {
			left = resources.Resources{} // its tasks took more than all of it
		}
		rest = left
		o.nLaunched++
	}
	if rest.IsEmpty() {
		return // all of it is in its tasks; its answer settles it
	}
	if err := e.alloc.AddAllocation(o.fw, o.role, o.agent, rest); err != nil {
		e.log.Error(err, "offer does not fit its agent; rescinding it", "offer", o.key)
		e.withdraw(o, agorav1.OfferRescinded, RescindUnaccountable, "the agent's resources are already allocated")
		return
	}
	o.remaining = rest
	if !e.clock.Now().Before(o.expiresAt) {
		e.expire(o) // as adoptOffer does
	}
}
