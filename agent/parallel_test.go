package agent_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

// statusBarrier holds every Task status write until want of them are in
// flight together (or until a deadline, so that a serial agent fails the
// test instead of hanging it), and records the most seen at once.
type statusBarrier struct {
	want int
	mu   sync.Mutex
	in   int
	peak int
	full chan struct{}
}

func (b *statusBarrier) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPatch && strings.Contains(r.URL.Path, "/tasks/") && strings.HasSuffix(r.URL.Path, "/status") {
			b.mu.Lock()
			b.in++
			b.peak = max(b.peak, b.in)
			if b.in == b.want {
				close(b.full)
			}
			b.mu.Unlock()
			select {
			case <-b.full:
			case <-time.After(15 * time.Second):
			}
			defer func() {
				b.mu.Lock()
				b.in--
				b.mu.Unlock()
			}()
		}
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// An agent syncs several tasks at once: the tasks of one Assignment do not
// wait for each other's status writes (an agent with one worker would hold
// each task's RUNNING behind the writes of the tasks listed before it).
func TestTasksSyncedInParallel(t *testing.T) {
	const n = 4
	leaseNS := env.Namespace(t, "agora-system")
	ns := env.Namespace(t, "fw")
	name := agentName("par")
	b := &statusBarrier{want: n, full: make(chan struct{})}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = b.wrap
	clients, err := agent.NewClients(cfg, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	startAgent(t, agent.Config{Name: name, Namespace: leaseNS, Total: mustParse("cpus:4;mem:4Gi"),
		Executor: sim.NewExecutor(), CgroupVersion: "simulated", Version: "test", Clients: clients, Workers: n})

	var tasks []*agorav1.Task
	for i := range n {
		task := newTask(t, ns, fmt.Sprintf("t%d", i), name, builders.Res("1", "1Gi"), annotate(sim.AnnotationDuration, "1h"))
		bind(t, task)
		tasks = append(tasks, task)
	}
	for _, task := range tasks {
		waitState(t, task, agorav1.TaskRunning, 30*time.Second)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.peak < n {
		t.Errorf("at most %d Task status writes were in flight at once, want %d (one per listed task)", b.peak, n)
	}
}
