package runtime

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestCommandHealthCheck: a command check reports healthy, then unhealthy
// when it starts failing, and the task is killed after the configured
// consecutive failures with the health-check reason.
func TestCommandHealthCheck(t *testing.T) {
	e := newTestEnv(t)
	rt, ev := e.runtime("node-a")
	info := launch(t, rt, TaskSpec{ID: "svc", Name: "svc", Command: Command{Shell: "exec sleep 30"}, User: "nobody",
		KillGracePeriod: 200 * time.Millisecond,
		HealthCheck: &HealthCheck{
			// Runs in the sandbox, as the task's user.
			Command:  &Command{Shell: `test ! -e sick && test "$(id -u)" = 65534`},
			Interval: 100 * time.Millisecond, Timeout: 2 * time.Second, ConsecutiveFailures: 3,
		}})
	if h := ev.wait(t, "svc", EventHealth, 5*time.Second); !h.Healthy {
		t.Fatalf("first health event: %+v", h)
	}
	if err := os.WriteFile(filepath.Join(info.Sandbox, "sick"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ex := ev.wait(t, "svc", EventExited, 10*time.Second).Exit
	if ex.Reason != ReasonHealthCheck || !ex.Killed {
		t.Errorf("exit = %+v, want killed for failing health checks", *ex)
	}
	var healthy []bool
	ev.mu.Lock()
	for _, e := range ev.events {
		if e.Type == EventHealth {
			healthy = append(healthy, e.Healthy)
		}
	}
	ev.mu.Unlock()
	if len(healthy) != 2 || !healthy[0] || healthy[1] {
		t.Errorf("health changes = %v, want [true false]", healthy)
	}
}

// TestProbes exercises the HTTP and TCP probes against local servers.
func TestProbes(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	r := &Runtime{}
	tk := &task{}
	ctx := context.Background()
	httpCheck := &HealthCheck{HTTP: &HTTPCheck{Port: uint32(port), Path: "/health"}, Timeout: time.Second}
	if err := r.probe(ctx, tk, httpCheck); err != nil {
		t.Errorf("http 200: %v", err)
	}
	status = http.StatusServiceUnavailable
	if err := r.probe(ctx, tk, httpCheck); err == nil {
		t.Error("http 503 counted as healthy")
	}
	if err := r.probe(ctx, tk, &HealthCheck{TCP: &TCPCheck{Port: uint32(port)}, Timeout: time.Second}); err != nil {
		t.Errorf("tcp to a listener: %v", err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := r.probe(ctx, tk, &HealthCheck{TCP: &TCPCheck{Port: uint32(closedPort)}, Timeout: time.Second}); err == nil {
		t.Error("tcp to a closed port counted as healthy")
	}
}
