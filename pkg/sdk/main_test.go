package sdk

import (
	"context"
	"testing"
	"time"

	"github.com/agora-sched/agora/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// connect registers a framework in a fresh namespace with a short Lease
// renewal, closing it when the test ends.
func connect(t *testing.T, ns, name string, mutate ...func(*Config)) *Driver {
	t.Helper()
	cfg := Config{RESTConfig: env.Config, Namespace: ns, Name: name, RenewInterval: 200 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	d, err := Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// eventually polls cond until it holds or the time runs out.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
