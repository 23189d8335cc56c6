package kubeconn

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"k8s.io/client-go/rest"
)

// connections counts the TCP connections an HTTP/2 TLS server accepts
// while two clients, built from two configs, each send it two requests.
func connections(t *testing.T, twoConfigs func(*rest.Config) (*rest.Config, *rest.Config)) int {
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			conns[c] = true
			mu.Unlock()
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	base := &rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	a, b := twoConfigs(base)
	for _, cfg := range []*rest.Config{a, b} {
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL+"/version", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 {
				t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
			}
			_ = resp.Body.Close()
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return len(conns)
}

// TestOwnConnection: client-go gives two copies of one config a single
// connection, and two configs from Own a connection each.
func TestOwnConnection(t *testing.T) {
	if n := connections(t, func(c *rest.Config) (*rest.Config, *rest.Config) {
		return rest.CopyConfig(c), rest.CopyConfig(c)
	}); n != 1 {
		t.Errorf("two copies of a config: %d connections, want 1 (client-go shares its transport)", n)
	}
	if n := connections(t, func(c *rest.Config) (*rest.Config, *rest.Config) {
		return Own(c), Own(c)
	}); n != 2 {
		t.Errorf("two configs from Own: %d connections, want 2", n)
	}
}
