package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent/runtime"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/localcluster"
	"github.com/agora-sched/agora/pkg/sdk"
)

// localAgentName names the i-th agent `agora local` runs on this host.
func localAgentName(i int) string { return fmt.Sprintf("local-agent-%d", i) }

// localComponents are the processes `agora local` runs beside the control
// plane, stopped in reverse order.
type localComponents struct {
	children []*localcluster.Child
	names    []string
	demo     []bool // the demo frameworks: their exit does not stop the rest
	agents   []localAgentDirs
	step     func(string, ...any)
	stopping atomic.Bool
}

type localAgentDirs struct{ name, work, checkpoints string }

// startLocalComponents starts the master, the agents and, with --demo, two
// example frameworks, each as a child process of the binaries installed
// beside this one (make build puts them all in bin/).
func startLocalComponents(ctx context.Context, o *localOptions, c *localcluster.Cluster, dataDir string, step func(string, ...any)) (*localComponents, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	binDir := filepath.Dir(self)
	need := []string{"agora-master", "agora-agent"}
	if o.demo {
		need = append(need, "agora-batch", "agora-service")
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("%s is not beside %s: run `make build` (it builds all of Agora's binaries into bin/)", b, self)
		}
	}
	if o.agents > 0 && !o.simulated && os.Geteuid() != 0 {
		return nil, errors.New("real agents manage cgroups and need root: run as root, or pass --simulated for simulated agents")
	}
	logDir := filepath.Join(dataDir, "logs")
	kc := c.Kubeconfig()
	lc := &localComponents{step: step}
	start := func(name, bin string, args ...string) error {
		ch, err := localcluster.StartChild(name, filepath.Join(binDir, bin), args, logDir)
		if err != nil {
			return err
		}
		lc.add(name, ch, strings.HasPrefix(name, "demo-"))
		step("started %s (log: %s)", name, ch.LogPath())
		return nil
	}
	fail := func(err error) (*localComponents, error) { lc.stop(step); return nil, err }

	if err := start("master", "agora-master", "--kubeconfig", kc, "--metrics-bind-address", "127.0.0.1:0",
		"--health-probe-bind-address", "0", "--allocation-interval", "1s",
		// Local agents offer the host's whole disk and the demo's tasks ask
		// for none: counted, it would skew DRF towards whoever holds offers.
		"--fair-sharing-excluded-resource-names", "disk"); err != nil {
		return fail(err)
	}
	if o.simulated && o.agents > 0 {
		if err := start("agents", "agora-agent", "--kubeconfig", kc, "--node-name", "local-sim", "--simulate", fmt.Sprint(o.agents)); err != nil {
			return fail(err)
		}
	} else {
		share := agentShare(o.agents)
		for i := 1; i <= o.agents; i++ {
			dirs := localAgentDirs{name: localAgentName(i), work: filepath.Join(dataDir, "agents", localAgentName(i), "work"),
				checkpoints: filepath.Join(dataDir, "agents", localAgentName(i), "checkpoints")}
			lo, hi := 31000+(i-1)*1000/o.agents, 31000+i*1000/o.agents-1
			if err := start(dirs.name, "agora-agent", "--kubeconfig", kc, "--node-name", dirs.name,
				"--work-dir", dirs.work, "--checkpoint-dir", dirs.checkpoints, "--task-uid-range", localTaskUIDRange(i),
				"--resources", share, "--ports", fmt.Sprintf("%d-%d", lo, hi), "--attributes", "host:"+dirs.name,
				"--log-bind-address", fmt.Sprintf("127.0.0.1:%d", 10250+i)); err != nil {
				return fail(err)
			}
			lc.agents = append(lc.agents, dirs)
		}
	}
	if o.demo {
		cs, err := kubernetes.NewForConfig(c.RESTConfig())
		if err != nil {
			return fail(err)
		}
		if err := ensureNamespace(ctx, cs, "demo"); err != nil {
			return fail(err)
		}
		// Two shapes, so DRF has something to balance: a CPU-heavy service
		// and a memory-heavy batch job that keeps submitting work.
		if err := start("demo-web", "agora-service", "--kubeconfig", kc, "--namespace", "demo", "--framework", "web",
			"--instances", "3", "--cpus", "0.2", "--mem", "64Mi", "while true; do echo serving; sleep 5; done"); err != nil {
			return fail(err)
		}
		if err := start("demo-analytics", "agora-batch", "--kubeconfig", kc, "--namespace", "demo", "--framework", "analytics",
			"--cpus", "0.1", "--mem", "256Mi", "--repeat", "10000", "--no-teardown", "sleep 15"); err != nil {
			return fail(err)
		}
	}
	return lc, nil
}

