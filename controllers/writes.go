package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// writeOutcome is how a conditioned write ended.
type writeOutcome int

const (
	wrote      writeOutcome = iota // the write landed
	notApplied                     // the fresh object no longer wants it (someone else wrote first)
	gone                           // the object was deleted
	failed                         // transient failure or the master is stopping
)

const writeAttempts = 5

// patchStatus applies mutate to a copy of base and writes its status with
// base's resourceVersion as a precondition (so two writers never both
// win). On a conflict it rereads the object from the apiserver and tries
// again if mutate still applies; mutate returns false when it does not.
// It returns the latest object it knows.
func patchStatus[T client.Object](ctx context.Context, m *Master, base T, mutate func(T) bool) (T, writeOutcome) {
	return conditionedWrite(ctx, m, base, mutate, func(cur, next T) error {
		return m.client.Status().Patch(ctx, next, client.MergeFromWithOptions(cur, client.MergeFromWithOptimisticLock{}))
	})
}

// deleteIf deletes base with its UID and resourceVersion as preconditions,
// the way patchStatus writes: on a conflict it rereads the object and
// deletes it at the version read if still(it) holds.
func deleteIf[T client.Object](ctx context.Context, m *Master, base T, still func(T) bool) (T, writeOutcome) {
	uid := base.GetUID()
	return conditionedWrite(ctx, m, base, func(x T) bool { return x.GetUID() == uid && still(x) }, func(cur, _ T) error {
		rv := cur.GetResourceVersion()
		return m.client.Delete(ctx, cur, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	})
}

// conditionedWrite is patchStatus and deleteIf: write applies the change
// (next, which mutate prepared from cur) at cur's resourceVersion.
func conditionedWrite[T client.Object](ctx context.Context, m *Master, base T, mutate func(T) bool, write func(cur, next T) error) (T, writeOutcome) {
	cur := base
	for attempt := 0; attempt < writeAttempts; attempt++ {
		if ctx.Err() != nil {
			return cur, failed
		}
		next := cur.DeepCopyObject().(T)
		if !mutate(next) {
			return cur, notApplied
		}
		err := write(cur, next)
		switch {
		case err == nil:
			return next, wrote
		case apierrors.IsNotFound(err):
			return cur, gone
		case apierrors.IsConflict(err):
			fresh := cur.DeepCopyObject().(T)
			if gerr := m.reader.Get(ctx, client.ObjectKeyFromObject(cur), fresh); gerr != nil {
				if apierrors.IsNotFound(gerr) {
					return cur, gone
				}
				backoff(ctx, attempt)
				continue
			}
			cur = fresh
		case apierrors.IsInvalid(err):
			// CEL refused it: the object moved on (e.g. a final state).
			fresh := cur.DeepCopyObject().(T)
			if gerr := m.reader.Get(ctx, client.ObjectKeyFromObject(cur), fresh); gerr == nil {
				cur = fresh
			}
			if !mutate(cur.DeepCopyObject().(T)) {
				return cur, notApplied
			}
			m.log.Error(err, "write refused", "object", client.ObjectKeyFromObject(cur))
			return cur, failed
		default:
			backoff(ctx, attempt)
		}
	}
	return cur, failed
}

func backoff(ctx context.Context, attempt int) {
	t := time.NewTimer(time.Duration(50<<attempt) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// taskStatusJob writes a task's status with mutate and hands the outcome
// and the latest object to done on the engine.
func (e *engine) taskStatusJob(base *agorav1.Task, mutate func(*agorav1.Task) bool, after func(), done func(e *engine, obj *agorav1.Task, out writeOutcome)) job {
	base = base.DeepCopy()
	return func(ctx context.Context) msg {
		obj, out := patchStatus(ctx, e.m, base, mutate)
		if out == failed && ctx.Err() != nil {
			return nil
		}
		if out == wrote && after != nil {
			after()
		}
		return func(e *engine) { done(e, obj, out) }
	}
}

// offerStatusJob is taskStatusJob for offers.
func (e *engine) offerStatusJob(base *agorav1.Offer, before func(), mutate func(*agorav1.Offer) bool, done func(e *engine, obj *agorav1.Offer, out writeOutcome)) job {
	base = base.DeepCopy()
	return func(ctx context.Context) msg {
		if before != nil {
			before()
		}
		obj, out := patchStatus(ctx, e.m, base, mutate)
		if out == failed && ctx.Err() != nil {
			return nil
		}
		return func(e *engine) { done(e, obj, out) }
	}
}

// offerDeleteJob is offerStatusJob for the delete that settles an
// accepted offer: it applies while the offer is still unsettled.
func (e *engine) offerDeleteJob(base *agorav1.Offer, before func(), done func(e *engine, obj *agorav1.Offer, out writeOutcome)) job {
	base = base.DeepCopy()
	return func(ctx context.Context) msg {
		if before != nil {
			before()
		}
		obj, out := deleteIf(ctx, e.m, base, func(x *agorav1.Offer) bool {
			return x.Status.Phase == "" || x.Status.Phase == agorav1.OfferOutstanding
		})
		if out == failed && ctx.Err() != nil {
			return nil
		}
		return func(e *engine) { done(e, obj, out) }
	}
}

// deleteJob deletes obj if it is still the same object (UID precondition).
func (e *engine) deleteJob(obj client.Object, done func(e *engine, err error)) job {
	uid := obj.GetUID()
	obj = obj.DeepCopyObject().(client.Object)
	return func(ctx context.Context) msg {
		err := e.m.client.Delete(ctx, obj, client.Preconditions{UID: &uid})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			err = nil
		}
		if err != nil && ctx.Err() != nil {
			return nil
		}
		return func(e *engine) { done(e, err) }
	}
}
