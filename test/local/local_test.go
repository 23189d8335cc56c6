//go:build linux

// Package local runs Agora end to end on this host as separate processes:
// the local control plane (etcd, kube-apiserver, kube-controller-manager),
// the master binary, three real agents that run tasks in cgroups, and the
// two example frameworks. It checks DRF between the frameworks, an agent
// crash, and a master crash and restart, on the API objects.
package local

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/examples/service"
	"github.com/agora-sched/agora/internal/invariants"
	"github.com/agora-sched/agora/internal/testenv"
	"github.com/agora-sched/agora/pkg/install"
	"github.com/agora-sched/agora/pkg/localcluster"
	"github.com/agora-sched/agora/pkg/resources"
	"github.com/agora-sched/agora/pkg/sdk"
)

const (
	ns            = "e2e"
	agentNS       = "agora-system"
	serviceFW     = "web"
	batchFW       = "analytics"
	agentTimeout  = 6 * time.Second
	numAgents     = 3
	instances     = 8 // the service's K
	agentCapacity = "cpus:1;mem:1Gi"

	// Task shapes. Both have a dominant share of 1/12 of the three
	// agents (0.25 of 3 cpus; 256Mi of 3Gi), so DRF's fair split is an
	// equal count of tasks. An agent holds at most four tasks of any mix
	// (0.25s+0.1b <= 1 cpu and 200s+256b <= 1024Mi), and one holding fewer
	// has room for either shape: the cluster is twelve interchangeable
	// slots, DRF's answer is six each, and no fragmentation blurs it. K=8
	// keeps the service short of its demand while the batch competes
	// (it can only get six), and eight still fit on two agents (4 x 0.25
	// cpu) once the batch is done, so the agent-loss check can expect all
	// of them back.
	serviceCPU, serviceMem = "0.25", "200Mi"
	batchCPU, batchMem     = "0.1", "256Mi"
)

// batchCommands are repeated batchRepeat times: durations differ so tasks
// packed into one offer do not all end in the same allocation round.
var batchCommands = []string{"sleep 2", "sleep 3", "sleep 4"}

const batchRepeat = 32

// env is the running system and everything the teardown must undo.
type env struct {
	t        *testing.T
	work     string
	logDir   string
	bin      string
	cluster  *localcluster.Cluster
	c        client.WithWatch
	mu       sync.Mutex
	procs    []*proc // every process started, in start order
	agents   []agentDirs
	checker  *invariants.Checker
	rec      *recorder
	stopOnce sync.Once
}

