package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/install"
	"github.com/agora-sched/agora/pkg/localcluster"
	"github.com/agora-sched/agora/pkg/sdk"
)

const agentNamespace = "agora-system"

// runOnce starts a fresh control plane in dir, runs the Agora phase and
// then the references on the same apiserver.
func runOnce(ctx context.Context, c *config, root, binDir, dir string) (*result, error) {
	bins, err := localcluster.EnsureBins(ctx, root, os.Stderr, localcluster.DefaultBins...)
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	var extra []string
	if c.profileFor > 0 {
		extra = append(extra, "--profiling=true") // for apiserver.cpu.pprof
	}
	extra = append(extra, c.apiserverFlags...)
	cl, err := localcluster.Start(ctx, localcluster.Options{BinDir: bins, DataDir: filepath.Join(dir, "cluster"),
		WithScheduler: true, Log: os.Stderr, ExtraAPIServerFlags: extra})
	if err != nil {
		return nil, err
	}
	defer func() {
		_ = cl.Stop()
		if !c.keep {
			_ = os.RemoveAll(filepath.Join(dir, "cluster", "etcd"))
		}
	}()
	cfg := cl.RESTConfig()
	cfg.QPS = -1 // no client-side limit: the apiserver is what is measured
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	scheme := sdk.Scheme()
	_ = corev1.AddToScheme(scheme)
	cc, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	if _, err := install.CRDs(ctx, cfg); err != nil {
		return nil, err
	}
	nss := []string{agentNamespace, "bench-ceiling", "bench-pods"}
	for i := range c.frameworks {
		nss = append(nss, fmt.Sprintf("bench-fw-%d", i))
	}
	for _, ns := range nss {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, err
		}
	}

	r := newResult()
	if err := agoraPhase(ctx, c, cfg, cs, cc, cl.Kubeconfig(), binDir, dir, r); err != nil {
		return nil, err
	}
	if c.skipRefs {
		return r, nil
	}
	logf("ceiling: raw creates with %d goroutines, %s each", c.concurrency, c.ceilingFor)
	procs := controlPlanePids(filepath.Join(dir, "cluster"))
	for _, cr := range measureCeiling(ctx, cs, cc, "bench-ceiling", c.concurrency, c.ceilingFor, procs) {
		if cr.err != nil {
			r.notes = append(r.notes, fmt.Sprintf("ceiling %s: some creates failed: %v", cr.kind, cr.err))
		}
		r.set("ceiling."+cr.kind, cr.rate())
		for name, v := range cr.cores {
			r.set("ceilcpu."+cr.kind+"."+name, v)
		}
	}
	pods := c.refPods
	if pods == 0 {
		perNode := int(min(8000/c.cpu.MilliValue(), (16<<30)/c.mem.Value(), 110))
		pods = min(c.tasks, c.agents*perNode/2)
	}
	logf("kube-scheduler: %d fake nodes, %d pods", c.agents, pods)
	cpu0, t0 := cpuOf(procs), time.Now()
	sr := measureScheduler(ctx, cs, c.agents, pods, c.concurrency, c.cpu, c.mem, c.leaseRenew)
	for name, v := range coresSince(procs, cpu0, time.Since(t0)) {
		r.set("schedcpu."+name, v)
	}
	if sr.err != nil {
		r.notes = append(r.notes, "kube-scheduler reference: "+sr.err.Error())
	}
	r.set("sched.pods", float64(sr.bound))
	r.set("sched.bound_per_s", sr.rate())
	r.set("sched.c2b_p50_ms", ms(sr.createdToBound.pct(50)))
	r.set("sched.c2b_p99_ms", ms(sr.createdToBound.pct(99)))
	if sr.bound > 0 {
		r.set("sched.writes_per_pod", sr.writes.total()/float64(sr.bound))
		for k, v := range sr.writes.split() {
			r.set("sched.writes_per_pod."+k, v/float64(sr.bound))
		}
	}
	r.derive()
	return r, nil
}

