// Package dashboard serves the master's read-only web dashboard (Mesos'
// web UI for Agora): frameworks and their dominant shares over time,
// agents, outstanding offers and tasks, from the manager's informer cache.
//
// It runs on every master replica, leader or not: it reads only the shared
// cache, so a standby shows the same data and the dashboard never adds a
// request to the apiserver beyond the watches. It shows every tenant, so it
// listens on localhost by default and is reached with kubectl port-forward
// (see docs/dashboard.md).
package dashboard

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

//go:embed static
var staticFiles embed.FS

// Defaults.
const (
	DefaultSampleInterval = 5 * time.Second
	DefaultHistory        = time.Hour
	// DefaultRecentTasks is how many recently changed tasks /api/state lists.
	DefaultRecentTasks = 50
	// DefaultSeries is how many frameworks /api/shares returns (the largest).
	DefaultSeries = 10
	// snapshotTTL: /api/state is computed at most this often, however many
	// browsers poll, so open dashboards cost the master little.
	snapshotTTL = time.Second
)

// Options configure a Dashboard. Zero values take the defaults.
type Options struct {
	// Addr is the listen address, e.g. "127.0.0.1:8082".
	Addr string
	// SampleInterval between share samples; History is how long they are kept.
	SampleInterval time.Duration
	History        time.Duration
	// RecentTasks and Series bound the API's lists.
	RecentTasks int
	Series      int
	Log         logr.Logger
}

// Enabled reports whether a --dashboard-bind-address value asks for a
// dashboard ("" and "0" disable it, as for controller-runtime's servers).
func Enabled(addr string) bool { return addr != "" && addr != "0" }

// Dashboard is a manager Runnable serving the dashboard on Options.Addr.
type Dashboard struct {
	opts    Options
	cache   cache.Cache
	history *history

	mu       sync.Mutex
	snapAt   time.Time
	snapBody []byte

	listening chan struct{}
	addr      net.Addr
}

// New makes a dashboard reading c (the manager's cache); add it to the
// manager with mgr.Add.
func New(c cache.Cache, opts Options) *Dashboard {
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = DefaultSampleInterval
	}
	if opts.History <= 0 {
		opts.History = DefaultHistory
	}
	if opts.RecentTasks <= 0 {
		opts.RecentTasks = DefaultRecentTasks
	}
	if opts.Series <= 0 {
		opts.Series = DefaultSeries
	}
	n := int(opts.History / opts.SampleInterval)
	return &Dashboard{opts: opts, cache: c, history: newHistory(max(n, 2)), listening: make(chan struct{})}
}

// NeedLeaderElection is false: every replica serves the dashboard.
func (d *Dashboard) NeedLeaderElection() bool { return false }

// Addr returns the address the dashboard listens on once it does (tests
// bind port 0), or nil if ctx ends first.
func (d *Dashboard) Addr(ctx context.Context) net.Addr {
	select {
	case <-d.listening:
		return d.addr
	case <-ctx.Done():
		return nil
	}
}

// Start serves until ctx ends. A dashboard that cannot listen logs the
// error and gives up rather than failing the manager: a read-only view is
// not worth stopping the scheduler for.
func (d *Dashboard) Start(ctx context.Context) error {
	log := d.opts.Log
	ln, err := net.Listen("tcp", d.opts.Addr)
	if err != nil {
		log.Error(err, "the dashboard is disabled: cannot listen", "address", d.opts.Addr)
		return nil
	}
	d.addr = ln.Addr()
	close(d.listening)
	srv := &http.Server{
		Handler:           d.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	go d.sample(ctx)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving the dashboard", "address", d.addr.String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error(err, "the dashboard stopped")
	}
	return nil
}

// sample records every framework's dominant share each SampleInterval.
// It also starts the informers up front, so the first page load on a
// standby does not wait for the Task list.
func (d *Dashboard) sample(ctx context.Context) {
	for _, obj := range []client.Object{&agorav1.Framework{}, &agorav1.Agent{}, &agorav1.Offer{}, &agorav1.Task{}, &agorav1.ResourceRole{}} {
		if _, err := d.cache.GetInformer(ctx, obj); err != nil {
			if ctx.Err() == nil {
				d.opts.Log.Error(err, "starting an informer for the dashboard", "kind", obj.GetObjectKind())
			}
			return
		}
	}
	t := time.NewTicker(d.opts.SampleInterval)
	defer t.Stop()
	for {
		d.takeSample(ctx, time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *Dashboard) takeSample(ctx context.Context, now time.Time) {
	var fws agorav1.FrameworkList
	if err := d.cache.List(ctx, &fws, client.UnsafeDisableDeepCopy); err != nil {
		return
	}
	shares := make(map[string]float64, len(fws.Items))
	for i := range fws.Items {
		f := &fws.Items[i]
		shares[f.Namespace+"/"+f.Name] = parseShare(f.Status.DominantShare)
	}
	d.history.add(now, shares)
}

// Handler serves the static page and the JSON API.
func (d *Dashboard) Handler() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/state", d.serveState)
	mux.HandleFunc("GET /api/shares", d.serveShares)
	return guard(mux)
}

// guard refuses anything but reads, and Host names other than localhost or
// an IP address: with kubectl port-forward (or kubectl proxy) the dashboard
// is on the admin's localhost, where any web page could otherwise read it
// through DNS rebinding.
func guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the dashboard is read-only", http.StatusMethodNotAllowed)
			return
		}
		if !allowedHost(r.Host) {
			http.Error(w, "unexpected Host header: reach the dashboard on localhost or an IP address", http.StatusForbidden)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func allowedHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host == "localhost" || net.ParseIP(host) != nil
}
