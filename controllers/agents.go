package controllers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/allocator"
	"github.com/agora-sched/agora/pkg/resources"
)

// onAgent applies an Agent event: register it with the allocator once it
// reports its total, follow total, reservations and spec.unschedulable.
func (e *engine) onAgent(obj *agorav1.Agent, deleted bool) {
	a := e.agents[obj.Name]
	if deleted {
		if a != nil {
			e.agentGone(a)
		}
		return
	}
	if a == nil {
		a = &agentState{name: obj.Name, reachable: true, since: e.clock.Now()}
		e.agents[obj.Name] = a
	} else if a.obj != nil && !newer(obj.ResourceVersion, a.obj.ResourceVersion) {
		if sameVersion(obj.ResourceVersion, a.obj.ResourceVersion) {
			a.obj = obj
		}
		return
	}
	heard := a.obj != nil && !a.obj.Status.SameReport(&obj.Status) // only the agent writes its report
	a.obj = obj
	if heard {
		e.agentHeard(a.name)
	} else if !a.reachable {
		e.syncAgentReady(a, "the master has had no heartbeat from the agent") // its registration overwrote Unknown
	}
	a.unschedulable = obj.Spec.Unschedulable
	info, err := agentInfo(obj)
	if err != nil {
		e.log.Error(err, "agent reports malformed resources", "agent", obj.Name)
		return
	}
	if info.Total.ScalarsOnly().IsEmpty() && len(info.Total.Ports) == 0 {
		return // not reporting yet
	}
	if !a.inAlloc {
		if err := e.alloc.AddAgent(info); err != nil {
			e.log.Error(err, "adding agent", "agent", obj.Name)
			return
		}
		a.inAlloc = true
		e.accountAgentTasks(a.name)
	} else if err := e.alloc.UpdateAgent(info); err != nil {
		e.log.Error(err, "updating agent", "agent", obj.Name)
	}
	e.syncReachable(a)
	e.dirty = true
}

// syncReachable tells the allocator whether the agent is reachable and
// whether it is withheld (unschedulable). Neither gets offers or counts in
// the totals; an unreachable agent's tasks also leave the shares, as in
// Mesos, while an unschedulable agent's run on and stay counted.
func (e *engine) syncReachable(a *agentState) {
	if !a.inAlloc {
		return
	}
	if err := e.alloc.SetAgentReachable(a.name, a.reachable); err != nil {
		e.log.Error(err, "setting agent reachability", "agent", a.name)
	}
	if err := e.alloc.SetAgentWithheld(a.name, a.unschedulable); err != nil {
		e.log.Error(err, "withholding agent", "agent", a.name)
	}
}

func agentInfo(obj *agorav1.Agent) (allocator.AgentInfo, error) {
	total, err := obj.Status.Total.Model()
	if err != nil {
		return allocator.AgentInfo{}, err
	}
	info := allocator.AgentInfo{Name: obj.Name, Hostname: obj.Status.Hostname, Total: total}
	if len(obj.Status.Attributes) > 0 {
		info.Attributes = map[string]string{}
		for _, at := range obj.Status.Attributes {
			info.Attributes[at.Name] = attributeText(at)
		}
	}
	for _, r := range obj.Status.Reserved {
		m, err := r.Resources.Model()
		if err != nil {
			return allocator.AgentInfo{}, err
		}
		if info.Reserved == nil {
			info.Reserved = map[string]resources.Resources{}
		}
		info.Reserved[r.Role] = m
	}
	return info, nil
}

