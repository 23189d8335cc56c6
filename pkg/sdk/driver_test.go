package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
)

func TestConnectRegistersAndRenewsLease(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-lease")
	d := connect(t, ns, "fw", func(c *Config) {
		c.Roles = []string{"analytics"}
		c.Capabilities = []agorav1.FrameworkCapability{agorav1.CapabilityPartitionAware}
		c.Identity = "sched-1"
	})
	var fw agorav1.Framework
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fw"}, &fw); err != nil {
		t.Fatal(err)
	}
	if len(fw.Spec.Roles) != 1 || fw.Spec.Roles[0] != "analytics" || len(fw.Spec.Capabilities) != 1 {
		t.Errorf("registered spec = %+v", fw.Spec)
	}
	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: d.LeaseName()}, &lease); err != nil {
		t.Fatalf("the Lease must exist once Connect returns: %v", err)
	}
	if *lease.Spec.HolderIdentity != "sched-1" || lease.OwnerReferences[0].UID != fw.UID {
		t.Errorf("lease holder %q owner %v", *lease.Spec.HolderIdentity, lease.OwnerReferences)
	}
	first := lease.Spec.RenewTime.Time
	eventually(t, "a Lease renewal", func() bool {
		var l coordinationv1.Lease
		return env.Client.Get(ctx, client.ObjectKeyFromObject(&lease), &l) == nil && l.Spec.RenewTime.After(first)
	})
	// After Close the renewals stop: the framework is away, its tasks stay.
	d.Close()
	_ = env.Client.Get(ctx, client.ObjectKeyFromObject(&lease), &lease)
	time.Sleep(500 * time.Millisecond)
	var after coordinationv1.Lease
	_ = env.Client.Get(ctx, client.ObjectKeyFromObject(&lease), &after)
	if after.ResourceVersion != lease.ResourceVersion {
		t.Error("the Lease was renewed after Close")
	}
}

func TestConnectAdoptsExistingFramework(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-adopt")
	fw := b.Framework(ns, "spark").Roles("eng").Obj()
	fw.Spec.LeaseName = "spark-lease"
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	task := b.Task(ns, "running-1", "spark").OfferRef("o", "uid-1", "node-1").Obj()
	if err := env.Client.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	d := connect(t, ns, "spark", func(c *Config) { c.Roles = []string{"other"} })
	got := d.Framework()
	if got.UID != fw.UID || got.Spec.Roles[0] != "eng" {
		t.Errorf("adopted framework uid %s roles %v; want the existing one unchanged", got.UID, got.Spec.Roles)
	}
	if d.LeaseName() != "spark-lease" {
		t.Errorf("lease name = %q, want spec.leaseName", d.LeaseName())
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(task), task); err != nil {
		t.Errorf("adopting must keep the framework's tasks: %v", err)
	}
	// A second scheduler process (failover) adopts it too and takes the Lease.
	d2 := connect(t, ns, "spark", func(c *Config) { c.Identity = "sched-2" })
	var lease coordinationv1.Lease
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: d2.LeaseName()}, &lease); err != nil {
		t.Fatal(err)
	}
	if *lease.Spec.HolderIdentity != "sched-2" || *lease.Spec.LeaseTransitions != 1 {
		t.Errorf("after failover holder=%q transitions=%d", *lease.Spec.HolderIdentity, *lease.Spec.LeaseTransitions)
	}
}

func TestConnectRefusesTornDownFramework(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-torn")
	fw := b.Framework(ns, "gone").Obj()
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	fw.Status.Phase = agorav1.FrameworkTornDown
	if err := env.Client.Status().Update(ctx, fw); err != nil {
		t.Fatal(err)
	}
	_, err := Connect(ctx, Config{RESTConfig: env.Config, Namespace: ns, Name: "gone"})
	if !errors.Is(err, ErrFrameworkTornDown) {
		t.Fatalf("err = %v, want ErrFrameworkTornDown", err)
	}
}

// recorder is a Handler that records what it is told.
type recorder struct {
	mu       sync.Mutex
	offers   []string
	rescinds []string
	updates  []string // task name + " " + state
}

func (r *recorder) OfferReceived(_ context.Context, _ *Driver, o *agorav1.Offer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offers = append(r.offers, o.Name)
}

func (r *recorder) OfferRescinded(_ context.Context, _ *Driver, o *agorav1.Offer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rescinds = append(r.rescinds, o.Name)
}

func (r *recorder) TaskUpdate(_ context.Context, _ *Driver, t *agorav1.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates = append(r.updates, t.Name+" "+string(t.Status.State))
}

func (r *recorder) snapshot() (offers, rescinds, updates []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.offers...), append([]string(nil), r.rescinds...), append([]string(nil), r.updates...)
}

