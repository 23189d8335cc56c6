package controllers_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/controllers"
	"github.com/agora-sched/agora/internal/invariants"
	"github.com/agora-sched/agora/internal/testenv"
	"github.com/agora-sched/agora/pkg/resources"
)

var env *testenv.Env

const agentNS = "agora-system"

func TestMain(m *testing.M) {
	testenv.Main(m, &env)
}

var setupOnce sync.Once

func setup(e *testenv.Env) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: agentNS}}
	if err := e.Client.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// master is one running master in a test.
type master struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (m *master) stop() {
	m.cancel()
	<-m.done
}

type masterOpts struct {
	controllers.Options
	leaderElect bool
	name        string
	// wrap, if set, wraps the master's HTTP transport (to fail requests).
	wrap func(http.RoundTripper) http.RoundTripper
}

// startMaster runs a master with its own manager (and cache) on the fake clock.
func startMaster(t *testing.T, clk *clocktesting.FakeClock, o masterOpts) *master {
	t.Helper()
	o.Clock = clk
	o.AgentNamespace = agentNS
	if o.AllocationInterval == 0 {
		o.AllocationInterval = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	lease, renew, retry := 2*time.Second, 1500*time.Millisecond, 200*time.Millisecond
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = o.wrap
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                        env.Scheme,
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress:        "0",
		LeaderElection:                o.leaderElect,
		LeaderElectionID:              "agora-master-test",
		LeaderElectionNamespace:       agentNS,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &lease,
		RenewDeadline:                 &renew,
		RetryPeriod:                   &retry,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(true)},
		Logger:                        log.Log.WithName(o.name),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controllers.New(mgr, o.Options); err != nil {
		t.Fatal(err)
	}
	m := &master{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("master %s: %v", o.name, err)
		}
	}()
	return m
}

// harness holds one test's world: namespace, fake clock, agents, checker.
type harness struct {
	t       *testing.T
	ctx     context.Context
	c       client.Client
	ns      string
	clk     *clocktesting.FakeClock
	agents  *sim.Cluster
	prefix  string
	checker *invariants.Checker
	stops   []func()
	mu      sync.Mutex
}

func newHarness(t *testing.T, agents int, total string) *harness {
	t.Helper()
	setupOnce.Do(func() {
		if err := setup(env); err != nil {
			t.Fatal(err)
		}
	})
	h := &harness{t: t, ctx: context.Background(), c: env.Client, ns: env.Namespace(t, "agora"),
		clk: clocktesting.NewFakeClock(time.Now()), prefix: strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))}
	if len(h.prefix) > 40 {
		h.prefix = h.prefix[:40]
	}
	ch, err := invariants.Start(h.ctx, env.Config, client.Options{Scheme: env.Scheme}, func(msg string) { t.Errorf("%s", msg) })
	if err != nil {
		t.Fatal(err)
	}
	h.checker = ch
	if agents > 0 {
		cl, err := sim.Start(h.ctx, env.Config, sim.Options{
			Count: agents, NamePrefix: h.prefix, Total: resources.MustParse(total), Namespace: agentNS,
			RenewInterval: 100 * time.Millisecond, SummaryInterval: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		h.agents = cl
	}
	t.Cleanup(h.cleanup)
	return h
}

func (h *harness) cleanup() {
	for i := len(h.stops) - 1; i >= 0; i-- {
		h.stops[i]()
	}
	h.checker.Sync()
	h.checker.Stop()
	if h.agents != nil {
		h.agents.Stop()
	}
	ctx := context.Background()
	_ = h.c.DeleteAllOf(ctx, &agorav1.Task{}, client.InNamespace(h.ns))
	_ = h.c.DeleteAllOf(ctx, &agorav1.Offer{}, client.InNamespace(h.ns))
	_ = h.c.DeleteAllOf(ctx, &agorav1.Framework{}, client.InNamespace(h.ns))
	_ = h.c.DeleteAllOf(ctx, &agorav1.ResourceRole{})
	if h.agents != nil {
		for _, n := range h.agents.Names() {
			_ = h.c.Delete(ctx, &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: n}})
			_ = h.c.Delete(ctx, &agorav1.Assignment{ObjectMeta: metav1.ObjectMeta{Name: n}})
			_ = h.c.Delete(ctx, &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: agentNS, Name: n}})
		}
	}
}

func (h *harness) master(o masterOpts) *master {
	m := startMaster(h.t, h.clk, o)
	h.stops = append(h.stops, m.stop)
	return m
}

// advance moves the fake clock in 1 s steps, letting real time pass
// between steps so Lease renewals (real time) are seen at every step.
func (h *harness) advance(d time.Duration) {
	for d > 0 {
		s := min(d, time.Second)
		h.clk.Step(s)
		d -= s
		time.Sleep(40 * time.Millisecond)
	}
}

