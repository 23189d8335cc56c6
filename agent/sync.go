package agent

import (
	"context"
	"errors"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// errRetry asks for the task to be synced again after a backoff.
var errRetry = errors.New("retry")

func (a *Agent) processNext(ctx context.Context) bool {
	uid, shutdown := a.queue.Get()
	if shutdown {
		return false
	}
	defer a.queue.Done(uid)
	if err := a.sync(ctx, uid); err != nil {
		if ctx.Err() != nil {
			return true
		}
		if !errors.Is(err, errRetry) {
			a.log.Error(err, "syncing task", "uid", uid)
		}
		a.queue.AddRateLimited(uid)
		return true
	}
	a.queue.Forget(uid)
	return true
}

// plan is what one sync does outside the lock.
type plan struct {
	lookup bool
	launch *agorav1.Task
	kill   bool
	grace  time.Duration
	write  *statusWrite
	forget bool // the executor may drop the task, and so does the agent
}

// sync brings one task forward: admit, launch, kill, write its status,
// forget it. The workqueue never syncs one task in two workers at once, so
// each write is decided on everything written before it.
func (a *Agent) sync(ctx context.Context, uid types.UID) error {
	obj := a.objByUID(uid)
	a.mu.Lock()
	t := a.tasks[uid]
	if t == nil {
		if _, ok := a.forgotten[uid]; ok {
			if obj == nil || isTerminal(obj.Status.State) {
				delete(a.forgotten, uid) // the cache has caught up
			}
			a.mu.Unlock()
			return nil
		}
		if obj == nil {
			a.mu.Unlock()
			return nil
		}
		if t = a.admitLocked(obj); t == nil {
			a.mu.Unlock()
			return nil
		}
	} else if obj != nil {
		t.observe(obj)
	}
	p := a.decideLocked(t, obj != nil)
	a.mu.Unlock()

	if p.lookup {
		return a.lookup(ctx, t)
	}
	if p.launch != nil {
		go a.launch(ctx, t, p.launch)
	}
	if p.kill {
		if err := a.exec.Kill(string(uid), p.grace); err != nil {
			a.log.Error(err, "killing task", "task", t.key)
			return errRetry
		}
		a.mu.Lock()
		t.killed = true
		a.mu.Unlock()
	}
	if p.write != nil {
		return a.write(ctx, t, p.write)
	}
	if p.forget {
		a.forget(t)
	}
	return nil
}

// decideLocked works out the next step for t. inStore says whether the
// informer has the task's object.
func (a *Agent) decideLocked(t *task, inStore bool) plan {
	var p plan
	if !inStore && !t.gone {
		// Not in the synced cache: gone, or the cache lags. Only a read by
		// name tells, and only "gone" may kill a running process.
		p.lookup = true
		return p
	}
	alive := (t.launched || t.launching) && t.final == nil
	stop := t.gone || t.base.Spec.Kill || isTerminal(t.base.Status.State)
	if alive && stop && !t.killed && !t.launching {
		p.kill, p.grace = true, t.grace
	}
	if t.gone {
		p.forget = t.final != nil
		return p
	}
	if !t.launched && !t.launching && t.final == nil {
		if t.base.Spec.Kill {
			t.final = agentFailure(agorav1.TaskKilled, agorav1.ReasonTaskKilledDuringLaunch,
				"the task was killed before it was launched")
			a.summaryChangedLocked()
		} else {
			t.launching = true
			p.launch = t.base.DeepCopy()
		}
	}
	if isTerminal(t.base.Status.State) {
		// Written, by us (perhaps before a restart) or by someone else.
		p.forget = t.final != nil
		return p
	}
	if a.paused {
		return p // Resume queues every task again
	}
	switch {
	case t.final != nil && t.base.Status.State == agorav1.TaskLost:
		// The CRD lets LOST become RUNNING only; the terminal state follows.
		p.write = runningWrite(t)
	case t.final != nil:
		p.write = terminalWrite(t)
	case t.running && t.base.Status.State != agorav1.TaskRunning:
		p.write = runningWrite(t)
	case t.running && t.healthy != nil && (t.base.Status.Healthy == nil || *t.base.Status.Healthy != *t.healthy):
		p.write = healthWrite(t)
	}
	return p
}

// lookup reads a task the informer does not have. Gone (or replaced by a
// new Task of the same name) means its process must stop and nothing is
// written.
func (a *Agent) lookup(ctx context.Context, t *task) error {
	a.mu.Lock()
	key := t.key
	a.mu.Unlock()
	var obj *agorav1.Task
	var err error
	if key.Name != "" {
		obj, err = a.get(ctx, key)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if obj != nil && obj.UID == t.uid {
		// The cache lags; look again when it has caught up.
		t.observe(obj)
		a.queue.AddAfter(t.uid, time.Second)
		return nil
	}
	t.gone = true
	a.queue.Add(t.uid)
	return nil
}

func (a *Agent) launch(ctx context.Context, t *task, obj *agorav1.Task) {
	err := a.exec.Launch(ctx, obj)
	a.mu.Lock()
	t.launching = false
	if err != nil {
		if t.final == nil {
			t.final = agentFailure(agorav1.TaskFailed, agorav1.ReasonContainerLaunchFailed, err.Error())
			a.summaryChangedLocked()
		}
	} else {
		t.launched = true
	}
	a.mu.Unlock()
	if err != nil && ctx.Err() == nil {
		a.log.Error(err, "launching task", "task", t.key)
	}
	a.queue.Add(t.uid)
}

// write sends one status write and records its outcome.
func (a *Agent) write(ctx context.Context, t *task, w *statusWrite) error {
	out, err := a.patch(ctx, w)
	switch {
	case err == nil:
		a.mu.Lock()
		t.wrote(w.preRV, out)
		a.writes++
		a.mu.Unlock()
		// Sync again: a terminal write is followed by forget; a RUNNING
		// written on the way out of LOST by the terminal state.
		a.queue.Add(t.uid)
		return nil
	case apierrors.IsNotFound(err):
		a.mu.Lock()
		t.gone = true
		a.mu.Unlock()
		a.queue.Add(t.uid)
		return nil
	case apierrors.IsConflict(err), apierrors.IsInvalid(err):
		// Someone else wrote (the master, or a newer state than our cache
		// shows); decide again on the current object. Invalid is the
		// CRD refusing a change of a terminal state.
		fresh, gerr := a.get(ctx, w.key)
		a.mu.Lock()
		switch {
		case gerr == nil && fresh.UID == t.uid:
			t.base = fresh
		case gerr == nil || apierrors.IsNotFound(gerr):
			t.gone = true
		}
		a.mu.Unlock()
		if apierrors.IsInvalid(err) {
			a.log.Error(err, "status write refused", "task", w.key)
		}
		return errRetry
	default:
		a.log.Error(err, "writing task status", "task", w.key)
		return errRetry
	}
}

// forget drops an ended task once its final state is in the API (or its
// object is gone). The executor's records (checkpoint, cgroups) go only
// now, so an agent restart before this point reports the task again.
func (a *Agent) forget(t *task) {
	a.mu.Lock()
	launched := t.launched
	a.mu.Unlock()
	if launched {
		if err := a.exec.Forget(string(t.uid)); err != nil {
			a.log.Error(err, "forgetting task", "task", t.key)
		}
	}
	a.mu.Lock()
	delete(a.tasks, t.uid)
	a.forgotten[t.uid] = struct{}{}
	a.mu.Unlock()
}
