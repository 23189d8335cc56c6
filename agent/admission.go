package agent

import (
	"fmt"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// admitLocked decides about a listed Task the agent has no record of: the
// entry in the agent's Assignment is its bind. It returns nil when there is
// nothing to do (it ended, or is not the agent's to report).
//
// A bound task is admitted only if it fits beside the tasks already
// admitted, as kubelet admits pods: leader election is not fencing, and two
// masters overlapping for a moment must not over-commit the node. A task
// that does not fit fails with REASON_INVALID_OFFERS (see docs/design.md,
// "Agent admission").
func (a *Agent) admitLocked(obj *agorav1.Task) *task {
	t := &task{uid: obj.UID}
	t.observe(obj)
	switch obj.Status.State {
	case "", agorav1.TaskStaging:
		// Bound: listed (older masters also wrote STAGING and bindTime).
	case agorav1.TaskStarting, agorav1.TaskRunning, agorav1.TaskKilling:
		// The API says it runs here, but the executor knows no such task:
		// the process did not survive (host reboot, lost checkpoint).
		t.final = agentFailure(agorav1.TaskFailed, agorav1.ReasonAgentRestarted,
			"the agent restarted and the task's process is gone")
		a.tasks[t.uid] = t
		return t
	case agorav1.TaskUnreachable:
		// The master gave the task up while the agent was away (only a
		// partition-aware framework's task is UNREACHABLE), and the
		// executor knows no such task: it never launched here, or its
		// process did not survive. A Mesos agent answers the master's
		// reconciliation for such a task with TASK_DROPPED; launching it
		// now could run it beside the replacement the framework may have
		// launched. Ending it also releases what the master books for it.
		t.final = agentFailure(agorav1.TaskDropped, agorav1.ReasonReconciliation,
			"the agent is reachable again and does not know the task: it was never launched here, or its process did not survive")
		a.tasks[t.uid] = t
		return t
	default:
		return nil
	}
	if err := a.fitsLocked(t.res); err != nil {
		t.final = agentFailure(agorav1.TaskFailed, agorav1.ReasonInvalidOffers, err.Error())
		a.tasks[t.uid] = t
		return t
	}
	a.tasks[t.uid] = t
	a.summaryChangedLocked()
	return t
}

// fitsLocked checks that r fits in the total beside the resources of every
// task that holds resources, with its ports free.
func (a *Agent) fitsLocked(r resources.Resources) error {
	used, _ := a.allocatedLocked()
	if used.Ports.Overlaps(r.Ports) {
		return fmt.Errorf("the task did not fit beside the tasks this agent already admitted: ports %v are taken (in use: %v)",
			r.Ports, used.Ports.Intersect(r.Ports))
	}
	if !a.total.Contains(used.Add(r)) {
		free, _ := a.total.ScalarsOnly().Subtract(used.ScalarsOnly())
		return fmt.Errorf("the task did not fit beside the tasks this agent already admitted: it needs %v, the agent has %v of %v free",
			r, free.WithPorts(a.total.Ports.Subtract(used.Ports)), a.total)
	}
	return nil
}