// framework creates a Framework and a Lease its "scheduler" renews.
func (h *harness) framework(name string, mutate func(*agorav1.Framework)) (stopRenew func()) {
	fw := &agorav1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name}}
	if mutate != nil {
		mutate(fw)
	}
	if err := h.c.Create(h.ctx, fw); err != nil {
		h.t.Fatal(err)
	}
	lease := &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
		Spec: coordv1.LeaseSpec{HolderIdentity: ptr.To(name), RenewTime: &metav1.MicroTime{Time: time.Now()}}}
	if err := h.c.Create(h.ctx, lease); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(150 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
				lease.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
				if err := h.c.Update(ctx, lease); err != nil {
					_ = h.c.Get(ctx, client.ObjectKeyFromObject(lease), lease)
				}
			}
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	h.stops = append(h.stops, stop)
	return stop
}

// eventually polls cond (real time) until it holds.
func (h *harness) eventually(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) offers(fw string) []agorav1.Offer {
	var l agorav1.OfferList
	if err := h.c.List(h.ctx, &l, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	var out []agorav1.Offer
	for _, o := range l.Items {
		if fw == "" || o.Spec.FrameworkName == fw {
			out = append(out, o)
		}
	}
	return out
}

func outstanding(os []agorav1.Offer) []agorav1.Offer {
	var out []agorav1.Offer
	for _, o := range os {
		if o.Status.Phase == "" && o.Spec.Answer == nil {
			out = append(out, o)
		}
	}
	return out
}

// waitOffers waits for at least n outstanding offers of fw.
func (h *harness) waitOffers(fw string, n int) []agorav1.Offer {
	h.t.Helper()
	var got []agorav1.Offer
	h.eventually(fmt.Sprintf("%d outstanding offers for %s", n, fw), 20*time.Second, func() bool {
		got = outstanding(h.offers(fw))
		return len(got) >= n
	})
	return got
}

func (h *harness) task(name, fw string, o *agorav1.Offer, cpus, mem string, mutate ...func(*agorav1.Task)) *agorav1.Task {
	sh := "sleep 3600"
	t := &agorav1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: h.ns, Name: name},
		Spec: agorav1.TaskSpec{
			FrameworkName: fw,
			OfferRef:      agorav1.OfferReference{Name: o.Name, UID: string(o.UID)},
			AgentName:     o.Spec.AgentName,
			Resources:     agorav1.Resources{CPUs: q(cpus), Mem: q(mem)},
			Command:       agorav1.CommandInfo{Shell: &sh},
		},
	}
	for _, m := range mutate {
		m(t)
	}
	return t
}

func (h *harness) create(t *agorav1.Task) {
	h.t.Helper()
	if err := h.c.Create(h.ctx, t); err != nil {
		h.t.Fatalf("creating task %s: %v", t.Name, err)
	}
}

func (h *harness) answer(o *agorav1.Offer, typ agorav1.OfferAnswerType, refuse int32) error {
	patch := client.MergeFrom(o.DeepCopy())
	o.Spec.Answer = &agorav1.OfferAnswer{Type: typ, RefuseSeconds: &refuse}
	return h.c.Patch(h.ctx, o, patch)
}

func (h *harness) getTask(name string) *agorav1.Task {
	t := &agorav1.Task{}
	if err := h.c.Get(h.ctx, client.ObjectKey{Namespace: h.ns, Name: name}, t); err != nil {
		h.t.Fatalf("getting task %s: %v", name, err)
	}
	return t
}

// waitTask waits until the task's state satisfies ok.
func (h *harness) waitTask(name string, ok func(agorav1.TaskStatus) bool) *agorav1.Task {
	h.t.Helper()
	var t *agorav1.Task
	deadline := time.Now().Add(20 * time.Second)
	for t = h.getTask(name); !ok(t.Status); t = h.getTask(name) {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for task %s; it is %s %s %s (bound %v)", name, t.Status.State, t.Status.Reason, t.Status.Message, t.Status.BindTime != nil)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return t
}

func stateIs(states ...agorav1.TaskState) func(agorav1.TaskStatus) bool {
	return func(s agorav1.TaskStatus) bool {
		for _, x := range states {
			if s.State == x {
				return true
			}
		}
		return false
	}
}

// expectTask waits until the task is in state or has left the states of a
// launched task, then checks state and reason. A task already running
// (one on an agent about to be judged lost) has not settled yet: the
// master's write may still be on its way.
func (h *harness) expectTask(name string, state agorav1.TaskState, reason string) {
	h.t.Helper()
	t := h.waitTask(name, func(s agorav1.TaskStatus) bool {
		return s.State == state || !stateIs("", agorav1.TaskStaging, agorav1.TaskStarting, agorav1.TaskRunning, agorav1.TaskKilling)(s)
	})
	if t.Status.State != state || (reason != "" && t.Status.Reason != reason) {
		h.t.Errorf("task %s: got %s %s (%s), want %s %s", name, t.Status.State, t.Status.Reason, t.Status.Message, state, reason)
	}
}

func q(s string) *resourceQuantity {
	if s == "" {
		return nil
	}
	v := mustQuantity(s)
	return &v
}

func init() {
	if os.Getenv("AGORA_TEST_VERBOSE") != "" {
		log.SetLogger(newTestLogger())
	} else {
		log.SetLogger(logr.Discard())
	}
}