// agoraPhase runs the agents, the master and the frameworks until every
// task finished (or the timeout), and records what it measured in r.
func agoraPhase(ctx context.Context, c *config, cfg *rest.Config, cs kubernetes.Interface, cc client.Client, kubeconfig, binDir, dir string, r *result) error {
	logDir := filepath.Join(dir, "logs")
	logf("starting %d simulated agents", c.agents)
	agentsStart := time.Now()
	agents, err := startChild("agents", filepath.Join(binDir, "agora-agent"), []string{
		"--kubeconfig", kubeconfig, "--node-name", "sim", "--namespace", agentNamespace,
		"--simulate", strconv.Itoa(c.agents), "--renew-interval", c.leaseRenew.String(),
		"--sim-connections", strconv.Itoa(simConnections(c)),
	}, nil, logDir)
	if err != nil {
		return err
	}
	defer agents.Terminate(30 * time.Second)
	if err := waitAgents(ctx, cs, c.agents, agents); err != nil {
		return err
	}
	r.set("agents.start_s", time.Since(agentsStart).Seconds())
	if st, err := readProc(agents.Pid()); err == nil {
		r.set("agents.rss_kib_per_agent", float64(st.rssBytes)/1024/float64(c.agents))
	}
	var real *localcluster.Proc
	if c.realAgent {
		var note string
		if real, note, err = startRealAgent(ctx, cs, c, kubeconfig, binDir, dir); err != nil {
			return err
		}
		if real != nil {
			defer real.Terminate(30 * time.Second)
			if st, err := readProc(real.Pid()); err == nil {
				r.set("agents.real_rss_kib", float64(st.rssBytes)/1024)
			}
		}
		if note != "" {
			r.notes = append(r.notes, note)
		}
	}

	// After the agents: their first lists are then cheap, where 10,000 lists
	// of 100,000 Tasks would hold the apiserver for minutes.
	if err := preloadFinished(ctx, cc, c, c.preload); err != nil {
		return err
	}
	if c.preload > 0 {
		r.set("agora.preloaded", float64(c.preload))
	}

	pprofAddr, err := freeAddr()
	if err != nil {
		return err
	}

	metricsAddr, err := freeAddr()
	if err != nil {
		return err
	}
	master, err := startChild("master", filepath.Join(binDir, "agora-master"), append([]string{
		"--kubeconfig", kubeconfig, "--metrics-bind-address", metricsAddr, "--health-probe-bind-address", "0", "--dashboard-bind-address", "0",
		"--pprof-bind-address", pprofAddr,
		"--allocation-interval", c.allocInterval.String(), "--agent-timeout", max(40*time.Second, 4*c.leaseRenew).String(),
	}, c.masterFlags...), nil, logDir)
	if err != nil {
		return err
	}
	defer master.Terminate(30 * time.Second)
	if err := waitHTTP(ctx, "http://"+pprofAddr+"/debug/pprof/", master); err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var fwsP atomic.Pointer[frameworks] // set once the frameworks run
	obs := newObserver(c.tasks, func() bool { f := fwsP.Load(); return f != nil && f.wanting() })
	if err := obs.start(runCtx, cfg); err != nil {
		return err
	}
	sampler := &writeSampler{}
	go sampler.run(runCtx, cs, samplePeriod)
	before, err := scrapeWrites(ctx, cs)
	if err != nil {
		return err
	}
	m0, err := readProc(master.Pid())
	if err != nil {
		return err
	}
	procs := controlPlanePids(filepath.Join(dir, "cluster"))
	procs["agora-master"], procs["agora-agent (sim)"], procs["bench (frameworks, observer)"] = master.Pid(), agents.Pid(), os.Getpid()
	cpu0 := cpuOf(procs)
	lat0 := scrapeLatency(ctx, cs)
	logf("agora: %d frameworks launching %d tasks of %s cpus, %s mem, %s each", c.frameworks, c.tasks, c.taskCPUs, c.taskMem, c.taskDuration)
	t0 := time.Now()
	fws, err := startFrameworks(runCtx, cfg, c.frameworks, c.tasks, c.concurrency, agorav1.Resources{CPUs: &c.cpu, Mem: &c.mem}, c.taskDuration, c.ack)
	if err != nil {
		return err
	}
	fwsP.Store(fws)
	defer fws.stop()
	profDone := make(chan string, 1)
	go func() { profDone <- profileMaster(runCtx, pprofAddr, c.profileFor, binDir, dir) }()
	go profileAPIServer(runCtx, cs, c.profileFor, dir)

	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()
	deadline := time.After(c.timeout)
wait:
	for {
		select {
		case <-obs.allFinished:
			break wait
		case <-deadline:
			r.notes = append(r.notes, fmt.Sprintf("the Agora phase timed out after %s", c.timeout))
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case <-master.Done():
			return fmt.Errorf("agora-master exited: %v (log: %s)", master.WaitErr(), master.LogPath)
		case <-agents.Done():
			return fmt.Errorf("agora-agent exited: %v (log: %s)", agents.WaitErr(), agents.LogPath)
		case <-progress.C:
			k := obs.counts()
			logf("agora: %s: %d bound, %d running seen, %d finished", time.Since(t0).Round(time.Second), k.bound, k.running, k.finished)
		}
	}
	tEnd := time.Now()
	after, err := scrapeWrites(ctx, cs)
	if err != nil {
		return err
	}
	m1, err := readProc(master.Pid())
	if err != nil {
		return err
	}
	if st, err := readProc(agents.Pid()); err == nil {
		r.set("agents.peak_rss_kib_per_agent", float64(st.hwmBytes)/1024/float64(c.agents))
	}
	if real != nil {
		if st, err := readProc(real.Pid()); err == nil {
			r.set("agents.real_peak_rss_kib", float64(st.hwmBytes)/1024)
		}
	}
	saveHeap(ctx, pprofAddr, dir)
	r.masterWaits = masterWriteWaits(ctx, metricsAddr, dir)
	r.serverLatency = scrapeLatency(ctx, cs).summary(lat0)
	for name, v := range coresSince(procs, cpu0, tEnd.Sub(t0)) {
		r.set("cpu."+name, v)
	}
	k := obs.counts()
	// Most acknowledgements (Task deletes) land after the last task
	// finished; the per-task writes count them too.
	var ackWrites float64
	if c.ack {
		if !fws.waitAcks(ctx, k.ended, time.Minute) {
			r.notes = append(r.notes, "not every ended task was acknowledged within a minute of the phase: the writes per task miss some deletes")
		}
		if acked, err := scrapeWrites(ctx, cs); err == nil {
			ackWrites = acked.sub(after)["tasks"]
		}
	}
	cancel()
	r.profileTop = <-profDone

	r.set("agora.finished", float64(k.finished))
	if real != nil {
		r.set("agents.real_finished", float64(k.onReal))
	}
	r.set("agora.elapsed_s", tEnd.Sub(t0).Seconds())
	if !k.lastBound.IsZero() {
		r.set("agora.bound_per_s", float64(k.bound)/k.lastBound.Sub(t0).Seconds())
	}
	if !k.lastEnded.IsZero() {
		r.set("agora.completed_per_s", float64(k.finished)/k.lastEnded.Sub(t0).Seconds())
	}
	r.set("agora.c2b_p50_ms", ms(obs.createdToBound.pct(50)))
	r.set("agora.c2b_p99_ms", ms(obs.createdToBound.pct(99)))
	r.set("agora.c2r_p50_ms", ms(obs.createdToRunning.pct(50)))
	r.set("agora.c2r_p99_ms", ms(obs.createdToRunning.pct(99)))
	r.set("agora.b2r_p50_ms", ms(obs.boundToRunning.pct(50)))
	r.set("agora.b2r_p99_ms", ms(obs.boundToRunning.pct(99)))
	if obs.offerLatency.count() > 0 {
		r.set("agora.offer_p50_ms", ms(obs.offerLatency.pct(50)))
		r.set("agora.offer_p99_ms", ms(obs.offerLatency.pct(99)))
	} else {
		r.notes = append(r.notes, "no resources were freed while a framework still wanted offers: no offer latency (fewer --agents make the frameworks wait for freed resources)")
	}
	r.set("agora.offer_to_task_p50_ms", ms(obs.offerToTask.pct(50)))
	r.set("agora.offer_to_task_p99_ms", ms(obs.offerToTask.pct(99)))
	r.set("agora.offer_samples", float64(obs.offerLatency.count()))
	r.set("agora.offer_unmatched", float64(k.unmatched))
	r.set("agora.offers", float64(k.offers))
	r.set("agora.relaunched", float64(fws.sum(func(f *benchFramework) int64 { return f.relaunch.Load() })))
	r.set("agora.client_errors", float64(fws.sum(func(f *benchFramework) int64 { return f.failures.Load() })))
	for st, n := range k.byState {
		if st != agorav1.TaskFinished {
			r.notes = append(r.notes, fmt.Sprintf("%d tasks ended %s", n, st))
		}
	}

	for _, s := range k.samples {
		r.notes = append(r.notes, "e.g. "+s)
	}
	w := after.sub(before)
	r.set("writes.total", w.total())
	r.set("writes.per_s", w.total()/tEnd.Sub(t0).Seconds())
	if ackWrites > 0 {
		w["tasks"] += ackWrites
		r.notes = append(r.notes, fmt.Sprintf("the %.0f Task writes after the phase (the frameworks' acknowledgements) count in the writes per task", ackWrites))
	}
	r.writes = w.split()
	if k.finished > 0 {
		r.set("writes.per_task", w.total()/float64(k.finished))
		r.set("writes.per_task_no_leases", (w.total()-w["leases"])/float64(k.finished))
		r.set("writes.per_task_hot", (w["tasks"]+w["offers"]+w["assignments"])/float64(k.finished))
	}
	if lc := fws.lastCreate(); !lc.IsZero() {
		if a, b, ok := sampler.window(t0, lc); ok {
			r.set("writes.per_s_queued", b.w.sub(a.w).total()/b.at.Sub(a.at).Seconds())
		} else {
			r.notes = append(r.notes, "tasks were queued for less than two write samples (2 s apart): no queued write rate")
		}
	}
	r.set("master.cpu_s", m1.cpuSeconds-m0.cpuSeconds)
	r.set("master.cpu_cores", (m1.cpuSeconds-m0.cpuSeconds)/tEnd.Sub(t0).Seconds())
	r.set("master.peak_rss_mib", mib(m1.hwmBytes))
	r.set("master.rss_mib", mib(m1.rssBytes))
	return nil
}

