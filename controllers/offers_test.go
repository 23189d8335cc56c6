package controllers_test

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// A framework gets an offer, launches two tasks, accepts with a 5 s
// filter; the remainder is offered again only after the filter passes on
// the master's clock.
func TestOfferLaunchAcceptFilter(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("spark", nil)

	o := h.waitOffers("spark", 1)[0]
	if o.Spec.Role != "*" || o.Spec.Hostname == "" || o.Labels["scheduling.agora.dev/agent"] != o.Spec.AgentName ||
		len(o.OwnerReferences) != 1 || o.OwnerReferences[0].Name != "spark" {
		t.Errorf("offer lacks role, hostname, labels or owner: %+v", o.ObjectMeta)
	}
	h.create(h.task("t1", "spark", &o, "1", "1Gi"))
	h.create(h.task("t2", "spark", &o, "1", "1Gi"))
	if t1 := h.waitTask("t1", stateIs(agorav1.TaskStaging, agorav1.TaskStarting, agorav1.TaskRunning)); t1.Status.Role != o.Spec.Role {
		t.Errorf("bound task records role %q, want its offer's %q", t1.Status.Role, o.Spec.Role)
	}
	if err := h.answer(&o, agorav1.OfferAccept, 5); err != nil {
		t.Fatal(err)
	}
	h.waitAccepted(o.Name)
	for _, n := range []string{"t1", "t2"} {
		h.waitTask(n, stateIs(agorav1.TaskRunning))
	}
	// Within the filter: no new offer.
	h.advance(2 * time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(outstanding(h.offers("spark"))); n != 0 {
		t.Fatalf("%d offers made within the decline filter", n)
	}
	h.advance(4 * time.Second)
	o2 := h.waitOffers("spark", 1)[0]
	if o2.Spec.Resources.CPUs.MilliValue() != 2000 {
		t.Errorf("re-offered %v cpus, want the remaining 2", o2.Spec.Resources.CPUs)
	}
	// Decline with a filter; then REVIVE clears it at once.
	if err := h.answer(&o2, agorav1.OfferDecline, 300); err != nil {
		t.Fatal(err)
	}
	h.eventually("decline settled", 10*time.Second, func() bool {
		for _, x := range h.offers("spark") {
			if x.Name == o2.Name {
				return x.Status.Phase == agorav1.OfferDeclined
			}
		}
		return false
	})
	h.advance(3 * time.Second)
	if n := len(outstanding(h.offers("spark"))); n != 0 {
		t.Fatalf("%d offers made within a 300 s decline filter", n)
	}
	fw := &agorav1.Framework{}
	if err := h.c.Get(h.ctx, keyOf(h.ns, "spark"), fw); err != nil {
		t.Fatal(err)
	}
	fw.Spec.ReviveTime = nowTime()
	if err := h.c.Update(h.ctx, fw); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	h.waitOffers("spark", 1)
	h.checker.Sync()
	if fw := h.getFramework("spark"); fw.Status.Phase != agorav1.FrameworkActive || fw.Status.FrameworkID != string(fw.UID) {
		t.Errorf("framework status: %+v", fw.Status)
	}
}

// An answer that counts the Tasks created is settled from the Tasks the
// master has seen; one that counts more than were created is settled by
// the consistent list after a short wait; either way every Task that fits
// is bound and the offer is accepted once.
func TestAnswerTaskCount(t *testing.T) {
	h := newHarness(t, 2, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("spark", nil)
	offers := h.waitOffers("spark", 2)
	settle := func(o *agorav1.Offer, count int32, names ...string) {
		t.Helper()
		for _, n := range names {
			h.create(h.task(n, "spark", o, "1", "1Gi"))
		}
		patch := client.MergeFrom(o.DeepCopy())
		o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferAccept, Tasks: &count}
		if err := h.c.Patch(h.ctx, o, patch); err != nil {
			t.Fatal(err)
		}
		h.waitAccepted(o.Name)
		for _, n := range names {
			h.waitTask(n, stateIs(agorav1.TaskStaging, agorav1.TaskStarting, agorav1.TaskRunning))
		}
	}
	settle(&offers[0], 3, "c1", "c2", "c3")
	settle(&offers[1], 2, "w1") // counts one Task too many: listed after the wait
	h.checker.Sync()
}

// SUPPRESS stops new offers and nothing else (as in Mesos): the offers the
// framework holds stay outstanding and can still be accepted or declined;
// unsuppressing brings offers back.
func TestSuppressKeepsOutstandingOffers(t *testing.T) {
	h := newHarness(t, 2, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("spark", nil)

	held := h.waitOffers("spark", 2)[:2]
	patchFramework(h, "spark", func(f *agorav1.Framework) { f.Spec.SuppressedRoles = []string{"*"} })
	gen := h.getFramework("spark").Generation
	h.eventually("master acted on the suppress", 10*time.Second, func() bool {
		return h.getFramework("spark").Status.ObservedGeneration >= gen
	})
	h.advance(2 * time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(outstanding(h.offers("spark"))); n != 2 {
		t.Fatalf("%d offers outstanding after the suppress, want the 2 held before it", n)
	}

	h.create(h.task("t1", "spark", &held[0], "1", "1Gi"))
	if err := h.answer(&held[0], agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	if err := h.answer(&held[1], agorav1.OfferDecline, 1); err != nil {
		t.Fatal(err)
	}
	h.waitAccepted(held[0].Name)
	h.waitOfferPhase(held[1].Name, agorav1.OfferDeclined)
	h.waitTask("t1", stateIs(agorav1.TaskRunning))

	// Past both filters: still no offer while suppressed.
	h.advance(3 * time.Second)
	time.Sleep(300 * time.Millisecond)
	h.advance(time.Second)
	time.Sleep(300 * time.Millisecond)
	if n := len(outstanding(h.offers("spark"))); n != 0 {
		t.Fatalf("%d offers made to a suppressed framework", n)
	}
	patchFramework(h, "spark", func(f *agorav1.Framework) { f.Spec.SuppressedRoles = nil })
	h.advance(time.Second)
	h.waitOffers("spark", 2)
	h.checker.Sync()
}

// A task that ends while the offer it was launched on is still unanswered
// returns its resources at once: the next round offers them to another
// framework, and the agent is never over-committed (the checker counts
// the offer by what has not been launched on it).
func TestEndedTaskFreedBeforeAnswer(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("a", nil)
	held := h.waitOffers("a", 1)[0]
	h.framework("b", nil)
	h.create(h.task("short", "a", &held, "1", "1Gi", dur("100ms")))
	h.create(h.task("long", "a", &held, "1", "1Gi", dur("1h")))
	h.waitTask("short", stateIs(agorav1.TaskFinished))
	h.waitTask("long", stateIs(agorav1.TaskRunning))

	var got agorav1.Offer
	h.eventually("b offered what the ended task held", 20*time.Second, func() bool {
		h.advance(time.Second)
		offers := outstanding(h.offers("b"))
		if len(offers) == 0 {
			return false
		}
		got = offers[0]
		return true
	})
	if cpus := got.Spec.Resources.CPUs.MilliValue(); cpus != 1000 {
		t.Errorf("b's offer has %d millicpus, want the ended task's 1000", cpus)
	}
	var cur agorav1.Offer
	if err := h.c.Get(h.ctx, client.ObjectKeyFromObject(&held), &cur); err != nil || cur.Status.Phase != "" {
		t.Fatalf("a's offer is %q (%v), want it still outstanding", cur.Status.Phase, err)
	}
	// a's budget on its offer still counts the ended task: 2 cpus are left.
	if err := h.answer(&held, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	h.waitAccepted(held.Name)
	// What a's offer did not launch on comes back, and no more: 4 cpus
	// less the 2 launched (the checker would also see an over-commit).
	var cpus int64
	h.eventually("the offer's remainder offered again", 20*time.Second, func() bool {
		h.advance(time.Second)
		cpus = 0
		for _, fw := range []string{"a", "b"} {
			for _, x := range outstanding(h.offers(fw)) {
				if x.Name != got.Name {
					cpus += x.Spec.Resources.CPUs.MilliValue()
				}
			}
		}
		return cpus > 0
	})
	if cpus != 2000 {
		t.Errorf("a's offer left %d millicpus, want 2000 (4 cpus, 2 launched)", cpus)
	}
	h.checker.Sync()
}

// TestDeletedFrameworkForgottenWithItsOffers: a framework deleted while it
// holds offers and has no task is forgotten once its offers are gone: its
// role stops counting it.
func TestDeletedFrameworkForgottenWithItsOffers(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	role := &agorav1.ResourceRole{ObjectMeta: metav1.ObjectMeta{Name: "forgotten-" + h.ns}, Spec: agorav1.ResourceRoleSpec{Namespaces: []string{h.ns}}}
	if err := h.c.Create(h.ctx, role); err != nil {
		t.Fatal(err)
	}
	h.framework("f", func(f *agorav1.Framework) { f.Spec.Roles = []string{role.Name} })
	h.master(masterOpts{name: "m"})
	h.waitOffers("f", 1)
	counted := func() int32 {
		var cur agorav1.ResourceRole
		if err := h.c.Get(h.ctx, client.ObjectKeyFromObject(role), &cur); err != nil {
			t.Fatal(err)
		}
		return cur.Status.Frameworks
	}
	h.eventually("the role counting f", 30*time.Second, func() bool {
		h.advance(time.Second)
		return counted() == 1
	})
	if err := h.c.Delete(h.ctx, &agorav1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "f"}}); err != nil {
		t.Fatal(err)
	}
	h.eventually("f's offers deleted", 20*time.Second, func() bool { return len(h.offers("f")) == 0 })
	h.eventually("the role no longer counting f", 30*time.Second, func() bool {
		h.advance(time.Second)
		return counted() == 0
	})
}
