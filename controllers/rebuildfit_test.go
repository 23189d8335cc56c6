package controllers_test

import (
	"testing"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// lentAndOfferedAgain leaves the state the rebuild must not misread: an
// unanswered offer whose 4 cpus went to a task ("z-first", which sorts
// after every other task) that has ended since, and those 4 cpus offered
// again to the same framework. It returns both offers, the first one
// still outstanding.
func lentAndOfferedAgain(t *testing.T, h *harness) (first, again agorav1.Offer) {
	t.Helper()
	first = h.waitOffers("f", 1)[0]
	h.create(h.task("z-first", "f", &first, "4", "1Gi", dur("100ms")))
	h.waitTask("z-first", stateIs(agorav1.TaskFinished))
	h.eventually("the ended task's cpus offered again", 20*time.Second, func() bool {
		h.advance(time.Second)
		for _, o := range outstanding(h.offers("f")) {
			if o.Name != first.Name {
				again = o
				return true
			}
		}
		return false
	})
	return first, again
}

// takeoverSteps of takeoverStep give a new master the real time to take
// over and rebuild, and its fake clock the time for a few rounds.
const takeoverSteps = 8

func takeoverStep(h *harness) {
	h.advance(time.Second)
	time.Sleep(500 * time.Millisecond)
}

// TestRebuildFitsTasksBesideLentOffers: a new leader's rebuild books a
// running task whose offer is gone beside an unanswered offer that lent
// all it had to a task that ended: the agent is not offered again while
// the task runs (the harness's checker also fails the test on an
// over-commit).
func TestRebuildFitsTasksBesideLentOffers(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.framework("f", nil)
	m1 := h.master(masterOpts{name: "m1"})
	first, again := lentAndOfferedAgain(t, h)
	h.create(h.task("a-runs", "f", &again, "4", "1Gi"))
	if err := h.answer(&again, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	h.waitAccepted(again.Name)
	h.waitTask("a-runs", stateIs(agorav1.TaskRunning))

	m1.stop()
	h.master(masterOpts{name: "m2"})
	for range takeoverSteps {
		takeoverStep(h)
		for _, o := range outstanding(h.offers("f")) {
			if o.Name != first.Name && o.Name != again.Name {
				t.Fatalf("the new leader offered %s cpus of an agent whose 4 cpus a running task holds (offer %s)", o.Spec.Resources.CPUs, o.Name)
			}
		}
	}
}

// TestRebuildKeepsOffersBesideLentOffers: the same, with the cpus offered
// again still unanswered, and a task launched on each offer while no
// master runs: the new leader keeps both offers, rescinding neither as
// unaccountable, and binds both tasks (whichever offer its replay had to
// set aside, the task on it waits for it, and is not judged against
// nothing left).
func TestRebuildKeepsOffersBesideLentOffers(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.framework("f", nil)
	m1 := h.master(masterOpts{name: "m1"})
	first, again := lentAndOfferedAgain(t, h)

	m1.stop()
	h.create(h.task("on-first", "f", &first, "", "1Gi")) // within what the first offer has left
	h.create(h.task("on-again", "f", &again, "4", "1Gi"))
	h.master(masterOpts{name: "m2"})
	for range takeoverSteps {
		takeoverStep(h)
	}
	var names []string
	for _, o := range outstanding(h.offers("f")) {
		names = append(names, o.Name)
	}
	if len(names) != 2 || !(names[0] == first.Name || names[1] == first.Name) || !(names[0] == again.Name || names[1] == again.Name) {
		t.Fatalf("outstanding offers after the takeover: %v, want %s and %s", names, first.Name, again.Name)
	}
	h.waitTask("on-first", stateIs(agorav1.TaskRunning))
	h.waitTask("on-again", stateIs(agorav1.TaskRunning))
	for _, o := range []*agorav1.Offer{&first, &again} {
		if err := h.answer(o, agorav1.OfferAccept, 1); err != nil {
			t.Fatal(err)
		}
		h.waitAccepted(o.Name)
	}
}

// TestRebuildExpiresOffersThatExpiredMeanwhile: an offer that expired
// while no master ran is expired by the new leader before it judges the
// tasks naming it: a task created on it after its expiry ends TASK_LOST,
// REASON_INVALID_OFFERS, instead of being bound until the first tick.
func TestRebuildExpiresOffersThatExpiredMeanwhile(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.framework("f", nil)
	m1 := h.master(masterOpts{name: "m1"})
	o := h.waitOffers("f", 1)[0]
	m1.stop()
	h.advance(61 * time.Second) // past the default offer timeout
	h.create(h.task("late", "f", &o, "1", "1Gi"))
	h.master(masterOpts{name: "m2"})
	h.expectTask("late", agorav1.TaskLost, agorav1.ReasonInvalidOffers)
}
