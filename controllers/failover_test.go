package controllers_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/controllers"
)

// The master is killed at awkward points while tasks and offers are in
// flight, and a new one takes over: no task is lost, nothing is bound
// twice, every offer settles once, no agent is over-committed.
func TestMasterKilled(t *testing.T) {
	for _, point := range []string{"after-bind", "after-assign-task-ends", "before-settle", "mid-allocation", "standby-takes-over"} {
		t.Run(point, func(t *testing.T) { masterKilledAt(t, point) })
	}
}

func masterKilledAt(t *testing.T, point string) {
	// The new master reads its lists in pages of 2: 2 agents, 3 or 4
	// tasks, the offers.
	defer controllers.SetRebuildPageSize(2)()
	h := newHarness(t, 2, "cpus:8;mem:16Gi;disk:10Gi")
	h.framework("f", nil)
	var m1 *master
	var once sync.Once
	killed := make(chan struct{})
	kill := func() { once.Do(func() { m1.cancel(); close(killed) }) }
	var hooks controllers.Hooks
	switch point {
	case "after-bind", "standby-takes-over":
		hooks.AfterBind = func(string, string) { kill() }
	case "after-assign-task-ends":
		// Killed once t0, the task the test waits for, is listed.
		hooks.AfterAssign = func(_ string, tasks []string) {
			if slices.Contains(tasks, h.ns+"/t0") {
				kill()
			}
		}
	case "before-settle":
		hooks.BeforeSettle = func(string, string) { kill() }
	case "mid-allocation":
		hooks.MidAllocation = func() { kill() }
	}
	le := point == "standby-takes-over"
	ready := make(chan struct{})
	if point == "mid-allocation" {
		// The hook fires in the first round; m1 must be set before.
		hooks.MidAllocation = func() { <-ready; kill() }
	}
	m1 = h.master(masterOpts{name: "m1", leaderElect: le, Options: controllers.Options{Hooks: hooks}})
	close(ready)
	var m2 *master
	if le {
		time.Sleep(time.Second) // m1 leads; m2 waits as a warm standby
		m2 = h.master(masterOpts{name: "m2", leaderElect: true})
	}

	// after-bind: the master dies once an Assignment write bound a task;
	// the next master learns of the bind from the stored Assignment alone
	// (the Task holds no bind until its agent writes).
	// after-assign-task-ends: t0, bound before the kill, runs and ends
	// while no master watches; its offer must still settle with it.
	ends := point == "after-assign-task-ends"
	taskDur := "1h"
	if ends {
		taskDur = "100ms"
	}
	var tasks []string
	if point != "mid-allocation" {
		o := h.waitOffers("f", 1)[0]
		for i := range 3 {
			name := fmt.Sprintf("t%d", i)
			tasks = append(tasks, name)
			h.create(h.task(name, "f", &o, "1", "1Gi", dur(taskDur)))
		}
		if point == "before-settle" {
			if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-killed:
		case <-time.After(20 * time.Second):
			t.Fatal("the kill point was never reached")
		}
		<-m1.done
		if ends {
			h.waitTask("t0", stateIs(agorav1.TaskFinished))
		}
		if point != "before-settle" {
			if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
				t.Fatal(err)
			}
		}
		if m2 == nil {
			m2 = h.master(masterOpts{name: "m2"})
		}
		h.waitAccepted(o.Name) // with all three tasks: they end RUNNING or FINISHED below, not DROPPED
	} else {
		select {
		case <-killed:
		case <-time.After(20 * time.Second):
			t.Fatal("the kill point was never reached")
		}
		<-m1.done
		m2 = h.master(masterOpts{name: "m2"})
	}
	_ = m2
	want := agorav1.TaskRunning
	if ends {
		want = agorav1.TaskFinished
	}
	held := 0
	for _, n := range tasks {
		h.waitTask(n, stateIs(want))
		if !ends {
			held++
		}
	}
	// The new master keeps offering what is left, once.
	h.advance(2 * time.Second)
	offers := h.waitOffers("f", 2)
	var cpus int64
	for _, o := range offers {
		cpus += o.Spec.Resources.CPUs.MilliValue()
	}
	if want := int64(16000 - 1000*held); cpus != want {
		t.Errorf("outstanding offers hold %d millicpus, want %d", cpus, want)
	}
	// Launch more on the new master.
	o := offers[0]
	h.create(h.task("after", "f", &o, "1", "1Gi", dur("1h")))
	if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	h.waitTask("after", stateIs(agorav1.TaskRunning))
	h.checker.Sync()
}