// waitAgents waits until n Agent objects exist: agora-agent registers
// every agent and syncs its Assignment watch before it says it runs.
func waitAgents(ctx context.Context, cs kubernetes.Interface, n int, ch *localcluster.Proc) error {
	rc := cs.CoreV1().RESTClient()
	return wait.PollUntilContextTimeout(ctx, time.Second, 10*time.Minute, true, func(ctx context.Context) (bool, error) {
		if ch.Exited() {
			return false, fmt.Errorf("agora-agent exited: %v (log: %s)", ch.WaitErr(), ch.LogPath)
		}
		var l agorav1.AgentList
		err := rc.Get().AbsPath("/apis", agorav1.GroupVersion.Group, agorav1.GroupVersion.Version, "agents").
			Param("resourceVersion", "0").Do(ctx).Into(&l)
		if err != nil {
			return false, nil
		}
		return len(l.Items) >= n, nil
	})
}

func waitHTTP(ctx context.Context, url string, ch *localcluster.Proc) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if ch.Exited() {
			return false, fmt.Errorf("%s exited: %v (log: %s)", ch.Name, ch.WaitErr(), ch.LogPath)
		}
		resp, err := http.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// profileMaster takes a CPU profile of the master a few seconds into the
// phase (past the first offers) and returns `go tool pprof -top` of it.
func profileMaster(ctx context.Context, addr string, d time.Duration, binDir, dir string) string {
	if d <= 0 {
		return ""
	}
	select {
	case <-ctx.Done():
		return ""
	case <-time.After(3 * time.Second):
	}
	path := filepath.Join(dir, "master.cpu.pprof")
	if err := fetch(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds())), path); err != nil {
		return "profile: " + err.Error()
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", filepath.Join(binDir, "agora-master"), path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, out)
	}
	return string(out)
}

