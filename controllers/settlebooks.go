package controllers

import (
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Settling from the books (docs/design.md, the offer protocol, step 3).
// The consistent list of an offer's Tasks was the most expensive request
// the master made (a filtered scan of the namespace's Tasks, behind the
// watch cache catching up: 0.5 to 9 s under load at 1,000 agents), one per
// offer, holding a writer all along. When the answer carries the number of
// Tasks the framework created, and the master has seen that many naming
// the offer, it judges the Tasks it holds instead. A Task the count left
// out arrives after the settle and is dropped, like one created after the
// answer; the count can only make the master skip Tasks, never bind more
// than fit, so invariants 1 and 2 do not depend on it.

// settleTasksWait is how long an answered offer waits for the Tasks its
// answer counts (their watch events may trail the answer's) before the
// master falls back to listing them.
const settleTasksWait = 2 * time.Second

// indexTask notes a Task naming an offer the books hold.
func (e *engine) indexTask(obj *agorav1.Task) {
	ref := obj.Spec.OfferRef
	o := e.offers[key(obj.Namespace, ref.Name)]
	if ref.Name == "" || o == nil || o.stage == offerSettled {
		return
	}
	if o.seenTasks == nil {
		o.seenTasks = map[string]string{}
	}
	o.seenTasks[obj.Name] = ref.UID
}

// settleFromBooks settles an answered offer from the Tasks the books hold,
// or waits (up to settleTasksWait) for the ones its answer counts. It
// reports false when the master must list them instead.
func (e *engine) settleFromBooks(o *offerState) bool {
	ok := e.trySettleFromBooks(o)
	if !ok {
		settlesTotal.WithLabelValues("list").Inc()
	}
	return ok
}

func (e *engine) trySettleFromBooks(o *offerState) bool {
	ans := o.obj.Spec.Answer
	if ans == nil || ans.Tasks == nil || o.uid == "" {
		return false
	}
	var tasks []agorav1.Task
	seen := 0
	for name, uid := range o.seenTasks {
		if uid != o.uid {
			continue
		}
		seen++
		if t := e.tasks[key(o.ns, name)]; t != nil && t.offerUID == o.uid {
			tasks = append(tasks, *t.obj)
		}
	}
	if seen < int(*ans.Tasks) {
		return e.awaitTasks(o)
	}
	settlesTotal.WithLabelValues("books").Inc()
	o.stage = offerSettling
	o.settleListed = false
	e.settleListed(o.key, o.obj, tasks, nil)
	return true
}

// awaitTasks keeps an answered offer outstanding while the Tasks its
// answer counts are on their way: each one that arrives tries the settle
// again, and so does a timer, which after settleTasksWait lists them.
func (e *engine) awaitTasks(o *offerState) bool {
	if o.awaitSince.IsZero() {
		o.awaitSince = time.Now()
		k := o.key
		time.AfterFunc(settleTasksWait, func() {
			e.inbox.push(func(e *engine) {
				if o := e.offers[k]; o != nil && o.stage == offerOutstanding {
					e.startSettle(o)
				}
			})
		})
		return true
	}
	return time.Since(o.awaitSince) < settleTasksWait
}