// A new leader keeps the framework's written status until its books are
// recovered: it never rewrites it with the counts and shares of an empty
// cluster, as the first write after a takeover once did.
func TestNewLeaderKeepsFrameworkStatus(t *testing.T) {
	h := newHarness(t, 1, "cpus:8;mem:16Gi;disk:10Gi")
	h.framework("f", nil)
	m1 := h.master(masterOpts{name: "m1"})
	o := h.waitOffers("f", 1)[0]
	for i := range 2 {
		h.create(h.task(fmt.Sprintf("t%d", i), "f", &o, "1", "1Gi", dur("1h")))
	}
	if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		h.waitTask(fmt.Sprintf("t%d", i), stateIs(agorav1.TaskRunning))
	}
	h.eventually("m1 writes both tasks in the status", 20*time.Second, func() bool {
		h.advance(time.Second)
		return h.getFramework("f").Status.ActiveTasks == 2
	})
	written := h.getFramework("f").Status
	m1.cancel()
	<-m1.done

	stop := make(chan struct{})
	var seen []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			st := h.getFramework("f").Status
			if st.ActiveTasks < 2 || st.DominantShare == "0.000" {
				seen = append(seen, fmt.Sprintf("activeTasks %d, dominantShare %s", st.ActiveTasks, st.DominantShare))
			}
		}
	})
	h.master(masterOpts{name: "m2"})
	h.advance(2 * time.Second)
	o = h.waitOffers("f", 1)[0]
	h.create(h.task("t2", "f", &o, "1", "1Gi", dur("1h")))
	if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
		t.Fatal(err)
	}
	h.waitTask("t2", stateIs(agorav1.TaskRunning))
	close(stop)
	wg.Wait()
	if len(seen) > 0 {
		t.Errorf("the new leader wrote the status before its books were recovered (had activeTasks 2, dominantShare %s): %v", written.DominantShare, seen)
	}
	h.eventually("m2 writes all three tasks", 20*time.Second, func() bool {
		h.advance(time.Second)
		return h.getFramework("f").Status.ActiveTasks == 3
	})
}

// TestFailedStatusWriteIsRetried: a framework status write that fails is
// written again, although nothing changes afterwards to make it due.
func TestFailedStatusWriteIsRetried(t *testing.T) {
	h := newHarness(t, 1, "cpus:8;mem:16Gi;disk:10Gi")
	h.framework("f", nil)
	var failing atomic.Bool
	failing.Store(true)
	var failed atomic.Int32
	h.master(masterOpts{name: "m", wrap: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if failing.Load() && r.Method == http.MethodPatch && strings.HasSuffix(r.URL.Path, "/frameworks/f/status") {
				failed.Add(1)
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 injected", Header: http.Header{},
					Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
			}
			return rt.RoundTrip(r)
		})
	}})
	// Both writes fail: the one for the phase at first sight, and the one
	// a status period (10 s) later with the outstanding offer counted.
	h.eventually("the first framework status write to fail", 20*time.Second, func() bool { return failed.Load() >= 1 })
	h.eventually("the second framework status write to fail", 20*time.Second, func() bool {
		h.advance(time.Second)
		return failed.Load() >= 2
	})
	failing.Store(false)
	// Nothing changes now until the offer expires (60 s): only a retry
	// writes the status before that.
	for range 30 {
		h.advance(time.Second)
		if h.getFramework("f").Status.Phase == agorav1.FrameworkActive {
			return
		}
	}
	t.Fatal("the failed framework status write was not retried within 30 s")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestFailedTaskStateWriteIsRetried: the master's TASK_LOST for a task
// naming no offer is written although every try failed for a while (the
// apiserver unavailable) and nothing about the task changes afterwards.
func TestFailedTaskStateWriteIsRetried(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.framework("f", nil)
	var failing atomic.Bool
	var failed atomic.Int32
	h.master(masterOpts{name: "m", wrap: func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if failing.Load() && r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/tasks/") && strings.HasSuffix(r.URL.Path, "/status") {
				failed.Add(1)
				return &http.Response{StatusCode: http.StatusServiceUnavailable, Status: "503 injected", Header: http.Header{},
					Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
			}
			return rt.RoundTrip(r)
		})
	}})
	o := h.waitOffers("f", 1)[0]
	failing.Store(true)
	missing := o.DeepCopy()
	missing.Name = "no-such-offer"
	h.create(h.task("t1", "f", missing, "1", "1Gi"))
	// patchStatus tries 5 times; one more means a retry after it gave up.
	h.eventually("the write to fail past its own tries", 30*time.Second, func() bool {
		h.advance(time.Second)
		return failed.Load() > 5
	})
	failing.Store(false)
	h.eventually("t1 ended TASK_LOST", 60*time.Second, func() bool {
		h.advance(time.Second)
		st := h.getTask("t1").Status
		return st.State == agorav1.TaskLost && st.Reason == agorav1.ReasonInvalidOffers
	})
}
