package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
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