func TestRunDeliversOffersRescindsAndTaskUpdates(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-events")
	d := connect(t, ns, "fw")
	// An offer and a task of another framework in the same namespace are
	// filtered out by the field selectors.
	other := b.Offer(ns, "foreign", "other-fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
	if err := env.Client.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx, rec) }()
	t.Cleanup(func() { cancel(); <-done })

	o1 := b.Offer(ns, "o1", "fw", "node-1").Resources(b.Res("2", "1Gi")).Obj()
	o2 := b.Offer(ns, "o2", "fw", "node-2").Resources(b.Res("2", "1Gi")).Obj()
	for _, o := range []*agorav1.Offer{o1, o2} {
		if err := env.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two offers", func() bool { o, _, _ := rec.snapshot(); return len(o) == 2 })

	// The master rescinds o1; o2 is declined by the framework, then settled
	// by the master, which must not look like a rescind.
	o1.Status.Phase = agorav1.OfferRescinded
	o1.Status.Reason = "agent lost"
	if err := env.Client.Status().Update(ctx, o1); err != nil {
		t.Fatal(err)
	}
	if err := d.Decline(ctx, o2, 30); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(o2), o2); err != nil {
		t.Fatal(err)
	}
	o2.Status.Phase = agorav1.OfferDeclined
	if err := env.Client.Status().Update(ctx, o2); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rescind", func() bool { _, r, _ := rec.snapshot(); return len(r) == 1 })

	task := b.Task(ns, "t1", "fw").OfferRef("o1", o1.UID, "node-1").Obj()
	if err := env.Client.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	for _, s := range []agorav1.TaskState{agorav1.TaskStaging, agorav1.TaskRunning, agorav1.TaskFinished} {
		task.Status.State = s
		if err := env.Client.Status().Update(ctx, task); err != nil {
			t.Fatal(err)
		}
		want := "t1 " + string(s)
		eventually(t, want, func() bool { _, _, u := rec.snapshot(); return len(u) > 0 && u[len(u)-1] == want })
	}
	if err := d.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reconciled state", func() bool { _, _, u := rec.snapshot(); return len(u) == 4 })

	offers, rescinds, updates := rec.snapshot()
	if offers[0] == "foreign" || offers[1] == "foreign" {
		t.Errorf("another framework's offer was delivered: %v", offers)
	}
	if len(rescinds) != 1 || rescinds[0] != "o1" {
		t.Errorf("rescinds = %v, want [o1] (an offer the framework answered is not rescinded)", rescinds)
	}
	want := []string{"t1 TASK_STAGING", "t1 TASK_RUNNING", "t1 TASK_FINISHED", "t1 TASK_FINISHED"}
	if len(updates) != len(want) {
		t.Fatalf("updates = %v, want %v", updates, want)
	}
	for i := range want {
		if updates[i] != want[i] {
			t.Errorf("updates = %v, want %v", updates, want)
			break
		}
	}
}

// TestRunRedeliversOutstandingOffersAfterRestart: a restarted scheduler gets
// the offers it had not answered yet, and the states of its tasks.
func TestRunRedeliversOutstandingOffersAfterRestart(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-restart")
	d := connect(t, ns, "fw")
	o := b.Offer(ns, "pending", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	task := b.Task(ns, "old", "fw").OfferRef("x", "uid-x", "node-1").Obj()
	if err := env.Client.Create(ctx, task); err != nil {
		t.Fatal(err)
	}
	task.Status.State = agorav1.TaskRunning
	if err := env.Client.Status().Update(ctx, task); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec) }()
	eventually(t, "the initial events", func() bool { o, _, u := rec.snapshot(); return len(o) == 1 && len(u) == 1 })
	d.Stop()
	if err := <-done; err != nil {
		t.Errorf("Run after Stop = %v, want nil", err)
	}
}

// TestRunEndsWhenTornDown: Run reports the framework's removal, as Mesos'
// driver calls error("Framework has been removed").
func TestRunEndsWhenTornDown(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-teardown")
	d := connect(t, ns, "fw")
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, HandlerFuncs{}) }()
	fw := d.Framework()
	fw.Status.Phase = agorav1.FrameworkTornDown
	eventually(t, "the status write", func() bool { return env.Client.Status().Update(ctx, fw) == nil })
	select {
	case err := <-done:
		if !errors.Is(err, ErrFrameworkTornDown) {
			t.Errorf("Run = %v, want ErrFrameworkTornDown", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the framework was torn down")
	}
}

// TestRunReturnsCancellation: Run returns the context's error when its
// context ends, also when the informers (stopped by that same context)
// are seen first. The handler cancels and waits in a callback, so that both
// have happened by the time Run selects again.
func TestRunReturnsCancellation(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-cancel")
	d := connect(t, ns, "fw")
	for i := range 8 {
		runCtx, cancel := context.WithCancel(ctx)
		offer := b.Offer(ns, fmt.Sprintf("o-%d", i), "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
		h := HandlerFuncs{Offer: func(context.Context, *Driver, *agorav1.Offer) {
			cancel()
			time.Sleep(300 * time.Millisecond) // the informers stop meanwhile
		}}
		done := make(chan error, 1)
		go func() { done <- d.Run(runCtx, h) }()
		if err := env.Client.Create(ctx, offer); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("pass %d: Run = %v, want context.Canceled", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("pass %d: Run did not return after its context was cancelled", i)
		}
		cancel()
	}
}
