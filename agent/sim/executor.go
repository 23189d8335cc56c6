package sim

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/agora-sched/agora/agent"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Annotations that steer a simulated task.
const (
	// AnnotationDuration is how long the task "runs" (a Go duration, e.g. "30s").
	AnnotationDuration = "sim.agora.dev/duration"
	// AnnotationExitCode is the task's exit code (default 0).
	AnnotationExitCode = "sim.agora.dev/exit-code"
	// AnnotationOOM "true" ends the task as if killed at its memory limit.
	AnnotationOOM = "sim.agora.dev/oom"
)

// sleepCmd matches the commands whose duration the simulator understands
// without an annotation: "sleep N" (N seconds).
var sleepCmd = regexp.MustCompile(`^\s*(?:exec\s+)?sleep\s+([0-9]+(?:\.[0-9]+)?)\s*$`)

// Executor "runs" tasks with timers: no process, no goroutine per task. What
// it reports is what the real executor would: running, then an exit with a
// code, an OOM, or a kill. Its tasks live as long as the Executor value: an
// agent restarted on the same Executor recovers them (as a real agent
// reattaches to its supervisors); a new Executor is a rebooted node.
type Executor struct {
	q *agent.EventQueue

	mu    sync.Mutex
	tasks map[string]*simTask
}

type simTask struct {
	name  string // namespace/name
	timer *time.Timer
	exit  *agent.ExitStatus
	start time.Time
	cpus  float64
	ended bool
}

// NewExecutor returns a simulated executor; Close stops its event delivery.
func NewExecutor() *Executor {
	return &Executor{q: agent.NewEventQueue(), tasks: map[string]*simTask{}}
}

// Close stops delivering events.
func (e *Executor) Close() { e.q.Close() }

// Events implements agent.Executor.
func (e *Executor) Events() <-chan agent.Event { return e.q.C() }

// Recover implements agent.Executor: the tasks not forgotten yet.
func (e *Executor) Recover(context.Context) ([]agent.RecoveredTask, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]agent.RecoveredTask, 0, len(e.tasks))
	for id, t := range e.tasks {
		r := agent.RecoveredTask{ID: id, Name: t.name, StartTime: t.start, Sandbox: "sim://" + t.name}
		if t.exit != nil {
			x := *t.exit
			r.Exit = &x
		}
		out = append(out, r)
	}
	return out, nil
}

// Running counts the tasks that have not ended.
func (e *Executor) Running() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, t := range e.tasks {
		if !t.ended {
			n++
		}
	}
	return n
}

// plan reads how a task behaves from its annotations and command.
func plan(task *agorav1.Task) (d time.Duration, code int, oom bool, err error) {
	if s, ok := task.Annotations[AnnotationDuration]; ok {
		if d, err = time.ParseDuration(s); err != nil {
			return 0, 0, false, fmt.Errorf("annotation %s: %w", AnnotationDuration, err)
		}
	} else if c := task.Spec.Command; c.Shell != nil {
		if m := sleepCmd.FindStringSubmatch(*c.Shell); m != nil {
			secs, _ := strconv.ParseFloat(m[1], 64)
			d = time.Duration(secs * float64(time.Second))
		}
	} else if len(c.Argv) == 2 && c.Argv[0] == "sleep" {
		if secs, perr := strconv.ParseFloat(c.Argv[1], 64); perr == nil {
			d = time.Duration(secs * float64(time.Second))
		}
	}
	if s, ok := task.Annotations[AnnotationExitCode]; ok {
		if code, err = strconv.Atoi(s); err != nil || code < 0 || code > 255 {
			return 0, 0, false, fmt.Errorf("annotation %s must be 0..255, not %q", AnnotationExitCode, s)
		}
	}
	return d, code, task.Annotations[AnnotationOOM] == "true", nil
}

// Launch implements agent.Executor.
func (e *Executor) Launch(_ context.Context, task *agorav1.Task) error {
	d, code, oom, err := plan(task)
	if err != nil {
		return err
	}
	id := string(task.UID)
	now := time.Now()
	t := &simTask{start: now, name: task.Namespace + "/" + task.Name}
	if task.Spec.Resources.CPUs != nil {
		t.cpus = task.Spec.Resources.CPUs.AsApproximateFloat64()
	}
	e.mu.Lock()
	if _, dup := e.tasks[id]; dup {
		e.mu.Unlock()
		return errors.New("task already launched")
	}
	e.tasks[id] = t
	e.mu.Unlock()
	e.q.Push(agent.Event{Type: agent.EventRunning, TaskID: id, StartTime: now, Sandbox: "sim://" + t.name})
	exit := agent.ExitStatus{ExitCode: code, OOM: oom}
	if oom {
		exit.ExitCode, exit.Signal = -1, int(syscall.SIGKILL)
	}
	if d <= 0 {
		e.finish(id, exit)
		return nil
	}
	e.mu.Lock()
	t.timer = time.AfterFunc(d, func() { e.finish(id, exit) })
	e.mu.Unlock()
	return nil
}

// finish reports a task's end once.
func (e *Executor) finish(id string, exit agent.ExitStatus) {
	e.mu.Lock()
	t := e.tasks[id]
	if t == nil || t.ended {
		e.mu.Unlock()
		return
	}
	t.ended = true
	if t.timer != nil {
		t.timer.Stop()
	}
	now := time.Now()
	exit.FinishedAt = now
	exit.CPUSeconds = now.Sub(t.start).Seconds() * t.cpus
	t.exit = &exit
	e.mu.Unlock()
	e.q.Push(agent.Event{Type: agent.EventExited, TaskID: id, Exit: &exit})
}

// Kill implements agent.Executor: a simulated process dies on SIGTERM.
func (e *Executor) Kill(id string, _ time.Duration) error {
	e.mu.Lock()
	_, ok := e.tasks[id]
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("task %s: unknown task", id)
	}
	e.finish(id, agent.ExitStatus{ExitCode: -1, Signal: int(syscall.SIGTERM), Killed: true})
	return nil
}

// Forget implements agent.Executor.
func (e *Executor) Forget(id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t := e.tasks[id]; t != nil && !t.ended {
		return fmt.Errorf("task %s is still running", id)
	}
	delete(e.tasks, id)
	return nil
}