func attributeText(at agorav1.Attribute) string {
	switch {
	case at.Text != nil:
		return *at.Text
	case at.Scalar != nil:
		return at.Scalar.String()
	default:
		parts := make([]string, 0, len(at.Ranges))
		for _, r := range at.Ranges {
			parts = append(parts, fmt.Sprintf("%d-%d", r.Begin, r.End))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
}

// agentGone: the Agent object was deleted, so the agent is gone for good.
// Its offers are rescinded and its tasks finalised (nothing hangs).
func (e *engine) agentGone(a *agentState) {
	e.rescindWhere(func(o *offerState) bool { return o.agent == a.name }, RescindAgentRemoved, "the agent was removed")
	e.endRemovedAgentTasks(a.name, fmt.Sprintf("agent %q was removed", a.name))
	if a.inAlloc {
		if err := e.alloc.RemoveAgent(a.name); err != nil {
			e.log.Error(err, "removing agent", "agent", a.name)
		}
	}
	for _, t := range e.agentTasks[a.name] {
		t.accounted = false // RemoveAgent released them
	}
	for _, o := range e.offers {
		if o.agent == a.name {
			o.remaining = resources.Resources{}
		}
	}
	delete(e.agents, a.name)
	if a.obj != nil {
		e.event(a.obj, "Warning", "AgentRemoved", "Remove", "agent %s removed; its tasks are finalised", a.name)
	}
	e.dirty = true
}

// endRemovedAgentTasks ends the live tasks of a removed agent: TASK_GONE
// (partition-aware frameworks) or TASK_LOST, REASON_AGENT_REMOVED; a task
// already LOST stays LOST.
func (e *engine) endRemovedAgentTasks(agent, msg string) {
	for _, t := range e.tasksToEndOn(agent) {
		state := agorav1.TaskLost
		if f := e.frameworks[t.fw]; f != nil && f.partitionAware {
			state = agorav1.TaskGone
		}
		e.setTaskState(t, state, agorav1.ReasonAgentRemoved, msg)
	}
	e.dropBinds(agent)
}

// tasksToEndOn lists the live tasks on agent that its removal ends: all
// but the LOST ones, which can only become RUNNING again.
func (e *engine) tasksToEndOn(agent string) []*taskState {
	live := e.liveTasksOn(agent)
	out := live[:0]
	for _, t := range live {
		if t.state != agorav1.TaskLost {
			out = append(out, t)
		}
	}
	return out
}

// judgeAbsentAgents ends the live tasks bound to agents that have no Agent
// object. Such an Agent was deleted while no master watched, so no leader
// saw the deletion that ends them (agentGone). Each such agent first gets a
// full AgentTimeout from when this master found it absent, as every agent
// does after a takeover: an Agent created after the rebuild listed the
// Agents (a previous leader may have bound a task to it) arrives as an
// event within that time.
func (e *engine) judgeAbsentAgents(now time.Time) {
	for name := range e.absentSince {
		if _, ok := e.agentTasks[name]; !ok {
			delete(e.absentSince, name)
		}
	}
	for name := range e.agentTasks {
		if _, ok := e.agents[name]; ok {
			delete(e.absentSince, name)
			continue
		}
		if len(e.tasksToEndOn(name)) == 0 {
			delete(e.absentSince, name)
			continue
		}
		since, ok := e.absentSince[name]
		if !ok {
			e.absentSince[name] = now
			continue
		}
		if now.Sub(since) <= e.opts.AgentTimeout {
			continue
		}
		delete(e.absentSince, name)
		e.log.Info("ending the tasks of an agent that has no Agent object", "agent", name)
		e.endRemovedAgentTasks(name, fmt.Sprintf("agent %q was removed: it has no Agent object", name))
		e.dirty = true
	}
}

// judgeAgents marks agents whose Lease the master has not seen change for
// AgentTimeout unreachable, oldest first, at most AgentRemovalRate per
// second so a network blip does not fail the whole cluster at once.
func (e *engine) judgeAgents(now time.Time) {
	type cand struct {
		a    *agentState
		last time.Time
	}
	var cands []cand
	for _, a := range e.agents {
		if !a.inAlloc || !a.reachable {
			continue
		}
		last := e.lastSeen(key(e.opts.AgentNamespace, a.name), a.since)
		if now.Sub(last) > e.opts.AgentTimeout {
			cands = append(cands, cand{a, last})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].last.Before(cands[j].last) })
	for _, c := range cands {
		if !e.removal.take(now) {
			break
		}
		e.markUnreachable(c.a, now.Sub(c.last))
	}
}

func (e *engine) markUnreachable(a *agentState, silent time.Duration) {
	a.reachable = false
	e.syncReachable(a)
	msg := fmt.Sprintf("agent %q has sent no heartbeat (Lease renewal or status write) for %s", a.name, silent.Truncate(time.Second))
	e.syncAgentReady(a, msg)
	e.rescindWhere(func(o *offerState) bool { return o.agent == a.name }, RescindAgentUnreachable, msg)
	for _, t := range e.liveTasksOn(a.name) {
		if t.state == agorav1.TaskUnreachable || t.state == agorav1.TaskLost {
			continue
		}
		if f := e.frameworks[t.fw]; f != nil && f.partitionAware {
			e.setTaskState(t, agorav1.TaskUnreachable, agorav1.ReasonAgentUnreachable, msg)
		} else {
			e.setTaskState(t, agorav1.TaskLost, agorav1.ReasonAgentRemoved, msg)
		}
	}
	agentsLostTotal.Inc()
	e.log.Info("agent unreachable", "agent", a.name, "silent", silent)
	if a.obj != nil {
		e.event(a.obj, "Warning", "AgentUnreachable", "MarkUnreachable", "%s", msg)
	}
}

// agentBack: it heartbeats again. Its tasks come back RUNNING when the
// agent reports them (the agent writes that).
func (e *engine) agentBack(a *agentState) {
	a.reachable = true
	e.syncReachable(a)
	e.dirty = true
	e.log.Info("agent reachable again", "agent", a.name)
	if a.obj != nil {
		e.event(a.obj, "Normal", "AgentReachable", "MarkReachable", "agent %s heartbeats again", a.name)
	}
}
