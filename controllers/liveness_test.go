package controllers_test

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/controllers"
	"github.com/agora-sched/agora/pkg/resources"
)

// An agent's Lease stops (a partition): within the agent timeout plus one
// allocation interval its tasks become UNREACHABLE (partition-aware) or
// LOST, and its offers are rescinded. When it comes back, its tasks are
// RUNNING again.
func TestAgentPartition(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("pa", func(f *agorav1.Framework) {
		f.Spec.Capabilities = []agorav1.FrameworkCapability{agorav1.CapabilityPartitionAware}
	})
	h.framework("plain", nil)

	for _, fw := range []string{"pa", "plain"} {
		o := h.waitOffers(fw, 1)[0]
		h.create(h.task(fw+"-t", fw, &o, "1", "1Gi", dur("1h")))
		h.waitTask(fw+"-t", stateIs(agorav1.TaskStaging, agorav1.TaskStarting, agorav1.TaskRunning))
		if err := h.answer(&o, agorav1.OfferAccept, 0); err != nil {
			t.Fatal(err)
		}
		h.waitAccepted(o.Name)
	}
	for _, fw := range []string{"pa", "plain"} {
		h.waitTask(fw+"-t", stateIs(agorav1.TaskRunning))
	}
	left := h.waitOffers("", 1)[0] // the rest is offered again (no filter)

	agent := h.agents.Names()[0]
	if err := h.agents.Pause(agent); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the last renewal land
	h.advance(40*time.Second + 2*time.Second)
	h.expectTask("pa-t", agorav1.TaskUnreachable, agorav1.ReasonAgentUnreachable)
	h.expectTask("plain-t", agorav1.TaskLost, agorav1.ReasonAgentRemoved)
	if o := h.waitOfferPhase(left.Name, agorav1.OfferRescinded); o.Status.Reason != "AGENT_UNREACHABLE" {
		t.Errorf("offer rescinded with reason %q", o.Status.Reason)
	}
	// kubectl get agents shows it: Ready is Unknown, as for a silent Node.
	h.waitAgentReady(agent, metav1.ConditionUnknown, controllers.ReasonAgentUnreachable)
	// No offers for an unreachable agent.
	h.advance(3 * time.Second)
	if n := len(outstanding(h.offers(""))); n != 0 {
		t.Errorf("%d offers made for an unreachable agent", n)
	}

	if err := h.agents.Resume(agent); err != nil {
		t.Fatal(err)
	}
	for _, fw := range []string{"pa", "plain"} {
		h.waitTask(fw+"-t", stateIs(agorav1.TaskRunning))
	}
	h.waitAgentReady(agent, metav1.ConditionTrue, controllers.ReasonAgentReachable)
	h.advance(2 * time.Second)
	o := h.waitOffers("", 1)[0]
	if o.Spec.Resources.CPUs.MilliValue() > 2000 {
		t.Errorf("offered %v cpus: the returning agent's running tasks must stay accounted", o.Spec.Resources.CPUs)
	}
}