// profileAPIServer saves a CPU profile of kube-apiserver taken at the same
// time as the master's (apiserver.cpu.pprof): the apiserver is where the
// time goes, and its profile tells which requests and watches cost it.
func profileAPIServer(ctx context.Context, cs kubernetes.Interface, d time.Duration, dir string) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(3 * time.Second):
	}
	body, err := cs.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/profile").
		Param("seconds", strconv.Itoa(int(d.Seconds()))).Timeout(d + time.Minute).DoRaw(context.WithoutCancel(ctx))
	if err != nil {
		logf("apiserver profile: %v", err)
		return
	}
	_ = os.WriteFile(filepath.Join(dir, "apiserver.cpu.pprof"), body, 0o644)
}

// masterWriteWaits saves the master's metrics (master.metrics.txt) and
// summarises how long its writes waited in its queue, per lane.
func masterWriteWaits(ctx context.Context, addr, dir string) string {
	path := filepath.Join(dir, "master.metrics.txt")
	if err := fetch(ctx, "http://"+addr+"/metrics", path); err != nil {
		return "master metrics: " + err.Error()
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	sum, count := map[string]float64{}, map[string]float64{}
	var parts []string
	eachSample(data, []string{"agora_master_write_wait_seconds_sum", "agora_master_write_wait_seconds_count", "agora_master_settles_total"},
		func(name string, l map[string]string, v float64) {
			switch name {
			case "agora_master_write_wait_seconds_sum":
				sum[l["lane"]] = v
			case "agora_master_write_wait_seconds_count":
				count[l["lane"]] = v
			default:
				parts = append(parts, fmt.Sprintf("settles {how=%q} %g", l["how"], v))
			}
		})
	for _, lane := range []string{"assign", "critical", "offers", "background"} {
		if count[lane] > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f x %.0f ms", lane, count[lane], 1000*sum[lane]/count[lane]))
		}
	}
	return strings.Join(parts, "; ")
}

func saveHeap(ctx context.Context, addr, dir string) {
	_ = fetch(ctx, "http://"+addr+"/debug/pprof/heap?gc=1", filepath.Join(dir, "master.heap.pprof"))
}

func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// simConnections is how many connections the simulated agents get: one
// each by default, as real agents have (on a single one their watches and
// writes queued on one TCP stream, which added to bound -> RUNNING), up to
// 1000, past which the connections' memory would dominate the report.
func simConnections(c *config) int {
	if c.simConnections > 0 {
		return c.simConnections
	}
	return min(c.agents, 1000)
}
