package sim

import (
	"testing"

	"k8s.io/client-go/rest"
)

// TestClientsShareOneLimiter: agents spread over connections still share
// one client-side rate limiter, so Options.QPS bounds the whole process.
func TestClientsShareOneLimiter(t *testing.T) {
	cfg := &rest.Config{Host: "https://127.0.0.1:1", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	cs, err := newClients(cfg, Options{Count: 5, Connections: 3, QPS: 10, Burst: 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 3 {
		t.Fatalf("%d clients, want 3", len(cs))
	}
	limiter := cs[0].Agora.GetRateLimiter()
	if limiter == nil || limiter.QPS() != 10 {
		t.Fatalf("rate limiter %v, want one of 10 QPS", limiter)
	}
	httpClients := map[any]bool{}
	for i, c := range cs {
		if c.Agora.GetRateLimiter() != limiter || c.Kube.CoordinationV1().RESTClient().GetRateLimiter() != limiter {
			t.Errorf("client %d has a rate limiter of its own", i)
		}
		httpClients[c.Agora.(*rest.RESTClient).Client] = true
	}
	if len(httpClients) != 3 {
		t.Errorf("%d HTTP clients among 3 connections, want 3", len(httpClients))
	}
	if cs, err := newClients(cfg, Options{Count: 2, Connections: 3, QPS: 10, Burst: 20}); err != nil || len(cs) != 2 {
		t.Errorf("2 agents on 3 connections: %d clients (%v), want 2: no more connections than agents", len(cs), err)
	}
}
