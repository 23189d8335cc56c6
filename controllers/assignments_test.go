package controllers_test

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// The master binds a task by listing it in its agent's Assignment, with
// the bind's time and role and without writing the Task; it lists the
// kill a framework asks for, and drops ended tasks from the list.
func TestAssignmentListsBoundTasks(t *testing.T) {
	h := newHarness(t, 1, "cpus:8;mem:16Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("f", nil)
	agent := h.agents.Names()[0]
	o := h.waitOffers("f", 1)[0]
	// Paused, the agent writes nothing: what the Tasks hold is the master's.
	if err := h.agents.Pause(agent); err != nil {
		t.Fatal(err)
	}
	h.create(h.task("t0", "f", &o, "1", "1Gi"))
	h.create(h.task("t1", "f", &o, "1", "1Gi"))
	if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	t0, t1 := h.getTask("t0"), h.getTask("t1")
	h.eventually("t0 and t1 listed", 20*time.Second, func() bool {
		got := h.assignment(agent)
		return listed(got, t0.UID) != nil && listed(got, t1.UID) != nil
	})
	e := *listed(h.assignment(agent), t0.UID)
	if e.Namespace != h.ns || e.Name != "t0" || e.Kill || e.Lost || e.BindTime == nil || e.Role != o.Spec.Role {
		t.Fatalf("entry of t0 is %+v, want namespace %s, name t0, a bindTime, role %q, no kill, not lost", e, h.ns, o.Spec.Role)
	}
	// The version bound is the one created: nobody wrote t0 since.
	if e.ResourceVersion != t0.ResourceVersion {
		t.Errorf("entry of t0 has resourceVersion %q, want the bound Task's %q", e.ResourceVersion, t0.ResourceVersion)
	}
	h.waitAccepted(o.Name) // settled after its binds
	if s := h.getTask("t0").Status; s.State != "" || s.BindTime != nil {
		t.Fatalf("the master wrote t0's status %+v; the entry is the bind", s)
	}
	if err := h.agents.Resume(agent); err != nil {
		t.Fatal(err)
	}
	t0 = h.waitTask("t0", stateIs(agorav1.TaskRunning))
	if s := t0.Status; s.BindTime == nil || !s.BindTime.Equal(e.BindTime) || s.Role != e.Role {
		t.Errorf("RUNNING t0 has bindTime %v role %q, want the entry's %v %q", s.BindTime, s.Role, e.BindTime, e.Role)
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
