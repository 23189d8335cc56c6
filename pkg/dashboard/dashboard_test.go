package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/internal/testenv"
	"github.com/agora-sched/agora/pkg/dashboard"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	testenv.Main(m, &env)
}

// startDashboard runs a dashboard on its own manager cache (as a master
// replica would) on a free localhost port and returns its base URL.
func startDashboard(t *testing.T) (string, *dashboard.Dashboard) {
	t.Helper()
	mgr, err := manager.New(env.Config, manager.Options{
		Scheme:                 env.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 logr.Discard(),
	})
	if err != nil {
		t.Fatal(err)
	}
	d := dashboard.New(mgr.GetCache(), dashboard.Options{Addr: "127.0.0.1:0", SampleInterval: 200 * time.Millisecond})
	if err := mgr.Add(d); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	addr := d.Addr(wctx)
	if addr == nil {
		t.Fatal("the dashboard did not start listening")
	}
	return "http://" + addr.String(), d
}

// world is one test's objects: two frameworks, two agents, offers, tasks.
type world struct {
	ns, spark, web string // framework keys "namespace/name"
	a1, a2         string // agent names (cluster-scoped, so per test)
}

func makeWorld(t *testing.T) world {
	t.Helper()
	ctx := context.Background()
	c := env.Client
	ns := env.Namespace(t, "dash")
	w := world{ns: ns, spark: ns + "/spark", web: ns + "/web", a1: ns + "-a1", a2: ns + "-a2"}

	now := metav1.NewTime(time.Now().Truncate(time.Second))
	cond := func(typ string, ok bool) metav1.Condition {
		st := metav1.ConditionFalse
		if ok {
			st = metav1.ConditionTrue
		}
		return metav1.Condition{Type: typ, Status: st, Reason: "Test", Message: "set by the test", LastTransitionTime: now}
	}
	for _, a := range []struct {
		name          string
		ready, drain  bool
		allocatedCPUs string
	}{{w.a1, true, false, "1500m"}, {w.a2, false, true, "0"}} {
		obj := builders.Agent(a.name, builders.Res("4", "8Gi"))
		obj.Spec.Unschedulable = a.drain
		st := obj.Status
		must(t, c.Create(ctx, obj))
		obj.Status = st
		obj.Status.Allocated = builders.Res(a.allocatedCPUs, "1Gi")
		obj.Status.Tasks = 1
		obj.Status.Conditions = []metav1.Condition{cond(agorav1.AgentConditionReady, a.ready)}
		must(t, c.Status().Update(ctx, obj))
		t.Cleanup(func() { _ = c.Delete(context.Background(), obj) })
	}

	for _, f := range []struct {
		name, share string
	}{{"spark", "0.375"}, {"web", "0.125"}} {
		obj := builders.Framework(ns, f.name).Roles("*").Obj()
		must(t, c.Create(ctx, obj))
		obj.Status = agorav1.FrameworkStatus{Phase: agorav1.FrameworkActive, DominantShare: f.share,
			Shares:     []agorav1.RoleShare{{Role: "*", Share: f.share, Allocated: builders.Res("1500m", "2Gi")}},
			Conditions: []metav1.Condition{cond(agorav1.FrameworkConditionConnected, true)}}
		must(t, c.Status().Update(ctx, obj))
	}

	// web has two outstanding offers; spark's offer is answered.
	for _, o := range []*agorav1.Offer{
		builders.Offer(ns, "web-1", "web", w.a1).Resources(builders.Res("2", "4Gi")).Obj(),
		builders.Offer(ns, "web-2", "web", w.a2).Resources(builders.Res("1", "1Gi")).Obj(),
		builders.Offer(ns, "spark-1", "spark", w.a1).Resources(builders.Res("1", "1Gi")).Obj(),
	} {
		if o.Spec.FrameworkName == "spark" {
			o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferAccept}
		}
		must(t, c.Create(ctx, o))
	}

	for _, tk := range []struct {
		name, fw string
		state    agorav1.TaskState
		reason   string
		exit     *int32
	}{
		{"spark-run", "spark", agorav1.TaskRunning, "", nil},
		{"spark-oom", "spark", agorav1.TaskFailed, agorav1.ReasonContainerLimitationMemory, ptr.To[int32](137)},
		{"web-new", "web", "", "", nil},
	} {
		obj := builders.Task(ns, tk.name, tk.fw).OfferRef("offer-"+tk.name, "uid-1", w.a1).Obj()
		must(t, c.Create(ctx, obj))
		if tk.state == "" {
			continue
		}
		obj.Status = agorav1.TaskStatus{State: tk.state, Source: agorav1.SourceAgent, Reason: tk.reason, ExitCode: tk.exit,
			BindTime: &now, StartTime: &now}
		if tk.exit != nil {
			obj.Status.Message = "memory limit exceeded"
		}
		must(t, c.Status().Update(ctx, obj))
	}
	return w
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("GET %s: %v\n%s", url, err, body)
	}
}

