package agent_test

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/agora-sched/agora/agent"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// fakeExec is a scripted Executor. Launch reports the task running and
// exited at once, as a quick task may before the runtime's Launch returns,
// then returns when release is closed (at once if release is nil).
type fakeExec struct {
	q          *agent.EventQueue
	recovered  []agent.RecoveredTask
	recoverErr error
	release    chan struct{}

	mu        sync.Mutex
	launched  []string
	forgotten []string
}

func newFakeExec() *fakeExec { return &fakeExec{q: agent.NewEventQueue()} }

func (f *fakeExec) Recover(context.Context) ([]agent.RecoveredTask, error) {
	return f.recovered, f.recoverErr
}

func (f *fakeExec) Launch(ctx context.Context, task *agorav1.Task) error {
	id := string(task.UID)
	f.mu.Lock()
	f.launched = append(f.launched, id)
	f.mu.Unlock()
	f.q.Push(agent.Event{Type: agent.EventRunning, TaskID: id, StartTime: time.Now(), Sandbox: "/sb/" + id})
	f.q.Push(agent.Event{Type: agent.EventExited, TaskID: id, Exit: &agent.ExitStatus{ExitCode: 0, FinishedAt: time.Now()}})
	if f.release != nil {
		select {
		case <-f.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (f *fakeExec) Kill(string, time.Duration) error { return nil }

func (f *fakeExec) Forget(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forgotten = append(f.forgotten, id)
	return nil
}

func (f *fakeExec) Events() <-chan agent.Event { return f.q.C() }

// forgets counts the Forget calls for id.
func (f *fakeExec) forgets(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, x := range f.forgotten {
		if x == id {
			n++
		}
	}
	return n
}

// wasLaunched: Launch was called for id.
func (f *fakeExec) wasLaunched(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.launched, id)
}
