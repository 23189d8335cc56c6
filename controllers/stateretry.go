package controllers

import "time"

// A master-sourced task state (DROPPED, LOST, UNREACHABLE, GONE, ...) is
// written when the master decides it, and nothing may come later to make
// it due again: a task naming a missing offer has no next event, and an
// agent is marked unreachable once. So a write that failed past
// patchStatus' own retries (the apiserver unavailable for a while) is
// tried again by the tick, with a backoff per task.

// stateRetry is a failed master-sourced state write waiting for its turn.
type stateRetry struct {
	t     *taskState
	write func()
	at    time.Time
}

// maxStateRetryWait bounds the backoff between retries of one task's write.
const maxStateRetryWait = 30 * time.Second

// stateWritten records the outcome of t's master-sourced state write: a
// failed one is tried again later, anything else ends the retries.
func (e *engine) stateWritten(t *taskState, out writeOutcome, write func()) {
	if out != failed {
		t.stateFailures = 0
		delete(e.stateRetries, t.key)
		return
	}
	wait := min(time.Second<<min(t.stateFailures, 5), maxStateRetryWait)
	t.stateFailures++
	e.stateRetries[t.key] = &stateRetry{t: t, write: write, at: e.clock.Now().Add(wait)}
}

// retryStateWrites starts the failed state writes that are due.
func (e *engine) retryStateWrites(now time.Time) {
	for k, r := range e.stateRetries {
		switch {
		case e.tasks[k] != r.t:
			delete(e.stateRetries, k) // forgotten, or recreated under its name
		case r.t.finalising || now.Before(r.at):
		default:
			delete(e.stateRetries, k)
			r.write()
		}
	}
}
