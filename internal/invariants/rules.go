package invariants

import (
	"fmt"
	"slices"
	"strings"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

func key(ns, name string) string { return ns + "/" + name }

// terminal states hold nothing on the agent. LOST and UNREACHABLE tasks
// may still run (and come back), so they count.
func terminal(s agorav1.TaskState) bool {
	switch s {
	case agorav1.TaskFinished, agorav1.TaskFailed, agorav1.TaskKilled, agorav1.TaskError,
		agorav1.TaskDropped, agorav1.TaskGone, agorav1.TaskGoneByOperator:
		return true
	}
	return false
}

func (c *Checker) apply(ev *event) {
	switch o := ev.obj.(type) {
	case *agorav1.Agent:
		if ev.deleted {
			delete(c.agents, o.Name)
			return
		}
		total, _ := o.Status.Total.Model()
		c.agents[o.Name] = total
		c.checkAgent(o.Name, ev.rv)
	case *agorav1.Framework:
		k := key(o.Namespace, o.Name)
		if ev.deleted {
			delete(c.frameworks, k)
			return
		}
		c.frameworks[k] = slices.Contains(o.Spec.Capabilities, agorav1.CapabilityPartitionAware)
	case *agorav1.Offer:
		c.applyOffer(o, ev)
	case *agorav1.Task:
		c.applyTask(o, ev)
	case *agorav1.Assignment:
		if !ev.deleted {
			c.applyAssignment(o, ev)
		}
	}
}

func (c *Checker) applyOffer(obj *agorav1.Offer, ev *event) {
	k := key(obj.Namespace, obj.Name)
	o := c.offers[k]
	if ev.deleted {
		if o != nil && o.uid == string(obj.UID) {
			delete(c.offers, k)
			c.checkAgent(o.agent, ev.rv)
		}
		return
	}
	if o == nil || o.uid != string(obj.UID) {
		res, _ := obj.Spec.Resources.Model()
		o = &offer{uid: string(obj.UID), fw: key(obj.Namespace, obj.Spec.FrameworkName), agent: obj.Spec.AgentName,
			res: res, bound: map[string]resources.Resources{}}
		c.offers[k] = o
	}
	phase := obj.Status.Phase
	if phase == agorav1.OfferOutstanding {
		phase = ""
	}
	if o.phase != "" && phase != o.phase {
		c.violate(fmt.Sprintf("invariant 2: offer %s settled twice: %s, then %s (rv %d)", k, o.phase, phase, ev.rv))
	}
	if o.answer != nil && (obj.Spec.Answer == nil || obj.Spec.Answer.Type != o.answer.Type) {
		c.violate(fmt.Sprintf("invariant 2: offer %s answered twice (rv %d)", k, ev.rv))
	}
	o.answer = obj.Spec.Answer
	if phase != "" && o.phase == "" {
		switch phase {
		case agorav1.OfferRescinded, agorav1.OfferExpired:
			if obj.Spec.Answer != nil {
				c.violate(fmt.Sprintf("invariant 2: offer %s was answered %s and also %s (rv %d)", k, obj.Spec.Answer.Type, phase, ev.rv))
			}
		case agorav1.OfferAccepted, agorav1.OfferDeclined:
			want := agorav1.OfferAccepted
			if obj.Spec.Answer != nil && obj.Spec.Answer.Type == agorav1.OfferDecline {
				want = agorav1.OfferDeclined
			}
			if obj.Spec.Answer == nil || phase != want {
				c.violate(fmt.Sprintf("invariant 2: offer %s settled %s but its answer is %v (rv %d)", k, phase, obj.Spec.Answer, ev.rv))
			}
			var used resources.Resources
			for _, r := range o.bound {
				used = used.Add(r)
			}
			if got := obj.Status.TasksLaunched; int(got) != len(o.bound) {
				c.violate(fmt.Sprintf("invariant 2: offer %s settled with tasksLaunched %d but %d tasks are bound on it (rv %d)", k, got, len(o.bound), ev.rv))
			}
			if st, _ := obj.Status.Used.Model(); !st.Equal(used) {
				c.violate(fmt.Sprintf("invariant 2: offer %s settled with used %s but its bound tasks hold %s (rv %d)", k, st, used, ev.rv))
			}
		}
	}
	o.phase = phase
	c.checkAgent(o.agent, ev.rv)
}

func (c *Checker) applyTask(obj *agorav1.Task, ev *event) {
	k := key(obj.Namespace, obj.Name)
	t := c.tasks[k]
	if ev.deleted {
		if t != nil && t.uid == string(obj.UID) {
			delete(c.tasks, k)
			if t.bound {
				c.checkAgent(t.agent, ev.rv)
			}
		}
		return
	}
	if t == nil || t.uid != string(obj.UID) {
		res, _ := obj.Spec.Resources.Model()
		t = &task{uid: string(obj.UID), fw: key(obj.Namespace, obj.Spec.FrameworkName), agent: obj.Spec.AgentName,
			offer: key(obj.Namespace, obj.Spec.OfferRef.Name), offerUID: obj.Spec.OfferRef.UID, res: res}
		c.tasks[k] = t
	}
	st := obj.Status
	if st.BindTime != nil && !t.bound {
		c.bind(k, t, ev.rv)
	}
	if st.State != t.state {
		t.state, t.reason = st.State, st.Reason
		switch {
		case st.Reason == agorav1.ReasonInvalidOffers:
			want := agorav1.TaskLost
			if c.frameworks[t.fw] {
				want = agorav1.TaskDropped
			}
			if st.State != want {
				c.violate(fmt.Sprintf("invariant 2: task %s ended %s for an invalid offer; its framework wants %s (rv %d)", k, st.State, want, ev.rv))
			}
			if t.bound {
				c.violate(fmt.Sprintf("invariant 2: task %s ended %s %s but was bound: it consumed resources (rv %d)", k, st.State, st.Reason, ev.rv))
			}
		case st.State == agorav1.TaskError && st.Reason == agorav1.ReasonTaskInvalid && st.Source == agorav1.SourceMaster:
			if t.bound {
				c.violate(fmt.Sprintf("invariant 2: task %s ended TASK_ERROR REASON_TASK_INVALID but was bound (rv %d)", k, ev.rv))
			}
		}
	}
	if t.bound {
		c.checkAgent(t.agent, ev.rv)
	}
}

// applyAssignment: listing a task in its agent's Assignment binds it.
func (c *Checker) applyAssignment(obj *agorav1.Assignment, ev *event) {
	for _, at := range obj.Spec.Tasks {
		k := key(at.Namespace, at.Name)
		t := c.tasks[k]
		switch {
		case t == nil || t.uid != string(at.UID):
			// Deleted already: its entry lingers until the next write.
		case t.agent != obj.Name:
			c.violate(fmt.Sprintf("invariant 2: task %s for agent %s is listed in the Assignment of %s (rv %d)", k, t.agent, obj.Name, ev.rv))
		case !t.bound:
			c.bind(k, t, ev.rv)
		}
	}
}

// bind records the task's bind and checks it.
func (c *Checker) bind(k string, t *task, rv uint64) {
	t.bound = true
	if t.state == "" {
		c.checkBind(k, t, rv)
		return
	}
	if t.reason == agorav1.ReasonInvalidOffers || t.reason == agorav1.ReasonTaskInvalid && t.state == agorav1.TaskError {
		c.violate(fmt.Sprintf("invariant 2: task %s was bound after it ended %s %s (rv %d)", k, t.state, t.reason, rv))
	}
}

// checkBind: a task is bound only on an outstanding offer of its own
// framework and agent, within what the offer has left.
func (c *Checker) checkBind(k string, t *task, rv uint64) {
	o := c.offers[t.offer]
	switch {
	case o == nil || o.uid != t.offerUID:
		c.violate(fmt.Sprintf("invariant 2: task %s was bound on offer %s (uid %s), which does not exist (rv %d)", k, t.offer, t.offerUID, rv))
	case !o.outstanding():
		c.violate(fmt.Sprintf("invariant 2: task %s was bound on offer %s after it was %s (rv %d)", k, t.offer, o.phase, rv))
	case o.fw != t.fw:
		c.violate(fmt.Sprintf("invariant 2: task %s of %s was bound on offer %s of %s (rv %d)", k, t.fw, t.offer, o.fw, rv))
	case o.agent != t.agent:
		c.violate(fmt.Sprintf("invariant 2: task %s for agent %s was bound on offer %s of agent %s (rv %d)", k, t.agent, t.offer, o.agent, rv))
	default:
		used := t.res
		for _, r := range o.bound {
			used = used.Add(r)
		}
		var sumPorts uint64
		for _, r := range o.bound {
			sumPorts += r.Ports.Count()
		}
		if !o.res.Contains(used) || sumPorts+t.res.Ports.Count() != used.Ports.Count() {
			c.violate(fmt.Sprintf("invariant 2: task %s does not fit in offer %s: bound tasks need %s of %s (rv %d)", k, t.offer, used, o.res, rv))
		}
		o.bound[k] = t.res
	}
}

// checkAgent: invariant 1 for one agent.
func (c *Checker) checkAgent(agent string, rv uint64) {
	total, ok := c.agents[agent]
	if !ok {
		return
	}
	var sum resources.Resources
	var ports uint64
	type holder struct {
		what string
		r    resources.Resources
	}
	var holders []holder // for the report
	add := func(what string, r resources.Resources) {
		sum = sum.Add(r)
		ports += r.Ports.Count()
		holders = append(holders, holder{what, r})
	}
	// An outstanding offer holds what has not been launched on it: the
	// tasks bound on it count by themselves while they live, and what one
	// that ended held may be offered again before the offer is answered.
	for k, o := range c.offers {
		if o.agent == agent && o.outstanding() {
			add("offer "+k, o.unlaunched())
		}
	}
	for k, t := range c.tasks {
		if t.agent == agent && t.bound && !terminal(t.state) {
			add("task "+k+" ("+string(t.state)+")", t.res)
		}
	}
	if !total.Contains(sum) || ports != sum.Ports.Count() {
		var parts []string
		for _, h := range holders {
			parts = append(parts, h.what+" "+h.r.ScalarsOnly().String())
		}
		slices.Sort(parts)
		c.violate(fmt.Sprintf("invariant 1: agent %s over-committed at rv %d: live tasks and outstanding offers hold %s of %s: %s",
			agent, rv, sum, total, strings.Join(parts, ", ")))
	}
}
