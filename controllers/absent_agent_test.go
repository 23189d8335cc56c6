package controllers_test

import (
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// TestAgentDeletedWhileNoMasterRuns: an Agent deleted while no master
// watched ends its live tasks as a deletion the master sees does (TASK_GONE
// for a partition-aware framework, TASK_LOST otherwise, REASON_AGENT_REMOVED),
// once the next leader has given the agent a full agent timeout; before,
// its tasks stayed TASK_RUNNING for ever.
func TestAgentDeletedWhileNoMasterRuns(t *testing.T) {
	h := newHarness(t, 2, "cpus:4;mem:8Gi;disk:10Gi")
	m1 := h.master(masterOpts{name: "m1"})
	h.framework("pa", func(f *agorav1.Framework) {
		f.Spec.Capabilities = []agorav1.FrameworkCapability{agorav1.CapabilityPartitionAware}
	})
	h.framework("plain", nil)
	gone := h.agents.Names()[0]
	// Both tasks go to one agent: every other offer (the other agent's,
	// the rest of this one's to the framework placed first) is declined
	// for an hour.
	for _, fw := range []string{"pa", "plain"} {
		var o *agorav1.Offer
		h.eventually("an offer to "+fw+" on "+gone, 20*time.Second, func() bool {
			for _, x := range outstanding(h.offers("")) {
				if x.Spec.FrameworkName == fw && x.Spec.AgentName == gone {
					o = &x
					return true
				}
				if err := h.answer(&x, agorav1.OfferDecline, 3600); err != nil {
					t.Fatal(err)
				}
			}
			h.advance(time.Second)
			return false
		})
		h.create(h.task(fw+"-t", fw, o, "1", "1Gi", dur("1h")))
		if err := h.answer(o, agorav1.OfferAccept, 0); err != nil {
			t.Fatal(err)
		}
		h.waitTask(fw+"-t", stateIs(agorav1.TaskRunning))
	}
	m1.stop()

	// The agent goes with its Agent object while no master runs.
	if err := h.agents.Pause(gone); err != nil {
		t.Fatal(err)
	}
	ag := &agorav1.Agent{}
	if err := h.c.Get(h.ctx, client.ObjectKey{Name: gone}, ag); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Delete(h.ctx, ag); err != nil {
		t.Fatal(err)
	}

	h.master(masterOpts{name: "m2"})
	h.framework("late", nil)
	h.advance(2 * time.Second)
	h.waitOffers("late", 1) // m2 has rebuilt its books and allocates

	h.advance(20 * time.Second)
	for _, fw := range []string{"pa", "plain"} {
		if st := h.getTask(fw + "-t").Status; st.State != agorav1.TaskRunning {
			t.Fatalf("task %s-t is %s %s within the agent timeout of the new leader; want it RUNNING until then", fw, st.State, st.Reason)
		}
	}
	h.eventually("the removed agent's tasks to end", 60*time.Second, func() bool {
		h.advance(time.Second)
		return h.getTask("pa-t").Status.State != agorav1.TaskRunning && h.getTask("plain-t").Status.State != agorav1.TaskRunning
	})
	h.expectTask("pa-t", agorav1.TaskGone, agorav1.ReasonAgentRemoved)
	h.expectTask("plain-t", agorav1.TaskLost, agorav1.ReasonAgentRemoved)
	if msg := h.getTask("plain-t").Status.Message; !strings.Contains(msg, gone) {
		t.Errorf("the LOST task's message %q does not name agent %s", msg, gone)
	}
}
