package agent

import (
	"context"
	"time"

	"github.com/agora-sched/agora/agent/runtime"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// RuntimeExecutor runs tasks on this node with agent/runtime: cgroups, a
// supervisor per task that outlives the agent, checkpoints.
type RuntimeExecutor struct {
	rt *runtime.Runtime
	q  *EventQueue
}

// NewRuntimeExecutor adapts rt. The Runtime must be fresh (Recover not yet
// called: the agent calls it). Closing rt ends event delivery.
func NewRuntimeExecutor(rt *runtime.Runtime) *RuntimeExecutor {
	e := &RuntimeExecutor{rt: rt, q: NewEventQueue()}
	go e.translate()
	return e
}

// Runtime is the wrapped runtime.
func (e *RuntimeExecutor) Runtime() *runtime.Runtime { return e.rt }

// CgroupVersion is "v1" or "v2", for the Agent's status.
func (e *RuntimeExecutor) CgroupVersion() string {
	if e.rt.Layout().Version == 2 {
		return "v2"
	}
	return "v1"
}

func (e *RuntimeExecutor) translate() {
	defer e.q.Close()
	for ev := range e.rt.Events() {
		out := Event{TaskID: ev.TaskID}
		switch ev.Type {
		case runtime.EventRunning:
			out.Type, out.StartTime = EventRunning, ev.StartedAt
			out.Sandbox, _ = e.rt.SandboxDir(ev.TaskID)
		case runtime.EventHealth:
			out.Type, out.Healthy = EventHealth, ev.Healthy
		case runtime.EventExited, runtime.EventLost:
			x := ev.Exit
			if x == nil {
				x = &runtime.ExitStatus{ExitCode: -1, Reason: runtime.ReasonSupervisorGone, Message: ev.Message}
			}
			out.Type, out.Exit = EventExited, exitFromRuntime(x, ev.Type == runtime.EventLost)
		default:
			continue
		}
		e.q.Push(out)
	}
}

// exitFromRuntime maps the runtime's exit status and reasons onto the API's.
func exitFromRuntime(x *runtime.ExitStatus, lost bool) *ExitStatus {
	out := &ExitStatus{ExitCode: x.ExitCode, Signal: x.Signal, OOM: x.OOM, Killed: x.Killed,
		Message: x.Message, CPUSeconds: x.Usage.CPUSeconds, PeakMemBytes: x.Usage.PeakMemBytes, FinishedAt: x.FinishedAt}
	switch x.Reason {
	case runtime.ReasonHealthCheck:
		out.Reason = agorav1.ReasonTaskHealthCheckStatusUpdate
	case runtime.ReasonLaunchFailed:
		out.Reason = agorav1.ReasonContainerLaunchFailed
	case runtime.ReasonSupervisorGone:
		out.Lost, out.Reason = true, agorav1.ReasonExecutorTerminated
	case runtime.ReasonHostRebooted:
		out.Lost, out.Reason = true, agorav1.ReasonAgentRestarted
	}
	if lost {
		out.Lost = true
	}
	return out
}

// Events implements Executor.
func (e *RuntimeExecutor) Events() <-chan Event { return e.q.C() }

// Recover implements Executor.
func (e *RuntimeExecutor) Recover(context.Context) ([]RecoveredTask, error) {
	recs, err := e.rt.Recover()
	if err != nil {
		return nil, err
	}
	out := make([]RecoveredTask, 0, len(recs))
	for _, r := range recs {
		rt := RecoveredTask{ID: r.ID, Name: r.Name, StartTime: r.StartedAt, Sandbox: r.Sandbox}
		switch r.State {
		case runtime.StateExited:
			rt.Exit = exitFromRuntime(r.Exit, false)
		case runtime.StateLost:
			x := r.Exit
			if x == nil {
				x = &runtime.ExitStatus{ExitCode: -1, Message: r.Message}
			}
			rt.Exit = exitFromRuntime(x, true)
		}
		out = append(out, rt)
	}
	return out, nil
}

// Launch implements Executor.
func (e *RuntimeExecutor) Launch(ctx context.Context, task *agorav1.Task) error {
	spec, err := RuntimeSpec(task)
	if err != nil {
		return err
	}
	_, err = e.rt.Launch(ctx, spec)
	return err
}

// Kill implements Executor.
func (e *RuntimeExecutor) Kill(id string, grace time.Duration) error {
	if grace <= 0 {
		grace = -1 // the runtime reads 0 as "the task's default"
	}
	return e.rt.Kill(id, grace)
}

// Forget implements Executor.
func (e *RuntimeExecutor) Forget(id string) error { return e.rt.Forget(id) }

// MinTaskMemBytes is the memory limit of a task whose resources name no
// mem (Mesos' MIN_MEMORY, which its memory isolator gives such a task).
const MinTaskMemBytes = 32 << 20

// RuntimeSpec turns a Task into the runtime's launch spec.
func RuntimeSpec(task *agorav1.Task) (runtime.TaskSpec, error) {
	s := task.Spec
	spec := runtime.TaskSpec{
		ID:              string(task.UID),
		Name:            task.Namespace + "/" + task.Name, // Recover gives it back
		Command:         command(&s.Command),
		User:            s.Command.User,
		WorkingDir:      s.Command.WorkingDir,
		KillGracePeriod: gracePeriod(task),
	}
	if spec.KillGracePeriod == 0 {
		spec.KillGracePeriod = time.Millisecond // the runtime reads 0 as its default
	}
	// The tenant, whose own uid the task gets (--task-uid-range): the
	// framework name is immutable, and the master bound the task only on
	// an offer made to that framework; the namespace is RBAC's boundary.
	spec.Tenant = task.Namespace + "/" + s.FrameworkName
	if len(s.Command.Env) > 0 {
		spec.Env = make(map[string]string, len(s.Command.Env))
		for _, v := range s.Command.Env {
			spec.Env[v.Name] = v.Value
		}
	}
	res, err := s.Resources.Model()
	if err != nil {
		return spec, err
	}
	spec.Resources.MilliCPUs = res.Get(resources.CPUs)
	spec.Resources.MemBytes = res.Get(resources.Mem)
	if spec.Resources.MemBytes == 0 {
		// Every task runs under a memory hard limit: one that asks for no
		// memory gets Mesos' minimum, not the node's memory unaccounted.
		spec.Resources.MemBytes = MinTaskMemBytes
	}
	for _, r := range res.Ports {
		for p := r.Begin; p <= r.End; p++ {
			spec.Ports = append(spec.Ports, p)
		}
	}
	if h := s.HealthCheck; h != nil {
		spec.HealthCheck = healthCheck(h)
	}
	return spec, nil
}

func command(c *agorav1.CommandInfo) runtime.Command {
	if c.Shell != nil {
		return runtime.Command{Shell: *c.Shell}
	}
	return runtime.Command{Argv: c.Argv}
}

func healthCheck(h *agorav1.HealthCheck) *runtime.HealthCheck {
	secs := func(v int32, def time.Duration) time.Duration {
		if v <= 0 {
			return def
		}
		return time.Duration(v) * time.Second
	}
	out := &runtime.HealthCheck{
		Interval: secs(h.IntervalSeconds, 10*time.Second),
		Timeout:  secs(h.TimeoutSeconds, 20*time.Second),
		// The runtime has no initial delay; failures during the delay
		// are simply not counted.
		GracePeriod:         time.Duration(h.GracePeriodSeconds+h.DelaySeconds) * time.Second,
		ConsecutiveFailures: int(h.ConsecutiveFailures),
	}
	if out.ConsecutiveFailures == 0 {
		out.ConsecutiveFailures = 3
	}
	var port uint32
	if h.Port != nil {
		port = uint32(*h.Port)
	}
	switch h.Type {
	case agorav1.HealthCheckCommand:
		if h.Command != nil {
			c := command(h.Command)
			out.Command = &c
		}
	case agorav1.HealthCheckHTTP:
		out.HTTP = &runtime.HTTPCheck{Port: port, Path: h.Path}
	case agorav1.HealthCheckTCP:
		out.TCP = &runtime.TCPCheck{Port: port}
	}
	return out
}
