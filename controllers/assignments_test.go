package controllers_test

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// The master lists an agent's bound tasks in the agent's Assignment, with
// the kill a framework asks for, and drops ended tasks from the list.
func TestAssignmentListsBoundTasks(t *testing.T) {
	h := newHarness(t, 1, "cpus:8;mem:16Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("f", nil)
	agent := h.agents.Names()[0]
	o := h.waitOffers("f", 1)[0]
	h.create(h.task("t0", "f", &o, "1", "1Gi"))
	h.create(h.task("t1", "f", &o, "1", "1Gi"))
	if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	t0, t1 := h.waitTask("t0", bound), h.waitTask("t1", bound)
	h.eventually("t0 and t1 listed", 20*time.Second, func() bool {
		got := h.assignment(agent)
		return listed(got, t0.UID) != nil && listed(got, t1.UID) != nil
	})
	if e := listed(h.assignment(agent), t0.UID); e.Namespace != h.ns || e.Name != "t0" || e.Kill || e.Lost {
		t.Fatalf("entry of t0 is %+v, want namespace %s, name t0, no kill, not lost", *e, h.ns)
	}

	patch := client.MergeFrom(t0.DeepCopy())
	t0.Spec.Kill = true
	if err := h.c.Patch(h.ctx, t0, patch); err != nil {
		t.Fatal(err)
	}
	h.eventually("t0's entry asks for its kill", 20*time.Second, func() bool {
		e := listed(h.assignment(agent), t0.UID)
		return e != nil && e.Kill
	})
	h.waitTask("t0", stateIs(agorav1.TaskKilled))
	// An ended task leaves with the next write; the sweep makes one.
	h.eventually("t0 unlisted, t1 still listed", 20*time.Second, func() bool {
		h.advance(10 * time.Second)
		got := h.assignment(agent)
		return listed(got, t0.UID) == nil && listed(got, t1.UID) != nil
	})
}

func bound(s agorav1.TaskStatus) bool { return s.BindTime != nil }

func (h *harness) assignment(agent string) *agorav1.Assignment {
	a := &agorav1.Assignment{}
	if err := h.c.Get(h.ctx, client.ObjectKey{Name: agent}, a); err != nil {
		return a // not written yet: no entries
	}
	return a
}

func listed(a *agorav1.Assignment, uid types.UID) *agorav1.AssignedTask {
	i := slices.IndexFunc(a.Spec.Tasks, func(e agorav1.AssignedTask) bool { return e.UID == uid })
	if i < 0 {
		return nil
	}
	return &a.Spec.Tasks[i]
}
