package controllers_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/controllers"
)

// answerForOne answers o with Accept, counting one task still to come, so
// that its settle waits for that task's event.
func answerForOne(t *testing.T, h *harness, o *agorav1.Offer) {
	t.Helper()
	p := client.MergeFrom(o.DeepCopy())
	o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferAccept, RefuseSeconds: ptr.To[int32](1), Tasks: ptr.To[int32](1)}
	if err := h.c.Patch(h.ctx, o, p); err != nil {
		t.Fatal(err)
	}
}

// TestAnswerBeforeAgentUnreachable: an offer answered just before its agent
// is judged unreachable is settled by its answer, but the task that comes
// after is not bound to the lost agent: it ends TASK_LOST (a passing cause,
// which the framework may launch again), REASON_AGENT_UNREACHABLE.
func TestAnswerBeforeAgentUnreachable(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.framework("f", nil)
	h.master(masterOpts{name: "m", Options: controllers.Options{AgentTimeout: 3 * time.Second}})
	o := h.waitOffers("f", 1)[0]
	if err := h.agents.Pause(o.Spec.AgentName); err != nil {
		t.Fatal(err)
	}
	answerForOne(t, h, &o)
	h.advance(5 * time.Second) // past the agent timeout
	h.create(h.task("t1", "f", &o, "1", "1Gi"))
	h.expectTask("t1", agorav1.TaskLost, agorav1.ReasonAgentUnreachable)
}

// TestAnswerBeforeAgentRemoved: the same when the Agent is deleted instead:
// TASK_LOST, REASON_AGENT_REMOVED, and not TASK_ERROR, which would tell the
// framework that the task itself is wrong.
func TestAnswerBeforeAgentRemoved(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.framework("f", nil)
	h.master(masterOpts{name: "m"})
	o := h.waitOffers("f", 1)[0]
	h.agents.Stop()
	answerForOne(t, h, &o)
	if err := h.c.Delete(h.ctx, &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: o.Spec.AgentName}}); err != nil {
		t.Fatal(err)
	}
	// The settle waits up to 2 s of real time for the task its answer
	// counts; the master sees the deletion well before.
	time.Sleep(300 * time.Millisecond)
	h.create(h.task("t1", "f", &o, "1", "1Gi"))
	h.expectTask("t1", agorav1.TaskLost, agorav1.ReasonAgentRemoved)
}
