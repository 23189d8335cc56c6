// Package sim runs simulated Agora agents in one process, as kwok does for
// kubelets: each registers an Agent, renews its Lease, watches its own
// Assignment and writes its Tasks' status exactly as a real agent does (it
// is the same agent core), but "runs" tasks with timers. Master tests and scale benchmarks use
// it; the agents share one rate limiter, and one HTTP transport unless
// Options.Connections spreads them over several.
package sim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/agora-sched/agora/agent"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/kubeconn"
	"github.com/agora-sched/agora/pkg/resources"
)

// DefaultTotal is a simulated node: 8 cpus, 16Gi mem, 100Gi disk, ports
// 31000-32000 (Mesos' default range).
var DefaultTotal = resources.MustParse("cpus:8;mem:16Gi;disk:100Gi;ports:[31000-32000]")

// Options configure simulated agents.
type Options struct {
	// Count of agents to run.
	Count int
	// NamePrefix: agents are named <NamePrefix>-<i>, i from 0 (default "sim-agent").
	NamePrefix string
	// Total of every agent (default DefaultTotal).
	Total resources.Resources
	// Namespace of the Leases (default agora-system; it must exist).
	Namespace string
	// RenewInterval of the Leases (default 10s).
	RenewInterval time.Duration
	// SummaryInterval between Agent summary writes (default 10s).
	SummaryInterval time.Duration
	// Attributes of agent i (optional).
	Attributes func(i int) []agorav1.Attribute
	// Reserved resources of agent i (optional).
	Reserved func(i int) []agorav1.RoleResources
	// QPS and Burst of the shared client when cfg sets none (default
	// 1000/2000: the apiserver, not the client, should be the bottleneck).
	QPS   float32
	Burst int
	// Connections the agents are spread over, round robin (default 1).
	// Real agents each have a connection of their own; on one, every
	// agent's watch and writes queue on one TCP stream, which adds to the
	// time from a bind to TASK_RUNNING at a thousand agents.
	Connections int
	// Log receives the agents' logs (default: discarded).
	Log logr.Logger
}

// Cluster is a set of running simulated agents.
type Cluster struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	names  []string
	agents map[string]*agent.Agent
	execs  map[string]*Executor

	mu   sync.Mutex
	errs []error
}

// Start runs o.Count simulated agents against cfg and returns once every
// one has registered and synced its Tasks (or ctx ends, or one fails). The
// agents run until Stop or until ctx ends.
func Start(ctx context.Context, cfg *rest.Config, o Options) (*Cluster, error) {
	if o.Count <= 0 {
		return nil, errors.New("sim: Count must be positive")
	}
	if o.NamePrefix == "" {
		o.NamePrefix = "sim-agent"
	}
	if o.Total.IsEmpty() {
		o.Total = DefaultTotal
	}
	if o.QPS == 0 {
		o.QPS, o.Burst = 1000, 2000
	}
	clients, err := newClients(cfg, o)
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	c := &Cluster{cancel: cancel, agents: map[string]*agent.Agent{}, execs: map[string]*Executor{}}
	for i := range o.Count {
		name := fmt.Sprintf("%s-%d", o.NamePrefix, i)
		ac := agent.Config{
			Name: name, Namespace: o.Namespace, Total: o.Total,
			CgroupVersion: "simulated", Version: agent.Version,
			RenewInterval: o.RenewInterval, SummaryInterval: o.SummaryInterval,
			Clients: clients[i%len(clients)], Log: o.Log,
		}
		if o.Attributes != nil {
			ac.Attributes = o.Attributes(i)
		}
		if o.Reserved != nil {
			ac.Reserved = o.Reserved(i)
		}
		ex := NewExecutor()
		ac.Executor = ex
		a, err := agent.New(ac)
		if err != nil {
			cancel()
			c.wg.Wait()
			return nil, err
		}
		c.names = append(c.names, name)
		c.agents[name], c.execs[name] = a, ex
		c.wg.Go(func() {
			defer ex.Close()
			if err := a.Run(runCtx); err != nil && runCtx.Err() == nil {
				c.mu.Lock()
				c.errs = append(c.errs, fmt.Errorf("agent %s: %w", name, err))
				c.mu.Unlock()
				cancel()
			}
		})
	}
	for _, name := range c.names {
		select {
		case <-c.agents[name].Ready():
		case <-runCtx.Done():
			cancel()
			c.wg.Wait()
			c.mu.Lock()
			defer c.mu.Unlock()
			return nil, errors.Join(append(c.errs, fmt.Errorf("sim: starting agents: %w", runCtx.Err()))...)
		}
	}
	return c, nil
}

// newClients builds o.Connections clients (no more than agents), each on
// a connection of its own, sharing one rate limiter.
func newClients(cfg *rest.Config, o Options) ([]*agent.Clients, error) {
	n := min(o.Connections, o.Count)
	if n <= 1 {
		c, err := agent.NewClients(cfg, o.QPS, o.Burst)
		return []*agent.Clients{c}, err
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(o.QPS, o.Burst)
	}
	out := make([]*agent.Clients, n)
	for i := range out {
		c, err := agent.NewClients(kubeconn.Own(cfg), o.QPS, o.Burst)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// Names lists the agents' names, sorted.
func (c *Cluster) Names() []string {
	names := append([]string(nil), c.names...)
	sort.Strings(names)
	return names
}

// Agent returns an agent by name, or nil.
func (c *Cluster) Agent(name string) *agent.Agent { return c.agents[name] }

// Executor returns an agent's simulated executor, or nil.
func (c *Cluster) Executor(name string) *Executor { return c.execs[name] }

// Pause cuts an agent off as a network partition would: no Lease renewals,
// no status writes; its tasks keep running.
func (c *Cluster) Pause(name string) error {
	a := c.agents[name]
	if a == nil {
		return fmt.Errorf("sim: no agent %q", name)
	}
	a.Pause()
	return nil
}

// Resume reconnects a paused agent: it renews its Lease at once and reports
// its tasks again (RUNNING again for those the master marked lost).
func (c *Cluster) Resume(name string) error {
	a := c.agents[name]
	if a == nil {
		return fmt.Errorf("sim: no agent %q", name)
	}
	a.Resume()
	return nil
}

// Stop stops every agent and waits for them. Their tasks vanish with them;
// Agent objects and Leases stay (as after a node's crash).
func (c *Cluster) Stop() {
	c.cancel()
	c.wg.Wait()
}
