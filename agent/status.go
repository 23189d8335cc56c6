package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// finalStatus is a terminal state the agent writes.
type finalStatus struct {
	state      agorav1.TaskState
	source     agorav1.TaskStatusSource
	reason     string
	message    string
	exitCode   *int32
	usage      *agorav1.ResourceUsage
	completion time.Time
}

// finalFromExit maps how a process ended onto Mesos' task states.
func finalFromExit(e *ExitStatus) *finalStatus {
	f := &finalStatus{completion: e.FinishedAt, reason: e.Reason, message: e.Message}
	if f.completion.IsZero() {
		f.completion = time.Now()
	}
	if e.CPUSeconds != 0 || e.PeakMemBytes != 0 {
		f.usage = &agorav1.ResourceUsage{CPUSeconds: strconv.FormatFloat(e.CPUSeconds, 'f', 3, 64), PeakMemBytes: e.PeakMemBytes}
	}
	exited := e.Signal == 0 && e.ExitCode >= 0 && !e.Lost
	if exited {
		c := int32(e.ExitCode)
		f.exitCode = &c
	}
	switch {
	case e.Lost:
		f.state, f.source = agorav1.TaskFailed, agorav1.SourceAgent
		if f.reason == "" {
			f.reason = agorav1.ReasonExecutorTerminated
		}
	case e.Killed:
		// A kill the framework asked for (or a failing health check, whose
		// reason the executor gives), as Mesos' command executor reports it.
		f.state, f.source = agorav1.TaskKilled, agorav1.SourceExecutor
	case e.OOM:
		f.state, f.source, f.reason = agorav1.TaskFailed, agorav1.SourceAgent, agorav1.ReasonContainerLimitationMemory
		if f.message == "" {
			f.message = "the task was killed at its memory limit"
		}
	case exited && e.ExitCode == 0:
		f.state, f.source = agorav1.TaskFinished, agorav1.SourceExecutor
	default:
		f.state, f.source = agorav1.TaskFailed, agorav1.SourceExecutor
		if f.message == "" {
			if exited {
				f.message = fmt.Sprintf("the command exited with code %d", e.ExitCode)
			} else {
				f.message = fmt.Sprintf("the command was killed by signal %d", e.Signal)
			}
		}
	}
	return f
}

// agentFailure is a terminal state the agent decides without running anything.
func agentFailure(state agorav1.TaskState, reason, message string) *finalStatus {
	return &finalStatus{state: state, source: agorav1.SourceAgent, reason: reason, message: message, completion: time.Now()}
}

// isTerminal: states the CRD never lets change again.
func isTerminal(s agorav1.TaskState) bool {
	switch s {
	case agorav1.TaskFinished, agorav1.TaskFailed, agorav1.TaskKilled, agorav1.TaskError,
		agorav1.TaskDropped, agorav1.TaskGone, agorav1.TaskGoneByOperator:
		return true
	}
	return false
}

// isMasterLost: the master gave the task up for its agent's silence.
func isMasterLost(s agorav1.TaskState) bool {
	return s == agorav1.TaskLost || s == agorav1.TaskUnreachable
}

// statusWrite is one status write the agent decided on.
type statusWrite struct {
	key      types.NamespacedName
	preRV    string
	status   map[string]any
	terminal bool
}

