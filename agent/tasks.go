package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// task is what the agent knows of one Task it admitted, recovered or must
// report. It is guarded by Agent.mu.
type task struct {
	uid   types.UID
	key   types.NamespacedName // zero for a recovered task not seen in the API yet
	res   resources.Resources
	grace time.Duration

	launching bool // Launch is in flight
	launched  bool // the executor knows it: Forget it at the end
	running   bool
	startTime time.Time
	sandbox   string
	healthy   *bool
	killed    bool         // the executor accepted a Kill
	final     *finalStatus // the terminal state to write, once known
	gone      bool         // the Task object is gone: write nothing

	// base is the freshest Task object known: the informer's or the answer
	// to our own last write, whichever is newer. Objects whose
	// resourceVersion our writes superseded are ignored, so a lagging
	// informer never makes the agent write a state twice.
	base       *agorav1.Task
	superseded []string
}

// holdsResources: an admitted task holds its resources until it ends.
func (t *task) holdsResources() bool { return t.final == nil }

// observe takes a Task object from the informer.
func (t *task) observe(obj *agorav1.Task) {
	t.key = types.NamespacedName{Namespace: obj.Namespace, Name: obj.Name}
	t.res = obj.Spec.Resources.MustModel()
	t.grace = gracePeriod(obj)
	if !slices.Contains(t.superseded, obj.ResourceVersion) {
		t.base = obj
	}
}

// wrote records the answer to our write made on top of preRV.
func (t *task) wrote(preRV string, obj *agorav1.Task) {
	t.superseded = append(t.superseded, preRV)
	if len(t.superseded) > 8 {
		t.superseded = t.superseded[1:]
	}
	t.base = obj
}

func gracePeriod(obj *agorav1.Task) time.Duration {
	if kp := obj.Spec.KillPolicy; kp != nil && kp.GracePeriod != nil {
		return kp.GracePeriod.Duration
	}
	return DefaultKillGracePeriod
}

const uidIndex = "uid"

// startInformer watches only this agent's Tasks, by the CRD's selectable
// field spec.agentName: one watch per agent, whatever the cluster's size.
func (a *Agent) startInformer(ctx context.Context, wg *sync.WaitGroup) error {
	rc := a.cfg.Clients.Agora
	selector := fields.OneTermEqualSelector("spec.agentName", a.cfg.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.FieldSelector = selector
			var l agorav1.TaskList
			err := rc.Get().Resource("tasks").VersionedParams(&opts, metav1.ParameterCodec).Do(ctx).Into(&l)
			return &l, err
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.FieldSelector = selector
			opts.Watch = true
			return rc.Get().Resource("tasks").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, &agorav1.Task{}, cache.SharedIndexInformerOptions{
		Indexers: cache.Indexers{uidIndex: func(obj any) ([]string, error) {
			return []string{string(obj.(*agorav1.Task).UID)}, nil
		}},
		ObjectDescription: "tasks of agent " + a.cfg.Name,
	})
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if t, ok := obj.(*agorav1.Task); ok {
			a.queue.Add(t.UID)
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	a.informer = inf
	wg.Go(func() { inf.RunWithContext(ctx) })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	return nil
}

// objByUID returns the informer's copy of a Task (read-only), or nil.
func (a *Agent) objByUID(uid types.UID) *agorav1.Task {
	objs, err := a.informer.GetIndexer().ByIndex(uidIndex, string(uid))
	if err != nil || len(objs) == 0 {
		return nil
	}
	return objs[0].(*agorav1.Task)
}

// recover asks the executor for the tasks it still has from before a
// restart. They count as admitted before anything new is admitted.
func (a *Agent) recover(ctx context.Context) error {
	recs, err := a.exec.Recover(ctx)
	if err != nil {
		return fmt.Errorf("agent: recovering tasks: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, r := range recs {
		t := &task{uid: types.UID(r.ID), launched: true, startTime: r.StartTime, sandbox: r.Sandbox,
			running: !r.StartTime.IsZero(), grace: DefaultKillGracePeriod}
		if ns, name, ok := strings.Cut(r.Name, "/"); ok {
			t.key = types.NamespacedName{Namespace: ns, Name: name}
		}
		if r.Exit != nil {
			t.final = finalFromExit(r.Exit)
		}
		a.tasks[t.uid] = t
	}
	a.log.Info("recovered tasks", "count", len(recs))
	return nil
}

// initialSync matches recovered tasks with their objects, so their
// resources count before any new task is admitted, then queues everything.
func (a *Agent) initialSync(context.Context) {
	objs := a.informer.GetStore().List()
	a.mu.Lock()
	ids := make([]types.UID, 0, len(objs)+len(a.tasks))
	for _, o := range objs {
		obj := o.(*agorav1.Task)
		if t := a.tasks[obj.UID]; t != nil {
			t.observe(obj)
		}
		ids = append(ids, obj.UID)
	}
	for id := range a.tasks {
		ids = append(ids, id)
	}
	if len(a.tasks) > 0 {
		a.summaryChangedLocked() // registration wrote the summary without them
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.queue.Add(id)
	}
}

// readEvents applies the executor's events to the tasks and queues them.
func (a *Agent) readEvents(ctx context.Context) {
	ch := a.exec.Events()
	for {
		var ev Event
		var ok bool
		select {
		case <-ctx.Done():
			return
		case ev, ok = <-ch:
			if !ok {
				return
			}
		}
		uid := types.UID(ev.TaskID)
		a.mu.Lock()
		t := a.tasks[uid]
		if t == nil {
			a.mu.Unlock()
			a.log.Info("event for an unknown task", "task", ev.TaskID, "type", ev.Type)
			continue
		}
		switch ev.Type {
		case EventRunning:
			t.running, t.startTime, t.sandbox = true, ev.StartTime, ev.Sandbox
		case EventHealth:
			h := ev.Healthy
			t.healthy = &h
		case EventExited:
			if t.final == nil && ev.Exit != nil {
				t.final = finalFromExit(ev.Exit)
				a.summaryChangedLocked()
			}
		}
		a.mu.Unlock()
		a.queue.Add(uid)
	}
}
