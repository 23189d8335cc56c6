package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// finalKillTimeout bounds the SIGKILL phase; a cgroup that cannot be
// emptied in this time has processes stuck in the kernel (D state).
const finalKillTimeout = 30 * time.Second

// Kill ends a task: SIGTERM to every process in its cgroup, then, after
// the grace period, SIGKILL to whatever is left (frozen first, so nothing
// escapes by forking). grace 0 uses the task's kill grace period; a
// negative grace kills at once. Kill returns at once; the Exited event
// (with Killed set) reports the end. Killing an ended task is a no-op, and
// so is a second Kill while one is in its grace period. A task still being
// launched is not known yet (ErrUnknownTask): retry once Launch returned.
func (r *Runtime) Kill(id string, grace time.Duration) error {
	t, err := r.lookup(id)
	if err != nil {
		return err
	}
	if grace == 0 {
		grace = t.launch.KillGracePeriod
	}
	if grace < 0 {
		grace = 0
	}
	return r.startKill(t, grace, ReasonKilled)
}

// startKill checkpoints the kill request (so the next agent finishes it
// and reports the task as killed) and runs it in the background.
func (r *Runtime) startKill(t *task, grace time.Duration, reason string) error {
	r.mu.Lock()
	select {
	case <-t.done:
		r.mu.Unlock()
		return nil
	default:
	}
	if t.killing {
		r.mu.Unlock()
		return nil
	}
	t.killing = true
	r.mu.Unlock()
	k := &killRecord{RequestedAt: time.Now(), Grace: grace, Reason: reason}
	if prev := readKill(t.ckDir); prev != nil {
		k = prev // a first request's reason and deadline stand
	} else if err := writeJSONAtomic(filepath.Join(t.ckDir, killFile), k); err != nil {
		r.mu.Lock()
		t.killing = false
		r.mu.Unlock()
		return err
	}
	go r.runKill(t, k)
	return nil
}

func (r *Runtime) runKill(t *task, k *killRecord) {
	deadline := k.RequestedAt.Add(k.Grace)
	if time.Until(deadline) > 0 {
		if _, err := signalAll(t.cg, unix.SIGTERM); err != nil {
			r.cfg.Logf("task %s: SIGTERM: %v", t.id, err)
		}
		timer := time.NewTimer(time.Until(deadline))
		select {
		case <-t.done:
			timer.Stop()
			return
		case <-r.stop:
			// Closed: the kill is checkpointed, the next Runtime ends it.
			timer.Stop()
			return
		case <-timer.C:
		}
	}
	// The supervisor sees its child die, records the status and exits;
	// that arrives as the Exited event.
	if err := t.cg.KillAll(finalKillTimeout); err != nil && !errors.Is(err, os.ErrNotExist) {
		r.cfg.Logf("task %s: SIGKILL: %v", t.id, err)
	}
}
