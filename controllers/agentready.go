package controllers

import (
	"context"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Reasons of the Agent Ready condition the master writes.
const (
	ReasonAgentUnreachable = "AgentUnreachable"
	ReasonAgentReachable   = "AgentReachable"
)

// syncAgentReady makes the Agent's Ready condition say what the master
// judges: Unknown while the agent is unreachable, as the node lifecycle
// controller marks a silent Node, and True again once it heartbeats. Only
// an agent that registered (wrote Ready itself) is written, and only when
// the condition disagrees, so the write is rare.
func (e *engine) syncAgentReady(a *agentState, message string) {
	if a.obj == nil || e.ctx.Err() != nil {
		return
	}
	cur := meta.FindStatusCondition(a.obj.Status.Conditions, agorav1.AgentConditionReady)
	want := metav1.ConditionTrue
	if !a.reachable {
		want = metav1.ConditionUnknown
	}
	switch {
	case cur == nil:
		return
	case cur.Status == want:
		a.readyWriting = ""
		return
	case a.readyWriting == want:
		return // on its way
	}
	a.readyWriting = want
	cond := metav1.Condition{Type: agorav1.AgentConditionReady, Status: want, Reason: ReasonAgentReachable,
		Message: message, ObservedGeneration: a.obj.Generation, LastTransitionTime: metav1.NewTime(e.clock.Now())}
	if want != metav1.ConditionTrue {
		cond.Reason = ReasonAgentUnreachable
	}
	base := a.obj.DeepCopy()
	e.doIn(laneBackground, func(ctx context.Context) msg {
		_, out := patchStatus(ctx, e.m, base, func(x *agorav1.Agent) bool {
			c := meta.FindStatusCondition(x.Status.Conditions, agorav1.AgentConditionReady)
			if c == nil || c.Status == want {
				return false
			}
			meta.SetStatusCondition(&x.Status.Conditions, cond)
			return true
		})
		if out == failed && ctx.Err() != nil {
			return nil
		}
		return func(e *engine) {
			if out != wrote && a.readyWriting == want {
				a.readyWriting = "" // the next heartbeat or judgement tries again
			}
		}
	})
}