func (e *env) start(name, bin string, args ...string) *proc {
	e.t.Helper()
	p, err := startProc(name, filepath.Join(e.bin, bin), e.logDir, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p
}

// teardown stops everything in dependency order: watchers, frameworks,
// masters, agents, then the tasks the agents leave running (by design
// they outlive their agent), the agents' cgroups, and the control plane.
func (e *env) teardown() {
	e.stopOnce.Do(func() {
		if e.checker != nil {
			e.checker.Stop()
		}
		if e.rec != nil {
			e.rec.stop()
		}
		e.mu.Lock()
		procs := slices.Clone(e.procs)
		e.mu.Unlock()
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].Terminate(10 * time.Second)
		}
		for _, a := range e.agents {
			n, err := killLeftoverTasks(a)
			if err != nil {
				e.t.Errorf("killing the tasks %s left: %v", a.name, err)
			}
			removed, busy, err := removeAgentCgroups(a.name)
			if err != nil {
				e.t.Errorf("cgroups of %s: %v", a.name, err)
			}
			if len(busy) > 0 {
				e.t.Errorf("cgroups of %s still hold processes after its tasks were killed: %v", a.name, busy)
			}
			rel := map[string]bool{}
			for _, d := range removed {
				if i := strings.Index(d, "/agora/"); i >= 0 {
					rel[d[i+1:]] = true
				}
			}
			e.t.Logf("teardown: %s: killed %d leftover task(s), removed %d empty cgroup dir(s): %v", a.name, n, len(removed), slices.Sorted(mapKeys(rel)))
		}
		if e.cluster != nil {
			if err := e.cluster.Stop(); err != nil {
				e.t.Errorf("control plane: %v", err)
			}
		}
		if e.t.Failed() {
			for _, p := range procs {
				e.t.Logf("--- last lines of %s ---\n%s", p.Name, p.tail(40))
			}
		}
		if os.Getenv("AGORA_LOCAL_TEST_KEEP") != "" {
			e.t.Logf("kept %s", e.work)
			return
		}
		_ = os.RemoveAll(e.work)
	})
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func TestLocalAgora(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skipf("skipping: real agents put tasks in cgroups and run them as their frameworks' uids, which needs root (running as uid %d)", os.Geteuid())
	}
	begin := time.Now()
	step := func(format string, args ...any) {
		t.Helper()
		t.Logf("[%5.1fs] "+format, append([]any{time.Since(begin).Seconds()}, args...)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	root := testenv.RepoRoot()

	work, err := os.MkdirTemp("", "agora-local-test-")
	if err != nil {
		t.Fatal(err)
	}
	// Sandboxes under it are handed to the frameworks' uids, which must
	// get through.
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, work: work, logDir: filepath.Join(work, "logs"), bin: filepath.Join(work, "bin")}
	t.Cleanup(e.teardown)
	for _, d := range []string{e.logDir, e.bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	buildBinaries(t, root, e.bin)
	step("built the binaries")
	k8sBins, err := localcluster.EnsureBins(ctx, root, tlogWriter{t}, "etcd", "kube-apiserver", "kube-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	if e.cluster, err = localcluster.Start(ctx, localcluster.Options{BinDir: k8sBins, DataDir: filepath.Join(work, "cluster"), Log: tlogWriter{t}}); err != nil {
		t.Fatal(err)
	}
	cfg := e.cluster.RESTConfig()
	if _, err := install.CRDs(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if e.c, err = client.NewWithWatch(cfg, client.Options{Scheme: testenv.Scheme()}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{agentNS, ns} {
		if err := ensureNamespace(ctx, e.c, n); err != nil {
			t.Fatal(err)
		}
	}
	step("control plane up, CRDs installed")

	// Watch everything from before the first process starts.
	if e.checker, err = invariants.Start(ctx, cfg, client.Options{Scheme: testenv.Scheme()}, nil); err != nil {
		t.Fatal(err)
	}
	if e.rec, err = startRecorder(ctx, e.c, ns); err != nil {
		t.Fatal(err)
	}

	kc := e.cluster.Kubeconfig()
	masterArgs := []string{"--kubeconfig", kc, "--agent-timeout", agentTimeout.String(), "--framework-timeout", "30s",
		"--allocation-interval", "1s", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--dashboard-bind-address", "0", "--leader-elect", "--leader-election-namespace", agentNS, "-v=1",
		// Agents offer their whole disk, which no task here asks for; see
		// TestExcludedFromShares in pkg/allocator.
		"--fair-sharing-excluded-resource-names", "disk"}
	master := e.start("master-1", "agora-master", masterArgs...)

	// Agent names are unique per run: cgroups are host-wide, and another
	// test or `agora local` may run agents on this host at the same time.
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	agentProcs := map[string]*proc{}
	for i := 1; i <= numAgents; i++ {
		a := agentDirs{name: fmt.Sprintf("e2e-%s-%d", suffix, i)}
		a.work = filepath.Join(work, "agents", a.name, "work")
		a.checkpoints = filepath.Join(work, "agents", a.name, "checkpoints")
		e.agents = append(e.agents, a)
		agentProcs[a.name] = e.start(a.name, "agora-agent", "--kubeconfig", kc, "--node-name", a.name,
			"--work-dir", a.work, "--checkpoint-dir", a.checkpoints,
			// Each framework runs as its own uid; agents sharing a host
			// (and not a checkpoint dir) need disjoint ranges, also apart
			// from those `agora local` uses (2000000000 on).
			"--task-uid-range", fmt.Sprintf("%d-%d", 2010000000+65536*(i-1), 2010000000+65536*i-1),
			"--resources", agentCapacity, "--ports", fmt.Sprintf("%d-%d", 31000+100*i, 31099+100*i),
			"--attributes", "host:"+a.name, "--renew-interval", "2s",
			// Agents sharing a host need their own log server ports.
			"--log-bind-address", "127.0.0.1:0")
	}
	poll(t, ctx, time.Minute, "three agents Ready", func() (bool, string) {
		var agents agorav1.AgentList
		if err := e.c.List(ctx, &agents); err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, a := range agents.Items {
			if meta.IsStatusConditionTrue(a.Status.Conditions, agorav1.AgentConditionReady) {
				ready++
			}
		}
		return ready == numAgents, fmt.Sprintf("%d ready", ready)
	})
	step("master and %d agents up", numAgents)

	batchArgs := []string{"--kubeconfig", kc, "--namespace", ns, "--framework", batchFW, "--cpus", batchCPU, "--mem", batchMem,
		"--repeat", strconv.Itoa(batchRepeat), "--keep"}
	batch := e.start("batch", "agora-batch", append(batchArgs, batchCommands...)...)
	e.start("service", "agora-service", "--kubeconfig", kc, "--namespace", ns, "--framework", serviceFW,
		"--instances", strconv.Itoa(instances), "--cpus", serviceCPU, "--mem", serviceMem, "--spread-by", "host",
		"while true; do sleep 1; done")
	step("frameworks %s (service, K=%d) and %s (batch, %d tasks) started", serviceFW, instances, batchFW, batchRepeat*len(batchCommands))

	// --- DRF -------------------------------------------------------------
	checkDRF(t, ctx, e, step, "first master", true)

	// --- master crash ------------------------------------------------------
	before := e.sample(ctx, t)
	if before.batchPending == 0 || before.batchLive == 0 {
		t.Fatalf("the batch ran out of work before the master was killed (%+v): raise batchRepeat", before)
	}
	holder := leaseHolder(ctx, e.c)
	liveService := e.liveServiceTasks(ctx, t)
	killed := time.Now()
	master.kill()
	step("master killed (SIGKILL) with %d batch tasks running and %d pending; leader was %s", before.batchLive, before.batchPending, holder)
	e.start("master-2", "agora-master", masterArgs...)
	poll(t, ctx, 45*time.Second, "a new master to take the leader Lease", func() (bool, string) {
		h := leaseHolder(ctx, e.c)
		return h != "" && h != holder, "holder " + h
	})
	step("new leader %s", leaseHolder(ctx, e.c))
	poll(t, ctx, 30*time.Second, "a batch task bound by the new master", func() (bool, string) {
		for _, r := range e.rec.snapshot() {
			if r.fw == batchFW && r.last.Status.BindTime != nil && r.last.Status.BindTime.After(killed.Add(time.Second)) {
				return true, ""
			}
		}
		return false, ""
	})
	step("allocation resumed under the new master")
	// The service may launch more (it wants K), but none of its instances
	// may have been lost or replaced.
	after := e.liveServiceTasks(ctx, t)
	for _, name := range liveService {
		if !slices.Contains(after, name) {
			t.Errorf("service instance %s did not survive the master restart: before %v, after %v", name, liveService, after)
		}
	}
	// The new leader finds the batch's slots freed all at once; DRF must
	// hand them back to the batch, not to the service.
	checkDRF(t, ctx, e, step, "restarted master", true)

	// --- the batch ends --------------------------------------------------
	select {
	case <-batch.Done():
	case <-time.After(2 * time.Minute):
		t.Fatal("the batch framework did not finish within 2 minutes")
	}
	if err := batch.WaitErr(); err != nil {
		t.Errorf("agora-batch exited with %v; its summary:\n%s", err, batch.tail(20))
	}
	e.checkBatch(t, ctx)
	step("the batch framework finished: every command ran once and ended TASK_FINISHED, exit 0")

	poll(t, ctx, 45*time.Second, fmt.Sprintf("all %d service instances running", instances), func() (bool, string) {
		n := len(e.runningService(ctx, t, ""))
		return n == instances, fmt.Sprintf("%d running", n)
	})
	e.checkSlots(t, ctx)
	step("service: %d/%d instances running on %d agents, one per slot", instances, instances, numAgents)

	// --- agent crash -------------------------------------------------------
	victim, onVictim := "", 0
	for _, a := range e.agents {
		if n := len(e.runningService(ctx, t, a.name)); n > onVictim {
			victim, onVictim = a.name, n
		}
	}
	lost := e.runningService(ctx, t, victim)
	killedAgent := time.Now()
	agentProcs[victim].kill()
	step("agent %s killed (SIGKILL) with %d service instances", victim, onVictim)
	bound := agentTimeout + 8*time.Second // the timeout, then a few allocation/check rounds
	poll(t, ctx, bound, "the killed agent's tasks to become TASK_LOST or TASK_UNREACHABLE", func() (bool, string) {
		var tasks agorav1.TaskList
		if err := e.c.List(ctx, &tasks, client.InNamespace(ns)); err != nil {
			return false, err.Error()
		}
		var pending []string
		for _, tk := range tasks.Items {
			if slices.Contains(lost, tk.Name) && tk.Status.State != agorav1.TaskLost && tk.Status.State != agorav1.TaskUnreachable {
				pending = append(pending, tk.Name+" "+string(tk.Status.State))
			}
		}
		return len(pending) == 0, strings.Join(pending, ", ")
	})
	step("the killed agent's %d tasks are lost, %.1fs after the kill (agent timeout %s)", len(lost), time.Since(killedAgent).Seconds(), agentTimeout)
	poll(t, ctx, 45*time.Second, fmt.Sprintf("%d service instances running again on the other agents", instances), func() (bool, string) {
		n := len(e.runningService(ctx, t, ""))
		return n == instances && len(e.runningService(ctx, t, victim)) == 0, fmt.Sprintf("%d running", n)
	})
	e.checkSlots(t, ctx)
	step("service relaunched: %d/%d running, none on %s, %.1fs after the kill", instances, instances, victim, time.Since(killedAgent).Seconds())

	// --- the whole run -------------------------------------------------
	e.checkHistory(t, victim)
	e.checker.Sync()
	if v := e.checker.Violations(); len(v) > 0 {
		t.Errorf("invariant violations over the run:\n%s", strings.Join(v, "\n"))
	} else {
		step("invariant checker: no violation over the run")
	}
}

// poll calls cond every 250 ms until it holds, failing after d.
func poll(t *testing.T, ctx context.Context, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out after %s waiting for %s (last: %s)", d, what, detail)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func leaseHolder(ctx context.Context, c client.Client) string {
	var l coordinationv1.Lease
	if err := c.Get(ctx, client.ObjectKey{Namespace: agentNS, Name: "agora-master"}, &l); err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

func live(s agorav1.TaskState) bool {
	switch s {
	case agorav1.TaskStaging, agorav1.TaskStarting, agorav1.TaskRunning, agorav1.TaskKilling:
		return true
	}
	return false
}

// listTasks lists the test namespace's Tasks.
func (e *env) listTasks(ctx context.Context, t *testing.T) *agorav1.TaskList {
	t.Helper()
	var tasks agorav1.TaskList
	if err := e.c.List(ctx, &tasks, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return &tasks
}

// runningService lists the service's TASK_RUNNING tasks (on agent, if set).
func (e *env) runningService(ctx context.Context, t *testing.T, agent string) []string {
	t.Helper()
	tasks := e.listTasks(ctx, t)
	var out []string
	for _, tk := range tasks.Items {
		if tk.Spec.FrameworkName == serviceFW && tk.Status.State == agorav1.TaskRunning && !tk.Spec.Kill &&
			(agent == "" || tk.Spec.AgentName == agent) {
			out = append(out, tk.Name)
		}
	}
	slices.Sort(out)
	return out
}

func (e *env) liveServiceTasks(ctx context.Context, t *testing.T) []string {
	t.Helper()
	tasks := e.listTasks(ctx, t)
	var out []string
	for _, tk := range tasks.Items {
		if tk.Spec.FrameworkName == serviceFW && live(tk.Status.State) {
			out = append(out, tk.Name)
		}
	}
	slices.Sort(out)
	return out
}

// sample is the allocation at one moment, computed from the objects.
type sample struct {
	serviceLive, batchLive int
	service, batch         float64 // dominant shares of the live tasks
	saturated              bool    // no agent has room for either shape
	batchPending           int     // commands the batch has not launched yet
	serviceStatus          string  // Framework.status.dominantShare
	batchStatus            string
	taskShare              float64 // one task's dominant share (both shapes)
}

func (s sample) String() string {
	return fmt.Sprintf("service %d tasks %.3f (status %s), batch %d tasks %.3f (status %s), pending %d, saturated %t",
		s.serviceLive, s.service, s.serviceStatus, s.batchLive, s.batch, s.batchStatus, s.batchPending, s.saturated)
}

// bothUnmet: each framework wants more than it has.
func (s sample) bothUnmet() bool { return s.serviceLive < instances && s.batchPending > 0 }

func dominantShare(a, total resources.Resources) float64 {
	s := 0.0
	for k := range a.Scalars {
		if total.Scalars[k] > 0 {
			s = max(s, float64(a.Scalars[k])/float64(total.Scalars[k]))
		}
	}
	return s
}

func (e *env) sample(ctx context.Context, t *testing.T) sample {
	t.Helper()
	var agents agorav1.AgentList
	var tasks agorav1.TaskList
	var fws agorav1.FrameworkList
	for _, l := range []client.ObjectList{&agents, &tasks, &fws} {
		var opts []client.ListOption
		if _, ok := l.(*agorav1.AgentList); !ok {
			opts = append(opts, client.InNamespace(ns))
		}
		if err := e.c.List(ctx, l, opts...); err != nil {
			t.Fatal(err)
		}
	}
	svcShape, batchShape := shape(serviceCPU, serviceMem), shape(batchCPU, batchMem)
	var total resources.Resources
	free := map[string]resources.Resources{}
	for _, a := range agents.Items {
		m := a.Status.Total.MustModel().ScalarsOnly()
		total = total.Add(m)
		free[a.Name] = m
	}
	var s sample
	var svc, bat resources.Resources
	launched := map[string]bool{}
	for _, tk := range tasks.Items {
		m := tk.Spec.Resources.MustModel().ScalarsOnly()
		if tk.Spec.FrameworkName == batchFW && !neverStarted(&tk) {
			launched[jobIndex(tk.Name)] = true
		}
		if !live(tk.Status.State) && tk.Status.State != agorav1.TaskLost && tk.Status.State != agorav1.TaskUnreachable {
			continue
		}
		if f, ok := free[tk.Spec.AgentName]; ok {
			free[tk.Spec.AgentName], _ = f.Subtract(m)
		}
		if !live(tk.Status.State) {
			continue
		}
		switch tk.Spec.FrameworkName {
		case serviceFW:
			s.serviceLive++
			svc = svc.Add(m)
		case batchFW:
			s.batchLive++
			bat = bat.Add(m)
		}
	}
	s.service, s.batch = dominantShare(svc, total), dominantShare(bat, total)
	s.taskShare = dominantShare(svcShape, total)
	s.saturated = true
	for _, f := range free {
		if f.Contains(svcShape) || f.Contains(batchShape) {
			s.saturated = false
		}
	}
	s.batchPending = batchRepeat*len(batchCommands) - len(launched)
	for _, f := range fws.Items {
		switch f.Name {
		case serviceFW:
			s.serviceStatus = f.Status.DominantShare
		case batchFW:
			s.batchStatus = f.Status.DominantShare
		}
	}
	return s
}

// checkDRF samples the allocation while both frameworks have unmet
// demand. The allocator offers an agent's free resources to the framework
// with the lower dominant share first, so the cluster fills to an even
// split (6/6 here): the test requires that within 90 s. It cannot require
// it at every later instant, for a reason of the design: a share counts
// offered-but-unanswered resources, and the leftover slice of a full agent
// (up to 0.3 cpu, a share of 0.1, more than one task's 1/12) is offered and
// declined over and over. If the framework one task behind holds such an
// offer when a slot frees, the other one gets the slot, and with no
// preemption the split stays at 7/5 until one of the ahead framework's
// tasks ends (the service's never do). So over a window the running shares
// must stay within two tasks' shares, and the status shares (which count
// the offers) must agree as closely at least once. Unless strict, not
// reaching the even split before the batch runs out is only reported.
func checkDRF(t *testing.T, ctx context.Context, e *env, step func(string, ...any), who string, strict bool) bool {
	t.Helper()
	var first sample
	lastLog := ""
	reached := false
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		first = e.sample(ctx, t)
		if s := first.String(); s != lastLog {
			t.Logf("  %s", s)
			lastLog = s
		}
		if first.saturated && first.bothUnmet() && math.Abs(first.service-first.batch) <= first.taskShare+1e-9 {
			reached = true
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil || (!strict && first.batchPending == 0) {
			break
		}
	}
	if !reached {
		if strict {
			t.Fatalf("DRF (%s): the cluster never filled with the shares within one task's share of each other (last: %s)", who, first)
		}
		return false
	}
	step("DRF reached (%s): %s", who, first)
	var samples, fair int
	maxDiff := 0.0
	statusOK := false
	end := time.Now().Add(10 * time.Second)
	for deadline := time.Now().Add(35 * time.Second); time.Now().Before(end) || (!statusOK && time.Now().Before(deadline)); {
		s := e.sample(ctx, t)
		if s.saturated && s.bothUnmet() {
			samples++
			d := math.Abs(s.service - s.batch)
			maxDiff = max(maxDiff, d)
			if d <= s.taskShare+1e-9 {
				fair++
			}
		}
		// The master writes shares at most every 10 s per framework, and
		// they count offered resources too (the leftover slices of full
		// agents are offered and declined all the time), so a write often
		// carries an offer: the two need only agree once in a while.
		if s.serviceStatus != "" && s.batchStatus != "" {
			ss, _ := strconv.ParseFloat(s.serviceStatus, 64)
			bs, _ := strconv.ParseFloat(s.batchStatus, 64)
			if math.Abs(ss-bs) <= 2*s.taskShare+0.0015 && ss > 0 && bs > 0 {
				statusOK = true
			}
		}
		if str := s.String(); str != lastLog {
			t.Logf("  %s", str)
			lastLog = str
		}
		time.Sleep(500 * time.Millisecond)
	}
	step("DRF window (%s): %d/%d full-cluster samples within one task's share, max difference %.3f; status shares agreed: %t", who, fair, samples, maxDiff, statusOK)
	if samples == 0 {
		t.Errorf("DRF (%s): no sample with a full cluster and unmet demand on both sides", who)
	} else if maxDiff > 2*first.taskShare+1e-9 {
		t.Errorf("DRF (%s): the running shares drifted %.3f apart, more than two tasks' shares (%.3f)", who, maxDiff, 2*first.taskShare)
	}
	if !statusOK {
		t.Errorf("DRF (%s): Framework.status.dominantShare of %s and %s never came within two tasks' shares of each other", who, serviceFW, batchFW)
	}
	return true
}

func shape(cpus, mem string) resources.Resources {
	r, err := sdk.ParseResources(cpus, mem)
	if err != nil {
		panic(err)
	}
	return r.MustModel()
}

// neverStarted: the master dropped the task because its offer was gone;
// the batch launches the command again.
func neverStarted(t *agorav1.Task) bool {
	return t.Status.State == agorav1.TaskDropped ||
		(t.Status.State == agorav1.TaskLost && t.Status.Reason == agorav1.ReasonInvalidOffers)
}

// jobIndex is the command index in a batch task's name,
// <framework>-<run>-<index>-<attempt>.
func jobIndex(name string) string {
	parts := strings.Split(name, "-")
	if len(parts) < 2 {
		return name
	}
	return parts[len(parts)-2]
}

// checkBatch: every command ran exactly once and finished with exit 0.
func (e *env) checkBatch(t *testing.T, ctx context.Context) {
	t.Helper()
	tasks := e.listTasks(ctx, t)
	ran := map[string][]string{}
	for _, tk := range tasks.Items {
		if tk.Spec.FrameworkName != batchFW {
			continue
		}
		if neverStarted(&tk) {
			t.Logf("batch task %s was dropped before it started (%s %s) and relaunched", tk.Name, tk.Status.State, tk.Status.Reason)
			continue
		}
		ran[jobIndex(tk.Name)] = append(ran[jobIndex(tk.Name)], tk.Name)
		if tk.Status.State != agorav1.TaskFinished || tk.Status.ExitCode == nil || *tk.Status.ExitCode != 0 {
			t.Errorf("batch task %s on %s ended %s %s (exit %v): %s", tk.Name, tk.Spec.AgentName, tk.Status.State, tk.Status.Reason, exitCode(tk.Status.ExitCode), tk.Status.Message)
		}
	}
	if n := batchRepeat * len(batchCommands); len(ran) != n {
		t.Errorf("%d batch commands ran, want %d", len(ran), n)
	}
	for i, names := range ran {
		if len(names) != 1 {
			t.Errorf("batch command %s ran as %d tasks: %v", i, len(names), names)
		}
	}
}

func exitCode(c *int32) string {
	if c == nil {
		return "none"
	}
	return strconv.Itoa(int(*c))
}

// checkSlots: each service instance slot has exactly one live task.
func (e *env) checkSlots(t *testing.T, ctx context.Context) {
	t.Helper()
	tasks := e.listTasks(ctx, t)
	slots := map[string][]string{}
	for _, tk := range tasks.Items {
		if tk.Spec.FrameworkName == serviceFW && live(tk.Status.State) {
			slots[tk.Labels[service.SlotLabel]] = append(slots[tk.Labels[service.SlotLabel]], tk.Name)
		}
	}
	for i := range instances {
		if names := slots[strconv.Itoa(i)]; len(names) != 1 {
			t.Errorf("service slot %d has %d live tasks: %v", i, len(names), names)
		}
	}
	if len(slots) != instances {
		t.Errorf("live service tasks fill slots %v, want 0..%d", slices.Sorted(mapKeys(slots)), instances-1)
	}
}

// checkHistory looks at every task the run created: none was bound or
// started twice, and none ended other than as expected (batch: FINISHED;
// service: only the killed agent's instances, LOST or UNREACHABLE).
func (e *env) checkHistory(t *testing.T, victim string) {
	t.Helper()
	recs := e.rec.snapshot()
	for _, g := range e.rec.gaps {
		t.Logf("recorder: %s", g)
	}
	lost := 0
	for _, r := range recs {
		if len(r.binds) > 1 {
			t.Errorf("task %s was bound %d times: %v", r.name, len(r.binds), r.binds)
		}
		if len(r.starts) > 1 {
			t.Errorf("task %s was started %d times: %v", r.name, len(r.starts), r.starts)
		}
		final := r.last.Status.State
		switch {
		case r.fw == batchFW && (final == agorav1.TaskFinished || neverStarted(r.last)):
		case r.fw == serviceFW && live(final):
		case r.fw == serviceFW && r.agent == victim && (final == agorav1.TaskLost || final == agorav1.TaskUnreachable):
			lost++
		default:
			t.Errorf("task %s (%s) on %s went %v (%s)", r.name, r.fw, r.agent, r.states, r.last.Status.Reason)
		}
	}
	t.Logf("%d tasks over the run, %d lost with the killed agent", len(recs), lost)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