// A partitioned agent's tasks leave their framework's share while the
// agent is unreachable, as Mesos removes the agent from its allocator, and
// come back with it: the share is not charged for tasks the framework
// cannot use, and no share is measured against a cluster without them.
func TestPartitionedTasksLeaveTheShare(t *testing.T) {
	h := newHarness(t, 2, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m", Options: controllers.Options{ExcludedFromShares: resources.KindsOf(resources.Disk)}})
	h.framework("pa", func(f *agorav1.Framework) {
		f.Spec.Capabilities = []agorav1.FrameworkCapability{agorav1.CapabilityPartitionAware}
	})
	offers := h.waitOffers("pa", 2)
	run, other := offers[0], offers[1]
	if err := h.answer(&other, agorav1.OfferDecline, 3600); err != nil {
		t.Fatal(err)
	}
	h.create(h.task("pa-t", "pa", &run, "2", "2Gi", dur("1h")))
	if err := h.answer(&run, agorav1.OfferAccept, 3600); err != nil {
		t.Fatal(err)
	}
	h.waitTask("pa-t", stateIs(agorav1.TaskRunning))
	share := func(want string) {
		t.Helper()
		h.eventually("pa's share written as "+want, 30*time.Second, func() bool {
			h.advance(time.Second)
			return h.getFramework("pa").Status.DominantShare == want
		})
	}
	share("0.250") // 2 of the cluster's 8 cpus

	if err := h.agents.Pause(run.Spec.AgentName); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the last renewal land
	h.advance(40*time.Second + 2*time.Second)
	h.expectTask("pa-t", agorav1.TaskUnreachable, agorav1.ReasonAgentUnreachable)
	share("0.000") // not 2 of the 4 cpus left reachable

	if err := h.agents.Resume(run.Spec.AgentName); err != nil {
		t.Fatal(err)
	}
	h.waitTask("pa-t", stateIs(agorav1.TaskRunning))
	share("0.250")
}

// A framework whose scheduler stops renewing its Lease is Inactive after
// the framework timeout (its offers rescinded, its tasks running), and torn
// down after its failoverTimeout: its tasks are killed.
func TestFrameworkFailoverTimeout(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	stop := h.framework("ft", func(f *agorav1.Framework) {
		f.Spec.FailoverTimeout = &metav1Duration{Duration: 90 * time.Second}
	})
	o := h.waitOffers("ft", 1)[0]
	h.create(h.task("ft-t", "ft", &o, "1", "1Gi", dur("1h")))
	if err := h.answer(&o, agorav1.OfferAccept, 0); err != nil {
		t.Fatal(err)
	}
	h.waitTask("ft-t", stateIs(agorav1.TaskRunning))
	o2 := h.waitOffers("ft", 1)[0]
	h.eventually("framework Active", 10*time.Second, func() bool {
		return h.getFramework("ft").Status.Phase == agorav1.FrameworkActive
	})

	stop()
	h.advance(32 * time.Second)
	h.eventually("framework Inactive", 10*time.Second, func() bool {
		return h.getFramework("ft").Status.Phase == agorav1.FrameworkInactive
	})
	h.waitOfferPhase(o2.Name, agorav1.OfferRescinded)
	if s := h.getTask("ft-t").Status.State; s != agorav1.TaskRunning {
		t.Errorf("an inactive framework's task is %s, want it running", s)
	}
	h.advance(60 * time.Second)
	h.eventually("framework TornDown", 10*time.Second, func() bool {
		fw := h.getFramework("ft")
		return fw.Status.Phase == agorav1.FrameworkTornDown && fw.Status.TornDownTime != nil
	})
	tk := h.waitTask("ft-t", stateIs(agorav1.TaskKilled))
	if !tk.Spec.Kill {
		t.Errorf("torn-down framework's task was not asked to die")
	}
	h.advance(3 * time.Second)
	if n := len(outstanding(h.offers("ft"))); n != 0 {
		t.Errorf("%d offers made to a torn-down framework", n)
	}
}

// An agent's status writes are heartbeats: while its Lease is silent but it
// changes a Task's status, or its own Agent status, the master keeps it
// reachable; once it writes nothing for the agent timeout, its tasks are
// LOST as for a silent Lease.
func TestAgentStatusWritesAreHeartbeats(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("fw", nil)
	o := h.waitOffers("fw", 1)[0]
	h.create(h.task("t", "fw", &o, "1", "1Gi", dur("1h")))
	if err := h.answer(&o, agorav1.OfferAccept, 0); err != nil {
		t.Fatal(err)
	}
	h.waitTask("t", stateIs(agorav1.TaskRunning))

	agent := h.agents.Names()[0]
	if err := h.agents.Pause(agent); err != nil { // no Lease renewals from here
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the last renewal land
	healthy := false
	writeTask := func() { // as the agent reports a health change
		healthy = !healthy
		h.patchStatus(&agorav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: "t"}},
			map[string]any{"healthy": healthy, "source": agorav1.SourceExecutor})
	}
	version := 0
	writeAgent := func() { // as the agent writes its summary
		version++
		h.patchStatus(&agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: agent}},
			map[string]any{"version": fmt.Sprintf("heartbeat-%d", version)})
	}
	for _, write := range []func(){writeTask, writeAgent} {
		// 60 s of the master's clock, past the 40 s agent timeout, with
		// a write every 10 s.
		for i := range 60 {
			if i%10 == 0 {
				write()
			}
			h.advance(time.Second)
		}
		if s := h.getTask("t").Status; s.State != agorav1.TaskRunning {
			t.Fatalf("task %s %s (%s) while its agent wrote status every 10 s", s.State, s.Reason, s.Message)
		}
	}
	h.advance(40*time.Second + 2*time.Second)
	h.expectTask("t", agorav1.TaskLost, agorav1.ReasonAgentRemoved)
}

// A new leader leaves an unreachable agent's Ready Unknown until it hears
// from the agent: the full timeout it gives every agent is no heartbeat.
func TestAgentReadyAcrossFailover(t *testing.T) {
	h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
	m1 := h.master(masterOpts{name: "m1"})
	h.framework("fw", nil)
	agent := h.agents.Names()[0]
	h.waitAgentReady(agent, metav1.ConditionTrue, "AgentRegistered")
	h.waitOffers("fw", 1)
	if err := h.agents.Pause(agent); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let the last renewal land
	h.advance(40*time.Second + 2*time.Second)
	h.waitAgentReady(agent, metav1.ConditionUnknown, controllers.ReasonAgentUnreachable)
	m1.stop()

	h.master(masterOpts{name: "m2"})
	// m2 gives the agent a full timeout: it offers the agent again, which
	// shows it has read the Agent and its Lease.
	h.eventually("m2 offers the agent", 20*time.Second, func() bool {
		h.clk.Step(250 * time.Millisecond) // its rounds, far from the agent timeout
		return len(outstanding(h.offers("fw"))) > 0
	})
	var a agorav1.Agent
	if err := h.c.Get(h.ctx, client.ObjectKey{Name: agent}, &a); err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(a.Status.Conditions, agorav1.AgentConditionReady); c == nil || c.Status != metav1.ConditionUnknown {
		t.Fatalf("Ready %+v after the takeover, before the agent was heard from: want Unknown", c)
	}
	if err := h.agents.Resume(agent); err != nil {
		t.Fatal(err)
	}
	h.waitAgentReady(agent, metav1.ConditionTrue, controllers.ReasonAgentReachable)
}
