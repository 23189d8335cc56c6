package agent

import (
	"context"
	"errors"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// errRetry asks for the task to be synced again after a backoff.
var errRetry = errors.New("retry")

// dispatch hands queued tasks to at most Workers goroutines, started per
// item: an idle agent keeps one goroutine, not a pool (simulated agents run
// by the thousand). The queue never hands out one task twice at once.
func (a *Agent) dispatch(ctx context.Context, wg *sync.WaitGroup) {
	slots := make(chan struct{}, a.cfg.Workers)
	for {
		slots <- struct{}{}
		uid, shutdown := a.queue.Get()
		if shutdown {
			return
		}
		wg.Go(func() {
			defer func() { <-slots }()
			a.process(ctx, uid)
		})
	}
}

func (a *Agent) process(ctx context.Context, uid types.UID) {
	defer a.queue.Done(uid)
	if err := a.sync(ctx, uid); err != nil {
		if ctx.Err() != nil {
			return
		}
		if !errors.Is(err, errRetry) {
			a.log.Error(err, "syncing task", "uid", uid)
		}
		a.queue.AddRateLimited(uid)
		return
	}
	a.queue.Forget(uid)
}

// plan is what one sync does outside the lock.
type plan struct {
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
	a.mu.Lock()
	t := a.tasks[uid]
	e, listed := a.entryLocked(uid)
	if t == nil {
		_, done := a.forgotten[uid]
		if done && !listed {
			delete(a.forgotten, uid) // the master dropped the entry
		}
		a.mu.Unlock()
		if done || !listed {
			return nil
		}
		return a.admit(ctx, uid, e)
	}
	if listed && t.key.Name == "" {
		t.key = entryKey(e) // recovered without a name
	}
	read := a.needsReadLocked(t, listed, e)
	a.mu.Unlock()
	if read {
		if err := a.read(ctx, t); err != nil {
			return err
		}
		if !listed && a.liveOrUnread(t) {
			// The master lists a bound task until it ends: look again
			// once it has written. Only "gone" may kill a running process.
			a.queue.AddAfter(uid, time.Second)
			return nil
		}
	}
	return a.step(ctx, t, e)
}

func entryKey(e agorav1.AssignedTask) types.NamespacedName {
	return types.NamespacedName{Namespace: e.Namespace, Name: e.Name}
}

// admit reads a listed Task the agent has no record of and admits it.
func (a *Agent) admit(ctx context.Context, uid types.UID, e agorav1.AssignedTask) error {
	a.mu.Lock()
	seq, rv := a.listedSeq, a.listedRV
	a.mu.Unlock()
	if e.ResourceVersion != "" && !e.Lost && !e.Kill {
		// A plain bind: the master wrote nothing on the Task since the
		// version it bound, so that version is fresh enough, and the watch
		// cache has it already. Its later writes are flagged in the entry.
		rv = e.ResourceVersion
	}
	obj, err := a.getAt(ctx, entryKey(e), rv)
	switch {
	case apierrors.IsNotFound(err):
		a.done(uid) // deleted: the master unlists it
		return nil
	case err != nil:
		return err
	case obj.UID != uid:
		a.done(uid) // replaced by a Task of the same name
		return nil
	}
	a.mu.Lock()
	t := a.admitLocked(obj)
	if t == nil {
		a.mu.Unlock()
		if isTerminal(obj.Status.State) {
			a.done(uid) // ended without the agent
		}
		return nil
	}
	t.readSeq = seq
	a.mu.Unlock()
	return a.step(ctx, t, e)
}

// done marks a listed task the agent has nothing to do for, so that its
// lingering entry is not read again.
func (a *Agent) done(uid types.UID) {
	a.mu.Lock()
	if _, ok := a.listed[uid]; ok {
		a.forgotten[uid] = struct{}{}
	}
	a.mu.Unlock()
}

// needsReadLocked: t must be read from the apiserver before deciding. An
// unlisted task may be gone (only a read tells); a recovered one has no
// object yet; Resume and the master's lost flag make the agent's copy stale.
func (a *Agent) needsReadLocked(t *task, listed bool, e agorav1.AssignedTask) bool {
	if t.gone {
		return false
	}
	return !listed || t.base == nil || t.reread || a.staleLocked(t, e)
}

// liveOrUnread: t's Task exists and has not ended.
func (a *Agent) liveOrUnread(t *task) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !t.gone && (t.base == nil || !isTerminal(t.base.Status.State))
}

// read gets t's Task from the apiserver. Gone (or replaced by a new Task
// of the same name) means its process must stop and nothing is written.
func (a *Agent) read(ctx context.Context, t *task) error {
	a.mu.Lock()
	key, seq, rv := t.key, a.listedSeq, a.listedRV
	a.mu.Unlock()
	var obj *agorav1.Task
	if key.Name != "" {
		var err error
		obj, err = a.getAt(ctx, key, rv)
		if err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t.readSeq, t.reread = seq, false
	if obj != nil && obj.UID == t.uid {
		t.observe(obj)
	} else {
		t.gone = true
	}
	return nil
}

// step decides on t and carries the decision out.
func (a *Agent) step(ctx context.Context, t *task, e agorav1.AssignedTask) error {
	a.mu.Lock()
	p := a.decideLocked(t, e)
	a.mu.Unlock()

	if p.launch != nil {
		go a.launch(ctx, t, p.launch)
	}
	if p.kill {
		if err := a.exec.Kill(string(t.uid), p.grace); err != nil {
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

// decideLocked works out the next step for t, read or gone, given its
// entry e in the Assignment (zero if unlisted).
func (a *Agent) decideLocked(t *task, e agorav1.AssignedTask) plan {
	var p plan
	if e.BindTime != nil && t.bind == nil {
		t.bind, t.role = e.BindTime, e.Role
	}
	alive := (t.launched || t.launching) && t.final == nil
	killOrdered := e.Kill || (!t.gone && t.base.Spec.Kill)
	stop := t.gone || killOrdered || isTerminal(t.base.Status.State)
	if alive && stop && !t.killed && !t.launching {
		p.kill, p.grace = true, t.grace
	}
	if t.gone {
		p.forget = t.forgettable()
		return p
	}
	if !t.launched && !t.launching && t.final == nil {
		if killOrdered {
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
		p.forget = t.forgettable()
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
		if out.ResourceVersion != w.preRV {
			a.heardLocked()
		}
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
		// Someone else wrote (the master, or a newer state than the
		// agent read); decide again on the current object. Invalid is the
		// CRD refusing a change of a terminal state.
		a.mu.Lock()
		seq := a.listedSeq
		a.mu.Unlock()
		fresh, gerr := a.get(ctx, w.key)
		a.mu.Lock()
		switch {
		case gerr == nil && fresh.UID == t.uid:
			t.base, t.readSeq = fresh, seq
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
	if _, ok := a.listed[t.uid]; ok {
		// Its entry lingers until the master's next write. An unlisted
		// task needs no mark: the agent reads only listed ones.
		a.forgotten[t.uid] = struct{}{}
	}
	a.mu.Unlock()
}