// eventually retries check until it returns "" (the cache catches up with
// the writes asynchronously) and fails with its last complaint.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func findFramework(s *dashboard.State, key string) *dashboard.FrameworkView {
	for i := range s.Frameworks {
		if f := &s.Frameworks[i]; f.Namespace+"/"+f.Name == key {
			return f
		}
	}
	return nil
}

// stateReady reports what /api/state still lacks of w ("" when complete).
func stateReady(s *dashboard.State, w world) string {
	spark, web := findFramework(s, w.spark), findFramework(s, w.web)
	if spark == nil || web == nil || spark.TaskCounts["TASK_FAILED"] != 1 || web.OutstandingOffers != 2 || web.TaskCounts["UNBOUND"] != 1 {
		return fmt.Sprintf("frameworks not complete yet: %+v %+v", spark, web)
	}
	return ""
}

func TestStateAPI(t *testing.T) {
	base, _ := startDashboard(t)
	w := makeWorld(t)
	var s dashboard.State
	eventually(t, 30*time.Second, func() string {
		s = dashboard.State{}
		getJSON(t, base+"/api/state", &s)
		return stateReady(&s, w)
	})
	// A later snapshot reads the same (it may be served from the 1 s cache).

	spark, web := findFramework(&s, w.spark), findFramework(&s, w.web)
	if spark.DominantShare != 0.375 || spark.Phase != "Active" || !spark.Connected || spark.ActiveTasks != 1 ||
		spark.TaskCounts["TASK_RUNNING"] != 1 || spark.OutstandingOffers != 0 || spark.Allocated.CPUs != 1.5 {
		t.Errorf("spark: %+v", spark)
	}
	if web.DominantShare != 0.125 || web.ActiveTasks != 1 || len(web.Shares) != 1 || web.Shares[0].Role != "*" {
		t.Errorf("web: %+v", web)
	}
	si, wi := -1, -1
	for i, f := range s.Frameworks {
		switch f.Namespace + "/" + f.Name {
		case w.spark:
			si = i
		case w.web:
			wi = i
		}
	}
	if si > wi {
		t.Errorf("frameworks should be listed largest share first: %d, %d", si, wi)
	}

	agents := map[string]dashboard.AgentView{}
	for _, a := range s.Agents {
		agents[a.Name] = a
	}
	a1, a2 := agents[w.a1], agents[w.a2]
	if !a1.Ready || a1.Unschedulable || a1.Total.CPUs != 4 || a1.Total.Mem != 8<<30 || a1.Allocated.CPUs != 1.5 || a1.Tasks != 1 {
		t.Errorf("agent 1: %+v", a1)
	}
	if a2.Ready || !a2.Unschedulable {
		t.Errorf("agent 2: %+v", a2)
	}
	if s.Summary.Agents < 2 || s.Summary.ReadyAgents < 1 || s.Summary.Total.CPUs < 8 {
		t.Errorf("summary: %+v", s.Summary)
	}

	var offers, answered *dashboard.OfferGroup
	for i := range s.Offers {
		switch s.Offers[i].Framework {
		case w.web:
			offers = &s.Offers[i]
		case w.spark:
			answered = &s.Offers[i]
		}
	}
	if offers == nil || offers.Count != 2 || offers.Answered != 0 || offers.Agents != 2 || offers.Resources.CPUs != 3 || offers.Resources.Mem != 5<<30 {
		t.Errorf("web's offers: %+v", offers)
	}
	// spark's offer is answered but not settled (no master runs here).
	if answered == nil || answered.Count != 0 || answered.Answered != 1 || answered.Resources.CPUs != 0 || s.Summary.AnsweredOffers < 1 {
		t.Errorf("spark's answered offer: %+v (summary %+v)", answered, s.Summary)
	}

	var oom *dashboard.TaskRow
	for i := range s.Tasks.Recent {
		if r := &s.Tasks.Recent[i]; r.Namespace == w.ns && r.Name == "spark-oom" {
			oom = r
		}
	}
	if oom == nil || oom.State != "TASK_FAILED" || oom.Reason != agorav1.ReasonContainerLimitationMemory || oom.ExitCode == nil ||
		*oom.ExitCode != 137 || oom.Agent != w.a1 || oom.Framework != "spark" || oom.Resources.CPUs != 0.1 || oom.Resources.Mem != 32<<20 {
		t.Errorf("recent tasks lack spark-oom as written: %+v", oom)
	}
	if s.Tasks.ByState["TASK_RUNNING"] < 1 || s.Tasks.ByState["UNBOUND"] < 1 || s.Tasks.Total < 3 {
		t.Errorf("task counts: %+v", s.Tasks)
	}
}

