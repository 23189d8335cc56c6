package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/allocator"
	"github.com/agora-sched/agora/pkg/resources"
)

// TestBooksTakeTheCachesCopyOfTheSameVersion: when the informer replays the
// version the rebuild read, the books keep the informer's object (so the
// rebuild's lists can be freed) without syncing the task again; an older
// version changes nothing and a newer one is synced.
func TestBooksTakeTheCachesCopyOfTheSameVersion(t *testing.T) {
	e := newEngine(context.Background(), &Master{opts: Options{Clock: clocktesting.NewFakeClock(time.Now())}, log: logr.Discard()})
	task := func(rv string) *agorav1.Task {
		return &agorav1.Task{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t", UID: "u1", ResourceVersion: rv},
			Spec:       agorav1.TaskSpec{FrameworkName: "fw", AgentName: "a", OfferRef: agorav1.OfferReference{Name: "o", UID: "ou"}},
		}
	}
	if e.upsertTask(task("5")) == nil {
		t.Fatal("a new task was not recorded")
	}
	cached := task("5")
	if e.upsertTask(cached) != nil {
		t.Error("the same version was synced again")
	}
	if got := e.tasks[key("ns", "t")].obj; got != cached {
		t.Error("the books kept the rebuild's copy of the same version, not the cache's")
	}
	if e.upsertTask(task("4")) != nil || e.tasks[key("ns", "t")].obj != cached {
		t.Error("an older version replaced the books' copy")
	}
	newer := task("6")
	if e.upsertTask(newer) == nil || e.tasks[key("ns", "t")].obj != newer {
		t.Error("a newer version was not taken and synced")
	}
}

// TestUnbookWithoutItsOffer: a task taken off the books while its offer no
// longer holds resources goes back to the allocator (unbook cleared the
// task's flag before releaseTask read it, so nothing went back).
func TestUnbookWithoutItsOffer(t *testing.T) {
	e := newEngine(context.Background(), &Master{opts: Options{Clock: clocktesting.NewFakeClock(time.Now())}, log: logr.Discard()})
	res := resources.MustParse("cpus:1;mem:1Gi")
	if err := e.alloc.AddAgent(allocator.AgentInfo{Name: "a", Total: resources.MustParse("cpus:4;mem:4Gi")}); err != nil {
		t.Fatal(err)
	}
	if err := e.alloc.AddFramework(allocator.FrameworkInfo{ID: "ns/fw"}); err != nil {
		t.Fatal(err)
	}
	if err := e.alloc.AddAllocation("ns/fw", allocator.DefaultRole, "a", res); err != nil {
		t.Fatal(err)
	}
	e.agents["a"] = &agentState{name: "a", inAlloc: true}
	tk := &taskState{key: "ns/t", fw: "ns/fw", agent: "a", offer: "ns/gone", role: allocator.DefaultRole, res: res, accounted: true}
	e.unbook(tk)
	held, err := e.alloc.AllocatedOn("ns/fw", allocator.DefaultRole, "a")
	if err != nil || !held.IsEmpty() || tk.accounted {
		t.Errorf("after unbook the framework still holds %s on the agent (err %v, accounted %t), want nothing", held, err, tk.accounted)
	}
}

// TestSettleListAppliesANewerTaskVersion: the settle's consistent list can
// read a bound task's RUNNING before the informer delivers it. The books
// take that version, so the informer's copy of it is no news; the settle
// must apply its state then, or the framework's status counted the task
// as stateless for good (a flake of TestNewLeaderKeepsFrameworkStatus).
func TestSettleListAppliesANewerTaskVersion(t *testing.T) {
	e := newEngine(context.Background(), &Master{opts: Options{Clock: clocktesting.NewFakeClock(time.Now())}, log: logr.Discard()})
	task := func(rv string, state agorav1.TaskState) *agorav1.Task {
		return &agorav1.Task{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t", UID: "u1", ResourceVersion: rv},
			Spec:       agorav1.TaskSpec{FrameworkName: "fw", AgentName: "a", OfferRef: agorav1.OfferReference{Name: "o", UID: "ou"}},
			Status:     agorav1.TaskStatus{State: state},
		}
	}
	tk := e.upsertTask(task("5", ""))
	tk.bound, tk.accounted = true, true // bound on the offer as the master saw it
	offer := &agorav1.Offer{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "o", UID: "ou", ResourceVersion: "3"},
		Spec:       agorav1.OfferSpec{FrameworkName: "fw", AgentName: "a", Answer: &agorav1.OfferAnswer{Type: agorav1.OfferAccept}},
	}
	e.offers["ns/o"] = &offerState{key: "ns/o", ns: "ns", name: "o", uid: "ou", fw: "ns/fw", agent: "a",
		stage: offerSettling, obj: offer, pendingBinds: 1} // its bind is in flight: the settle waits for it

	e.settleListed("ns/o", offer.DeepCopy(), []agorav1.Task{*task("7", agorav1.TaskRunning)}, nil)
	e.onTask(task("7", agorav1.TaskRunning), false) // the informer catches up
	if got := e.tasks[key("ns", "t")].state; got != agorav1.TaskRunning {
		t.Errorf("task state in the books = %q, want %s", got, agorav1.TaskRunning)
	}
}