// localTaskUIDRange gives the i-th local agent (from 1) its own block of
// uids for its frameworks' tasks, the size of the default range and
// starting at it. The agents share this host but not a checkpoint dir, so
// not a uid table either: with one range, two tables could give two
// frameworks the same uid on the same kernel.
func localTaskUIDRange(i int) string {
	d := runtime.DefaultTaskUIDs
	size := d.Last - d.First + 1
	first := d.First + uint32(i-1)*size
	return runtime.IDRange{First: first, Last: first + size - 1}.String()
}

// agentShare splits this host's CPUs and memory between n local agents so
// they do not offer the same machine n times.
func agentShare(n int) string {
	if n < 1 {
		n = 1
	}
	milli := goruntime.NumCPU() * 1000 / n
	mem := hostMemBytes() / 2 / int64(n) // half the host: the control plane needs the rest
	return fmt.Sprintf("cpus:%d.%03d;mem:%dMi", milli/1000, milli%1000, mem>>20)
}

func (lc *localComponents) add(name string, c *localcluster.Child, demo bool) {
	lc.children = append(lc.children, c)
	lc.names = append(lc.names, name)
	lc.demo = append(lc.demo, demo)
}

// watch returns a channel that yields the first child of the cluster itself
// (master, agents) to exit unexpectedly. A demo framework that exits is
// only reported: it ends when its Framework is deleted (as the uninstall
// steps do), which must not take the whole local cluster down with it.
func (lc *localComponents) watch() <-chan error {
	ch := make(chan error, 1)
	for i, c := range lc.children {
		go func() {
			<-c.Done()
			if lc.demo[i] {
				if !lc.stopping.Load() {
					lc.step("%s exited; the cluster keeps running: %v", lc.names[i], c.Err())
				}
				return
			}
			select {
			case ch <- fmt.Errorf("%s stopped: %w", lc.names[i], c.Err()):
			default:
			}
		}()
	}
	return ch
}

// stop ends the demo frameworks, agents and master, then kills the tasks the
// agents left running: tasks outlive their agent by design, but not
// `agora local`.
func (lc *localComponents) stop(step func(string, ...any)) {
	if lc == nil {
		return
	}
	lc.stopping.Store(true)
	for i := len(lc.children) - 1; i >= 0; i-- {
		lc.children[i].Stop(10 * time.Second)
	}
	for _, a := range lc.agents {
		n := killLeftoverTasks(a)
		if n > 0 {
			step("killed %d task(s) left running by %s", n, a.name)
		}
	}
}

func killLeftoverTasks(a localAgentDirs) int {
	rt, err := runtime.New(runtime.Config{AgentName: a.name, WorkDir: a.work, CheckpointDir: a.checkpoints})
	if err != nil {
		return 0
	}
	defer rt.Close()
	tasks, err := rt.Recover()
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range tasks {
		if t.State == runtime.StateRunning {
			if rt.Kill(t.ID, -1) == nil {
				n++
			}
		}
	}
	// Kill is asynchronous; give the supervisors a moment to reap.
	deadline := time.Now().Add(5 * time.Second)
	for _, t := range tasks {
		for time.Now().Before(deadline) {
			if err := rt.Forget(t.ID); !errors.Is(err, runtime.ErrTaskRunning) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return n
}

func hostMemBytes() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 2 << 30
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// localReadyTimeout bounds waitLocalReady.
var localReadyTimeout = 2 * time.Minute

// waitLocalReady waits until every agent has registered Ready, so "ready"
// means offers can flow. A component that exits meanwhile (an agent whose
// port is taken, say) ends the wait with its error and log tail; before,
// the wait went on to its timeout and said only "context deadline exceeded".
func waitLocalReady(ctx context.Context, cfg *rest.Config, o *localOptions, step func(string, ...any), exited <-chan error, logDir string) error {
	if o.agents == 0 {
		return nil
	}
	c, err := client.New(cfg, client.Options{Scheme: sdk.Scheme()})
	if err != nil {
		return err
	}
	step("waiting for %d agent(s) to register...", o.agents)
	deadline := time.NewTimer(localReadyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var agents agorav1.AgentList
		if err := c.List(ctx, &agents); err == nil {
			ready := 0
			for _, a := range agents.Items {
				if meta.IsStatusConditionTrue(a.Status.Conditions, agorav1.AgentConditionReady) {
					ready++
				}
			}
			if ready >= o.agents {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-exited:
			return fmt.Errorf("while waiting for the agents to register, %w", err)
		case <-deadline.C:
			return fmt.Errorf("the agents did not all register Ready within %s; see their logs in %s", localReadyTimeout, logDir)
		case <-tick.C:
		}
	}
}
