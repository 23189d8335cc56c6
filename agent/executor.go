package agent

import (
	"context"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Executor runs tasks for one agent. The real one wraps agent/runtime (cgroups
// and supervisors); the simulated one in agent/sim only keeps timers. The
// agent core is the same for both, so what the master sees of a simulated
// agent is what a real one would write.
//
// Task IDs are the Task objects' UIDs: a new Task of the same name is a new
// task. The agent never calls an Executor while holding its own lock, and an
// Executor must never block delivering an event (queue them, see EventQueue).
type Executor interface {
	// Recover is called once, before any Launch, and returns the tasks the
	// executor still knows from before a restart (running or ended but not
	// yet forgotten).
	Recover(ctx context.Context) ([]RecoveredTask, error)
	// Launch starts the task. A nil error means an EventRunning (or an
	// EventExited) follows; an error means nothing runs and nothing is left
	// to Forget.
	Launch(ctx context.Context, task *agorav1.Task) error
	// Kill ends a task: SIGTERM, then SIGKILL after grace (0 kills at once).
	// Its EventExited has Killed set. Killing an ended task is a no-op.
	Kill(id string, grace time.Duration) error
	// Forget drops an ended task's records once its final state is written.
	Forget(id string) error
	// Events delivers task state changes, in order per task.
	Events() <-chan Event
}

// EventType says what an Event reports.
type EventType string

// Event types.
const (
	EventRunning EventType = "Running" // the process started; StartTime, Sandbox set
	EventHealth  EventType = "Health"  // the health check result changed; Healthy set
	EventExited  EventType = "Exited"  // the task ended; Exit set
)

// Event is a task state change reported by an Executor.
type Event struct {
	Type      EventType
	TaskID    string
	StartTime time.Time
	Sandbox   string
	Healthy   bool
	Exit      *ExitStatus
}

// ExitStatus is how a task ended.
type ExitStatus struct {
	// ExitCode of the process; meaningful when Signal is 0.
	ExitCode int
	// Signal that ended the process, 0 if it exited.
	Signal int
	// OOM: the kernel killed the task at its memory limit.
	OOM bool
	// Killed: Kill (or a failing health check) ended the task.
	Killed bool
	// Lost: the executor cannot tell how the task ended (its supervisor
	// vanished, the host rebooted).
	Lost bool
	// Reason is an Agora task reason (REASON_*) when the executor knows a
	// more specific one than the agent would infer, e.g. a health-check kill.
	Reason       string
	Message      string
	CPUSeconds   float64
	PeakMemBytes int64
	FinishedAt   time.Time
}

// RecoveredTask is a task an Executor still knows after a restart.
type RecoveredTask struct {
	ID string
	// Name is "namespace/name" of the Task, as given to Launch; the agent
	// uses it to look a task up whose object it does not see.
	Name      string
	StartTime time.Time
	Sandbox   string
	// Exit is nil while the task still runs (an EventExited follows).
	Exit *ExitStatus
}
