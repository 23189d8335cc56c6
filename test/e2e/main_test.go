// Package e2e runs Agora's frameworks against the real pieces: a
// kube-apiserver with etcd (envtest), the master in-process and simulated
// agents (the real agent core with timer-driven tasks).
package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/agora-sched/agora/agent/sim"
	"github.com/agora-sched/agora/controllers"
	"github.com/agora-sched/agora/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	e, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env = e
	code := m.Run()
	if stopCluster != nil {
		stopCluster()
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

var (
	clusterOnce sync.Once
	agents      *sim.Cluster
	clusterErr  error
	stopCluster func()
)

// cluster starts the master and three simulated agents once for all tests;
// they run until the test binary ends.
func cluster(t *testing.T) *sim.Cluster {
	t.Helper()
	clusterOnce.Do(func() { agents, stopCluster, clusterErr = startCluster(3) })
	if clusterErr != nil {
		t.Fatal(clusterErr)
	}
	return agents
}

// Timeouts short enough for a test: an agent paused for 3 s is unreachable.
const (
	agentRenew   = 500 * time.Millisecond
	agentTimeout = 3 * time.Second
)

// startCluster runs the master and n simulated agents until stop is called.
func startCluster(n int) (*sim.Cluster, func(), error) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: controllers.DefaultAgentNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		cancel()
		return nil, nil, err
	}
	mgr, err := manager.New(env.Config, manager.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if _, err := controllers.New(mgr, controllers.Options{
		AllocationInterval: 200 * time.Millisecond,
		AgentTimeout:       agentTimeout,
		FrameworkTimeout:   10 * time.Second,
		AgentRemovalRate:   100,
	}); err != nil {
		cancel()
		return nil, nil, err
	}
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(ctx) }()
	c, err := sim.Start(ctx, env.Config, sim.Options{Count: n, Namespace: controllers.DefaultAgentNamespace,
		RenewInterval: agentRenew, SummaryInterval: time.Second})
	if err != nil {
		cancel()
		<-mgrDone
		return nil, nil, err
	}
	stop := func() {
		c.Stop()
		cancel()
		if err := <-mgrDone; err != nil {
			fmt.Fprintln(os.Stderr, "master:", err)
		}
	}
	return c, stop, nil
}

// eventually polls cond every 100 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
