package agent_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/agora-sched/agora/agent"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

// TestRunReturnsRecoverError: Run returns the executor's Recover error
// promptly, and the Lease it created is no longer renewed.
func TestRunReturnsRecoverError(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	name := agentName("recerr")
	injected := errors.New("injected: checkpoint directory unreadable")
	ex := newFakeExec()
	ex.recoverErr = injected
	c, err := agent.NewClients(env.Config, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:2;mem:2Gi"),
		Executor: ex, Clients: c, RenewInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, injected) {
			t.Fatalf("Run = %v, want the Recover error %q", err, injected)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run has not returned 10s after Recover failed")
	}
	// Renewals stopped with Run: the master must see the agent go.
	rv := getLease(t, leaseNS, name).ResourceVersion
	time.Sleep(2500 * time.Millisecond) // over two renew intervals
	if getLease(t, leaseNS, name).ResourceVersion != rv {
		t.Error("the Lease is still renewed after Run returned")
	}
}

// TestRecoveredTaskCountsDespiteFailedReads: a recovered task whose Task
// cannot be read at first still holds its resources: a task bound beside
// it that does not fit is refused.
func TestRecoveredTaskCountsDespiteFailedReads(t *testing.T) {
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("recread")
	old := newTask(t, ns, "old", name, builders.Res("1500m", "32Mi"))
	bind(t, old)
	setStatus(t, old, func(s *agorav1.TaskStatus) {
		s.State, s.Source = agorav1.TaskRunning, agorav1.SourceExecutor
	})
	ex := newFakeExec()
	ex.recovered = []agent.RecoveredTask{{ID: string(old.UID), Name: ns + "/old", StartTime: time.Now()}}

	// The GETs of the recovered task's Task fail with 500 for 3 s.
	var armed atomic.Bool
	var hits atomic.Int32
	armed.Store(true)
	path := "/namespaces/" + ns + "/tasks/old"
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if armed.Load() && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, path) {
				hits.Add(1)
				return &http.Response{StatusCode: http.StatusInternalServerError, Status: "500 injected",
					Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
			}
			return rt.RoundTrip(r)
		})
	}
	c, err := agent.NewClients(cfg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(3*time.Second, func() { armed.Store(false) })
	_, _ = startAgent(t, agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:2;mem:2Gi"), Executor: ex, Clients: c})
	if hits.Load() == 0 {
		t.Fatal("no read of the recovered task failed: the test injected nothing")
	}
	// Another master binds a second 1.5-cpu task: 3 cpus on a 2-cpu agent.
	second := newTask(t, ns, "second", name, builders.Res("1500m", "32Mi"))
	bind(t, second)
	var got agorav1.Task
	eventually(t, 10*time.Second, "a state for the second task", func() bool {
		return env.Client.Get(context.Background(), keyOf(second), &got) == nil && got.Status.State != ""
	})
	if got.Status.State != agorav1.TaskFailed || got.Status.Reason != agorav1.ReasonInvalidOffers || ex.wasLaunched(string(second.UID)) {
		t.Errorf("second task: %s %s, launched %v: admitted beside a running 1.5-cpu task on a 2-cpu agent (%d failed reads)",
			got.Status.State, got.Status.Reason, ex.wasLaunched(string(second.UID)), hits.Load())
	}
}
