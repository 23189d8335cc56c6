package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/agora-sched/agora/agent/runtime"
	"github.com/agora-sched/agora/pkg/localcluster"
)

// TestLocalTaskUIDRanges: the agents of `agora local` share one kernel, so
// their uid ranges must not overlap.
func TestLocalTaskUIDRanges(t *testing.T) {
	var prev *runtime.IDRange
	for i := 1; i <= 16; i++ {
		r, err := runtime.ParseIDRange(localTaskUIDRange(i))
		if err != nil || r == nil {
			t.Fatalf("agent %d: %q: %v", i, localTaskUIDRange(i), err)
		}
		if r.Last-r.First+1 != 65536 || prev != nil && r.First <= prev.Last {
			t.Errorf("agent %d: range %s after %s; want 65536 uids each, disjoint", i, r, prev)
		}
		prev = r
	}
}

// TestWaitLocalReadyEndsWhenAComponentExits: agora local stops waiting for
// the agents as soon as a component dies, with that component's error, and
// otherwise gives up after the timeout naming where the logs are (it used
// to wait out two minutes and say "context deadline exceeded").
func TestWaitLocalReadyEndsWhenAComponentExits(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1"} // nothing listens: the agents never show up
	o := &localOptions{agents: 1}
	step := func(string, ...any) {}

	exited := make(chan error, 1)
	exited <- errors.New("local-agent-1 stopped: exit status 1: --log-bind-address: address already in use")
	start := time.Now()
	err := waitLocalReady(context.Background(), cfg, o, step, exited, "LOGS")
	if err == nil || !strings.Contains(err.Error(), "local-agent-1 stopped") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("a component exited: err = %v, want its error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s to notice the exit", d)
	}

	old := localReadyTimeout
	localReadyTimeout = 300 * time.Millisecond
	defer func() { localReadyTimeout = old }()
	err = waitLocalReady(context.Background(), cfg, o, step, make(chan error), "LOGS")
	if err == nil || !strings.Contains(err.Error(), "did not all register Ready within 300ms") || !strings.Contains(err.Error(), "LOGS") {
		t.Errorf("timeout: err = %v, want it to say so and name the log dir", err)
	}
}

// TestDemoExitDoesNotStopTheCluster: a demo framework that exits (its
// Framework was deleted) is reported and the rest keeps running; a master
// or agent that exits still ends agora local.
func TestDemoExitDoesNotStopTheCluster(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var logged []string
	lc := &localComponents{step: func(f string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, fmt.Sprintf(f, args...))
	}}
	defer lc.stop(func(string, ...any) {})
	start := func(name, script string, demo bool) {
		c, err := localcluster.StartChild(name, "/bin/sh", []string{"-c", script}, dir)
		if err != nil {
			t.Fatal(err)
		}
		lc.add(name, c, demo)
	}
	start("master", "sleep 30", false)
	start("demo-web", "exit 3", true)
	exited := lc.watch()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(logged)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	got := strings.Join(logged, "\n")
	mu.Unlock()
	if !strings.Contains(got, "demo-web exited; the cluster keeps running") {
		t.Errorf("the demo's exit was not reported: %q", got)
	}
	select {
	case err := <-exited:
		t.Fatalf("a demo framework's exit stopped the cluster: %v", err)
	case <-time.After(300 * time.Millisecond):
	}

	start("local-agent-1", "exit 1", false)
	select {
	case err := <-lc.watch():
		if !strings.Contains(err.Error(), "local-agent-1 stopped") {
			t.Errorf("err = %v, want the agent named", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an agent's exit did not end the cluster")
	}
}
