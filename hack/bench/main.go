// Command bench is Agora's scale benchmark (make bench-scale). On a real
// local control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler from bin/k8s) it runs the agora-master binary, N simulated
// agents in an agora-agent --simulate child (each with its own Lease and
// Assignment watch) and several SDK frameworks launching short tasks as fast as
// their offers allow. It then measures, on the same apiserver, the raw
// create rate (the ceiling) and kube-scheduler binding pods to fake nodes,
// and prints throughput, latencies, apiserver writes per task, the
// master's CPU and peak RSS, and the ratios to the references. It asserts
// nothing: machines differ; docs/benchmarks.md records what was measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

type config struct {
	agents, tasks, frameworks, concurrency, runs, refPods int
	preload, simConnections                               int
	taskDuration, allocInterval, leaseRenew, timeout      time.Duration
	ceilingFor, profileFor                                time.Duration
	taskCPUs, taskMem                                     string
	ack, skipRefs, keep, realAgent                        bool
	out                                                   string
	apiserverFlags, masterFlags                           stringList
	cpu, mem                                              resource.Quantity
}

func main() {
	var c config
	flag.IntVar(&c.agents, "agents", 1000, "simulated agents (8 cpus, 16Gi each), each with its own Lease and Assignment watch")
	flag.IntVar(&c.tasks, "tasks", 3000, "tasks to run to completion, split between the frameworks")
	flag.IntVar(&c.simConnections, "sim-connections", 0, "API connections the simulated agents are spread over (0: one each, as real agents have, up to 1000)")
	flag.IntVar(&c.frameworks, "frameworks", 4, "frameworks launching tasks through pkg/sdk")
	flag.IntVar(&c.concurrency, "concurrency", 16, "objects created at once: the frameworks' Task creates in flight together (split between them), and the references' goroutines")
	flag.DurationVar(&c.taskDuration, "task-duration", time.Second, "how long each simulated task runs")
	flag.StringVar(&c.taskCPUs, "task-cpus", "1", "cpus of each task (and of each reference pod)")
	flag.StringVar(&c.taskMem, "task-mem", "1Gi", "mem of each task (and of each reference pod)")
	flag.DurationVar(&c.allocInterval, "allocation-interval", time.Second, "the master's --allocation-interval")
	flag.DurationVar(&c.leaseRenew, "lease-renew", 10*time.Second, "Lease renewal period of the agents and fake nodes (the master's agent timeout is 4x, at least 40s)")
	flag.BoolVar(&c.ack, "ack", true, "frameworks delete (acknowledge) finished tasks; false keeps them, to size the master's memory with many finished tasks")
	flag.BoolVar(&c.realAgent, "real-agent", true, "also run one real agora-agent on this host (needs root: real cgroups and processes), to report its RSS beside a simulated agent's")
	flag.IntVar(&c.preload, "preload-finished", 0, "write this many Tasks straight into TASK_FINISHED before the phase (they never run), to size the master's memory with many finished tasks; use with --ack=false")
	flag.DurationVar(&c.timeout, "timeout", 3*time.Minute, "longest the Agora phase may take")
	flag.DurationVar(&c.ceilingFor, "ceiling-duration", 10*time.Second, "how long each raw create rate (ConfigMaps, Tasks) is measured")
	flag.IntVar(&c.refPods, "ref-pods", 0, "pods for the kube-scheduler reference (0: as many as tasks, at most half the fake nodes' room)")
	flag.BoolVar(&c.skipRefs, "skip-refs", false, "skip the ceiling and kube-scheduler references (e.g. for memory runs)")
	flag.DurationVar(&c.profileFor, "profile", 20*time.Second, "CPU-profile the master for this long during the Agora phase (0: no profile)")
	flag.IntVar(&c.runs, "runs", 1, "repeat everything on fresh control planes and report medians")
	flag.StringVar(&c.out, "out", "", "directory for logs, profiles and the report (default: a new temporary directory)")
	flag.BoolVar(&c.keep, "keep", false, "keep the control plane's data directory")
	flag.Var(&c.apiserverFlags, "apiserver-flag", "extra kube-apiserver flag, e.g. --apiserver-flag=--v=1 (repeatable)")
	flag.Var(&c.masterFlags, "master-flag", "extra agora-master flag, e.g. --master-flag=--allocation-batch=0s (repeatable)")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard()) // the report is the output
	var err error
	if c.cpu, err = resource.ParseQuantity(c.taskCPUs); err != nil {
		fatal(fmt.Errorf("--task-cpus: %w", err))
	}
	if c.mem, err = resource.ParseQuantity(c.taskMem); err != nil {
		fatal(fmt.Errorf("--task-mem: %w", err))
	}
	if c.agents <= 0 || c.tasks <= 0 || c.frameworks <= 0 || c.concurrency <= 0 || c.runs <= 0 {
		fatal(fmt.Errorf("--agents, --tasks, --frameworks, --concurrency and --runs must be positive"))
	}
	if c.preload < 0 {
		fatal(fmt.Errorf("--preload-finished must not be negative"))
	}
	if c.preload > 0 && c.ack {
		fatal(fmt.Errorf("--preload-finished needs --ack=false: the frameworks would delete the preloaded tasks"))
	}
	if c.out == "" {
		if c.out, err = os.MkdirTemp("", "agora-bench-"); err != nil {
			fatal(err)
		}
	}
	// The children run in their log directory: every path they get is absolute.
	if c.out, err = filepath.Abs(c.out); err != nil {
		fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root, err := repoRoot()
	if err != nil {
		fatal(err)
	}
	binDir := filepath.Join(c.out, "bin")
	logf("building agora-master and agora-agent into %s", binDir)
	if err := buildBinaries(ctx, root, binDir); err != nil {
		fatal(err)
	}
	var results []*result
	for i := range c.runs {
		dir := filepath.Join(c.out, fmt.Sprintf("run-%d", i+1))
		logf("run %d of %d (logs in %s)", i+1, c.runs, dir)
		r, err := runOnce(ctx, &c, root, binDir, dir)
		if err != nil {
			fatal(fmt.Errorf("run %d: %w", i+1, err))
		}
		results = append(results, r)
		printResult(os.Stdout, &c, fmt.Sprintf("run %d", i+1), r)
	}
	if len(results) > 1 {
		printResult(os.Stdout, &c, fmt.Sprintf("median of %d runs", len(results)), medianResult(results))
	}
	fmt.Printf("\nlogs, profiles: %s\n", c.out)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }
