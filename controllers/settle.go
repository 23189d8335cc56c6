package controllers

import (
	"cmp"
	"context"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Settling an answered offer (the offer protocol, step 3):
//  1. list the Tasks naming the offer with a consistent read (not the cache);
//  2. bind, in creation order, those not bound yet that are valid and fit;
//     the others end ERROR/DROPPED/LOST;
//  3. once every bind write has landed, delete an accepted offer, or write
//     a declined one's status.phase with used, tasksLaunched and
//     filterUntil, conditioned on resourceVersion either way;
//  4. return the remainder to the allocator with the decline filter.
// An accepted offer is deleted rather than marked Accepted: its filter
// covers only a remainder and is not rebuilt after a failover (as no filter
// survives one in Mesos), and the write that would have kept it until then
// was a sixth of the hot path's offer writes (docs/design.md). A declined
// offer stays until its filter passes, so a new leader rebuilds the filter.
// Binds land before the settle write, so a master killed in between leaves
// an answered, unsettled offer that the next master settles again (bound
// tasks are then skipped): nothing is bound twice and no task is lost.
// Tasks the engine sees while an offer settles are parked and judged after.

func (e *engine) startSettle(o *offerState) {
	if o.stage != offerOutstanding {
		return
	}
	if e.settleFromBooks(o) {
		return
	}
	o.stage = offerSettling
	o.settleListed = false
	k, ns, name := o.key, o.ns, o.name
	base := o.obj.DeepCopy()
	e.do(func(ctx context.Context) msg {
		fresh := &agorav1.Offer{}
		err := e.m.reader.Get(ctx, client.ObjectKeyFromObject(base), fresh)
		var tasks agorav1.TaskList
		if err == nil {
			err = e.m.reader.List(ctx, &tasks, client.InNamespace(ns), client.MatchingFields{"spec.offerRef.name": name})
		}
		if err != nil && ctx.Err() != nil {
			return nil
		}
		return func(e *engine) { e.settleListed(k, fresh, tasks.Items, err) }
	})
}

func (e *engine) settleListed(k string, fresh *agorav1.Offer, tasks []agorav1.Task, err error) {
	o := e.offers[k]
	if o == nil || o.stage != offerSettling || o.settleListed {
		return
	}
	if err != nil {
		if isNotFound(err) {
			e.offerGone(o)
			return
		}
		e.log.Error(err, "listing the tasks of an answered offer", "offer", k)
		o.stage = offerOutstanding // the tick retries
		return
	}
	if string(fresh.UID) != o.uid {
		e.offerGone(o)
		return
	}
	if newer(fresh.ResourceVersion, o.obj.ResourceVersion) {
		o.obj = fresh
	}
	if fresh.Status.Phase != "" && fresh.Status.Phase != agorav1.OfferOutstanding {
		e.finishOffer(o, fresh) // another master settled it
		return
	}
	// Creation order decides which of several tasks get the last resources.
	slices.SortFunc(tasks, func(a, b agorav1.Task) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for i := range tasks {
		t := e.upsertTask(&tasks[i])
		newer := t != nil
		if t == nil { // not newer than the books: judge the books' version
			if t = e.tasks[key(tasks[i].Namespace, tasks[i].Name)]; t == nil || t.uid != string(tasks[i].UID) {
				continue
			}
		}
		if !t.bound && e.boundInAPI(t) {
			e.syncTask(t) // bound by an earlier master: account it
			continue
		}
		if newer && (t.bound || t.obj.Status.State != "") {
			// The list read a version the informer has not delivered
			// (a bound task already RUNNING, say). The books now hold
			// it, so the informer's copy will look old news: apply it
			// here, or its state is never counted.
			e.syncTask(t)
			continue
		}
		if t.bound || t.state != "" || t.obj.Status.State != "" || t.finalising {
			continue
		}
		e.judgeTask(t, o, true)
	}
	o.settleListed = true
	e.maybeFinishSettle(o)
}

// maybeFinishSettle writes the settlement once the binds have landed.
func (e *engine) maybeFinishSettle(o *offerState) {
	if o.stage != offerSettling || !o.settleListed || o.pendingBinds > 0 {
		return
	}
	ans := o.obj.Spec.Answer
	phase := agorav1.OfferAccepted
	if ans.Type == agorav1.OfferDecline {
		phase = agorav1.OfferDeclined
	}
	refuse := time.Duration(agorav1.DefaultRefuseSeconds) * time.Second
	if ans.RefuseSeconds != nil {
		refuse = time.Duration(*ans.RefuseSeconds) * time.Second
	}
	now := e.clock.Now()
	settled, until := metav1.NewTime(now), metav1.NewTime(now.Add(refuse))
	used, _ := o.res.Subtract(o.remaining)
	launched := o.nLaunched
	e.log.V(1).Info("settling offer", "offer", o.key, "phase", phase, "tasksLaunched", launched, "used", used.String())
	k, ns, name := o.key, o.ns, o.name
	var before func()
	if h := e.opts.Hooks.BeforeSettle; h != nil {
		before = func() { h(ns, name) }
	}
	st := agorav1.OfferStatus{Phase: phase, SettledTime: &settled, Used: agorav1.FromModel(used),
		TasksLaunched: launched, FilterUntil: &until}
	if phase == agorav1.OfferAccepted {
		o.accepted = &st
		e.do(e.offerDeleteJob(o.obj, before, func(e *engine, obj *agorav1.Offer, out writeOutcome) { e.acceptSettled(k, obj, out) }))
		return
	}
	e.do(e.offerStatusJob(o.obj, before, func(x *agorav1.Offer) bool {
		if x.Status.Phase != "" && x.Status.Phase != agorav1.OfferOutstanding {
			return false
		}
		x.Status = st
		return true
	}, func(e *engine, obj *agorav1.Offer, out writeOutcome) { e.settled(k, obj, out) }))
}

func (e *engine) settled(k string, obj *agorav1.Offer, out writeOutcome) {
	if o := e.offerWritten(k, offerSettling, obj, out); o != nil {
		e.finishOffer(o, obj) // another master settled it first
	}
}

// acceptSettled: the delete that settles an accepted offer ended. It ends
// as a settle's status write does (settled), the offer deleted standing for
// the status it would have had; the books keep it so until the informer
// reports the delete, so that a late Task is told it came after the answer.
func (e *engine) acceptSettled(k string, obj *agorav1.Offer, out writeOutcome) {
	o := e.offers[k]
	if o == nil || o.stage != offerSettling || o.accepted == nil {
		return // the informer reported the delete first (offerGone)
	}
	if out == wrote {
		o.deleting = true
		e.finishAccepted(o)
		return
	}
	if out != gone { // gone: offerGone settles it, with its filter
		o.accepted = nil
	}
	if out == notApplied && string(obj.UID) != o.uid {
		e.offerGone(o) // replaced by a newer offer of the same name
		return
	}
	e.settled(k, obj, out)
}

// finishAccepted records the settle of an accepted offer that is deleted.
func (e *engine) finishAccepted(o *offerState) {
	done := o.obj.DeepCopy()
	done.Status = *o.accepted
	o.obj, o.accepted = done, nil
	e.finishOffer(o, done)
}
