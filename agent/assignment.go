package agent

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// startAssignmentWatch watches the agent's own Assignment, by name: the
// apiserver's watch cache indexes watches by metadata.name, so a write of
// one agent's Assignment wakes only that agent's watch, where a watch of
// Tasks by a custom resource's field wakes every agent's on every write.
func (a *Agent) startAssignmentWatch(ctx context.Context, wg *sync.WaitGroup) error {
	rc := a.cfg.Clients.Agora
	selector := fields.OneTermEqualSelector("metadata.name", a.cfg.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			var l agorav1.AssignmentList
			err := rc.Get().Resource("assignments").VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(&l)
			return &l, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			opts.Watch = true
			return rc.Get().Resource("assignments").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, &agorav1.Assignment{}, cache.SharedIndexInformerOptions{
		ObjectDescription: "assignment of agent " + a.cfg.Name,
	})
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.setAssignment(obj) },
		UpdateFunc: func(_, obj any) { a.setAssignment(obj) },
		DeleteFunc: func(any) { a.setAssignment(nil) },
	})
	if err != nil {
		return err
	}
	wg.Go(func() { inf.RunWithContext(ctx) })
	// The handler's own sync: a.listed holds the first list once it is done.
	if !cache.WaitForCacheSync(ctx.Done(), reg.HasSynced) {
		return ctx.Err()
	}
	return nil
}

// setAssignment takes the latest Assignment (nil: there is none) and queues
// every task it lists and every task it no longer lists.
func (a *Agent) setAssignment(obj any) {
	listed := map[types.UID]agorav1.AssignedTask{}
	rv := ""
	if asn, ok := obj.(*agorav1.Assignment); ok {
		rv = asn.ResourceVersion
		for _, e := range asn.Spec.Tasks {
			listed[e.UID] = e
		}
	}
	a.mu.Lock()
	old := a.listed
	a.listed = listed
	if rv != a.listedRV || rv == "" {
		// A new version: lost flags in it are news to every task read before.
		a.listedRV = rv
		a.listedSeq++
	}
	a.mu.Unlock()
	for uid := range listed {
		a.queue.Add(uid)
	}
	for uid := range old {
		if _, ok := listed[uid]; !ok {
			a.queue.Add(uid)
		}
	}
}

// entryLocked returns the entry of uid in the latest Assignment.
func (a *Agent) entryLocked(uid types.UID) (agorav1.AssignedTask, bool) {
	e, ok := a.listed[uid]
	return e, ok
}

// staleLocked: the master flagged t lost in an Assignment newer than the
// agent's last read of t, and that read did not show it lost. The agent's
// copy of the Task predates the master's LOST write; reading it again lets
// decideLocked report RUNNING. Once per Assignment version at most, so a
// flag the master has not cleared yet cannot make the agent read forever.
func (a *Agent) staleLocked(t *task, e agorav1.AssignedTask) bool {
	return e.Lost && t.readSeq < a.listedSeq && !isMasterLost(t.base.Status.State)
}