func TestSharesAPI(t *testing.T) {
	base, _ := startDashboard(t)
	w := makeWorld(t)
	last := func(s dashboard.Series, name string) (float64, int, bool) {
		for _, f := range s.Frameworks {
			if f.Name == name {
				n := 0
				var v *float64
				for _, x := range f.Values {
					if x != nil {
						n, v = n+1, x
					}
				}
				if v == nil {
					return 0, n, false
				}
				return *v, n, true
			}
		}
		return 0, 0, false
	}
	eventually(t, 30*time.Second, func() string {
		var s dashboard.Series
		getJSON(t, base+"/api/shares", &s)
		if v, n, ok := last(s, w.spark); !ok || v != 0.375 || n < 2 {
			return fmt.Sprintf("no samples of spark's share 0.375 yet: %+v", s)
		}
		if len(s.Times) != len(s.Frameworks[0].Values) || s.IntervalSeconds != 0.2 {
			return fmt.Sprintf("series are not aligned with the sample times: %+v", s)
		}
		return ""
	})

	// The master writes a new share; the next samples carry it.
	var f agorav1.Framework
	must(t, env.Client.Get(context.Background(), client.ObjectKey{Namespace: w.ns, Name: "spark"}, &f))
	f.Status.DominantShare = "0.500"
	must(t, env.Client.Status().Update(context.Background(), &f))
	eventually(t, 30*time.Second, func() string {
		var s dashboard.Series
		getJSON(t, base+"/api/shares", &s)
		if v, _, _ := last(s, w.spark); v != 0.5 {
			return fmt.Sprintf("spark's latest sampled share is %v, want 0.5", v)
		}
		return ""
	})
}

// TestGuard: the dashboard answers only reads, only for localhost or IP
// Host headers (no DNS rebinding), and serves the embedded page.
func TestGuard(t *testing.T) {
	h := dashboard.New(nil, dashboard.Options{}).Handler()
	do := func(method, host, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "http://127.0.0.1:8082"+path, nil)
		r.Host = host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	for _, tc := range []struct {
		method, host, path string
		want               int
	}{
		{"GET", "localhost:8082", "/", 200},
		{"GET", "127.0.0.1:8082", "/app.js", 200},
		{"GET", "[::1]:8082", "/style.css", 200},
		{"GET", "10.0.0.7:8082", "/", 200},
		{"GET", "attacker.example:8082", "/", 403},
		{"GET", "attacker.example:8082", "/api/state", 403},
		{"POST", "localhost:8082", "/api/state", 405},
		{"DELETE", "localhost:8082", "/", 405},
		{"GET", "localhost:8082", "/nothing-here", 404},
	} {
		rec := do(tc.method, tc.host, tc.path)
		if rec.Code != tc.want {
			t.Errorf("%s %s (Host %s): %d, want %d: %s", tc.method, tc.path, tc.host, rec.Code, tc.want, rec.Body)
		}
	}
	rec := do("GET", "localhost:8082", "/")
	if body := rec.Body.String(); !strings.Contains(body, `<script src="app.js"`) || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Errorf("index: %s %q", rec.Header().Get("Content-Type"), body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if !dashboard.Enabled("127.0.0.1:8082") || dashboard.Enabled("") || dashboard.Enabled("0") {
		t.Error("Enabled: \"\" and \"0\" disable the dashboard, an address enables it")
	}
}