// optional renders an empty string as JSON null, which a merge patch turns
// into "remove the field": the CRD refuses an empty reason.
func optional(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// maxMessage is the CRD's limit on status.message, in characters (Unicode
// code points, as the apiserver counts them).
const maxMessage = 4096

// clipMessage shortens a message longer than maxMessage to fit, cutting at a
// character boundary and ending it with "…". Every message the agent writes
// passes here (see patch): the CRD refuses a longer one, and the write would
// be retried forever with the task's state never shown.
func clipMessage(s string) string {
	if utf8.RuneCountInString(s) <= maxMessage {
		return s
	}
	n := 0
	for i := range s {
		if n == maxMessage-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// runningWrite is TASK_RUNNING; after LOST or UNREACHABLE it says the agent
// came back (Mesos 1.5+ partition awareness).
func runningWrite(t *task) *statusWrite {
	st := map[string]any{
		"state":   agorav1.TaskRunning,
		"source":  agorav1.SourceExecutor,
		"reason":  nil,
		"message": nil,
	}
	if isMasterLost(t.base.Status.State) {
		st["source"] = agorav1.SourceAgent
		st["reason"] = agorav1.ReasonAgentReregistered
		st["message"] = "the agent is reachable again and the task still runs"
	}
	addStart(st, t)
	if t.healthy != nil {
		st["healthy"] = *t.healthy
	}
	return &statusWrite{key: t.key, preRV: t.base.ResourceVersion, status: st}
}

// addStart adds what the agent's first writes carry: the process's start,
// and the bind the master listed (the master writes no bind on the Task).
func addStart(st map[string]any, t *task) {
	if t.bind != nil && t.base.Status.BindTime == nil {
		st["bindTime"] = *t.bind
		if t.role != "" && t.base.Status.Role == "" {
			st["role"] = t.role
		}
	}
	if !t.startTime.IsZero() && t.base.Status.StartTime == nil {
		st["startTime"] = metav1.NewTime(t.startTime)
	}
	if t.sandbox != "" && t.base.Status.Sandbox == "" {
		st["sandbox"] = t.sandbox
	}
}

// terminalWrite is the task's terminal state, with whatever of RUNNING's
// fields was not written yet (RUNNING is skipped for a task that ended
// before its RUNNING write went out).
func terminalWrite(t *task) *statusWrite {
	f := t.final
	st := map[string]any{
		"state":          f.state,
		"source":         f.source,
		"reason":         optional(f.reason),
		"message":        optional(f.message),
		"completionTime": metav1.NewTime(f.completion),
	}
	if f.exitCode != nil {
		st["exitCode"] = *f.exitCode
	}
	if f.usage != nil {
		st["usage"] = f.usage
	}
	addStart(st, t)
	return &statusWrite{key: t.key, preRV: t.base.ResourceVersion, status: st, terminal: true}
}

// healthWrite reports a health change of a running task.
func healthWrite(t *task) *statusWrite {
	return &statusWrite{key: t.key, preRV: t.base.ResourceVersion, status: map[string]any{"healthy": *t.healthy}}
}

// patch sends a merge patch of the status subresource conditioned on the
// resourceVersion the decision was made on: a write based on a stale view
// fails with a conflict instead of overwriting what someone else wrote.
func (a *Agent) patch(ctx context.Context, w *statusWrite) (*agorav1.Task, error) {
	a.addLogEndpoint(w.status)
	if m, ok := w.status["message"].(string); ok {
		w.status["message"] = clipMessage(m)
	}
	body, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": w.preRV},
		"status":   w.status,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var out agorav1.Task
	err = a.cfg.Clients.Agora.Patch(types.MergePatchType).Namespace(w.key.Namespace).Resource("tasks").
		Name(w.key.Name).SubResource("status").Body(body).Do(ctx).Into(&out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// get reads a Task from the apiserver (from etcd): the agent keeps no
// cache of Tasks.
func (a *Agent) get(ctx context.Context, key types.NamespacedName) (*agorav1.Task, error) {
	return a.getAt(ctx, key, "")
}

// getAt reads a Task at least as fresh as resourceVersion rv, which the
// apiserver serves from its watch cache once that has caught up with rv (a
// read from etcd when rv is empty). Reads of listed Tasks pass the version
// of the Assignment that listed them: the master wrote it after the LOST or
// the deletion it reports, so such a read shows them, without a read from
// etcd for every task. A plain bind's first read passes the version the
// master bound (see admit).
func (a *Agent) getAt(ctx context.Context, key types.NamespacedName, rv string) (*agorav1.Task, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var out agorav1.Task
	req := a.cfg.Clients.Agora.Get().Namespace(key.Namespace).Resource("tasks").Name(key.Name)
	if rv != "" {
		req = req.Param("resourceVersion", rv)
	}
	if err := req.Do(ctx).Into(&out); err != nil {
		return nil, err
	}
	return &out, nil
}
