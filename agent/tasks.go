package agent

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

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
	bind      *metav1.Time // the bind, from the task's Assignment entry
	role      string
	killed    bool         // the executor accepted a Kill
	final     *finalStatus // the terminal state to write, once known
	gone      bool         // the Task object is gone: write nothing

	// base is the freshest Task object known: the agent's last read or the
	// answer to its own last write, whichever is newer. Objects whose
	// resourceVersion our writes superseded are ignored, so a read that
	// raced a write never makes the agent write a state twice.
	base       *agorav1.Task
	superseded []string
	// readSeq is Agent.listedSeq when base was last read: a lost flag of a
	// later Assignment may be news to it (see staleLocked).
	readSeq uint64
	reread  bool // read the Task before deciding anything (Resume)
}

// holdsResources: an admitted task holds its resources until it ends.
func (t *task) holdsResources() bool { return t.final == nil }

// forgettable: t's end is known and no Launch is in flight. Forgetting t
// while its Launch has not returned would skip Executor.Forget (launched is
// not set yet) and leak its checkpoint and cgroups; launch queues t again
// when it returns.
func (t *task) forgettable() bool { return t.final != nil && !t.launching }

// observe takes a Task object read from the apiserver.
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

// initialSync reads the Task of every recovered task it knows the name of,
// then queues everything. It waits for every read, retrying failures, because
// nothing may be admitted before: a recovered task's resources are known only
// from its Task, and an unread one would count as nothing, so a task that
// does not fit beside it could be admitted (invariant 1). Dispatch, and so
// admission, starts after it returns.
func (a *Agent) initialSync(ctx context.Context) {
	a.mu.Lock()
	var recovered []*task
	for uid, t := range a.tasks { // only recovered tasks so far
		if e, ok := a.listed[uid]; ok {
			t.key = entryKey(e)
		}
		if t.key.Name != "" { // a nameless unlisted one is read as gone by sync
			recovered = append(recovered, t)
		}
	}
	a.mu.Unlock()
	for _, t := range recovered {
		err := recoveredReadBackoff.retry(ctx, func(ctx context.Context) bool {
			err := a.read(ctx, t) // NotFound is no error: t is gone and will be killed
			if err != nil {
				a.log.Error(err, "reading a recovered task; retrying", "task", t.key)
			}
			return err == nil
		})
		if err != nil {
			return // ctx ended
		}
	}
	a.mu.Lock()
	ids := make([]types.UID, 0, len(a.listed)+len(a.tasks))
	for id := range a.listed {
		ids = append(ids, id)
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

// recoveredReadBackoff spaces initialSync's retries of a failed read.
var recoveredReadBackoff = backoff{first: 100 * time.Millisecond, max: 5 * time.Second, jitter: 0.2}

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
