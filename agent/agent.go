package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// Defaults of Config.
const (
	DefaultNamespace       = "agora-system"
	DefaultRenewInterval   = 10 * time.Second
	DefaultSummaryInterval = 10 * time.Second
	DefaultKillGracePeriod = 3 * time.Second
	DefaultWorkers         = 8
)

// Config configures one agent.
type Config struct {
	// Name of the Agent object and its Lease: the node's name.
	Name string
	// Namespace of the Lease (default agora-system).
	Namespace string
	// Hostname reported to frameworks (default Name).
	Hostname string
	// Total resources Agora may use on the node; SetTotal changes them.
	Total resources.Resources
	// Reserved are static reservations, part of Total.
	Reserved []agorav1.RoleResources
	// Attributes of the agent, for placement.
	Attributes []agorav1.Attribute
	// CgroupVersion reported in the status: "v1", "v2" or "simulated".
	CgroupVersion string
	// Version of the agent binary.
	Version string
	// RenewInterval of the Lease (default 10s). Renewals are jittered by
	// ±10% so that many agents do not renew in lockstep. A renewal is left
	// out while the agent's last status write is more recent than that
	// (the master counts such a write as a heartbeat, see docs/design.md),
	// but never for three intervals in a row: the Lease, whose duration is
	// four intervals, never looks expired while the agent lives.
	RenewInterval time.Duration
	// SummaryInterval is the least time between two writes of the Agent's
	// status.allocated and status.tasks (default 10s).
	SummaryInterval time.Duration
	// Workers bounds the Task changes processed in parallel (default 8):
	// an Assignment write often lists several tasks at once, and each needs
	// its own status writes. Workers are started only while there is work.
	Workers int
	// Executor runs the tasks.
	Executor Executor
	// Clients talk to the apiserver; many agents may share them.
	Clients *Clients
	// Log receives the agent's logs (default: discarded).
	Log logr.Logger
	// LogEndpoint and LogCertSHA256 describe the agent's log server (see
	// LogServer); the agent writes them into a Task's status together with
	// its sandbox, in the RUNNING write. Empty: no log server.
	LogEndpoint, LogCertSHA256 string
}

// Agent is one node's agent: it registers, heartbeats, admits the Tasks bound
// to it, runs them with its Executor and writes their status.
type Agent struct {
	cfg  Config
	log  logr.Logger
	exec Executor

	queue   workqueue.TypedRateLimitingInterface[types.UID]
	ready   chan struct{}
	kick    chan struct{} // the summary changed
	resumed chan struct{} // renew the Lease now
	lease   *coordinationv1.Lease

	mu    sync.Mutex
	total resources.Resources
	tasks map[types.UID]*task
	// listed are the entries of the latest Assignment, by Task UID;
	// listedSeq counts its versions, listedRV is the last one's.
	listed    map[types.UID]agorav1.AssignedTask
	listedSeq uint64
	listedRV  string
	// forgotten are listed tasks the agent is done with (it wrote their
	// end, or their Task is gone or ended): an entry lingering until the
	// master's next write must not get them admitted or read again.
	forgotten map[types.UID]struct{}
	paused    bool
	dirty     bool // summary or total changed since the last Agent status write
	started   bool
	writes    int64 // status writes that succeeded (tests, benchmarks)
	// heard is when the agent last changed something the master judges its
	// liveness by: its Lease, its Agent status or a Task's status. reported
	// is the Agent status its last write left (AgentStatus.SameReport
	// compares it).
	heard    time.Time
	renewed  time.Time // the Lease's last successful write
	reported *agorav1.AgentStatus
}

// New checks cfg and returns an agent; Run starts it.
func New(cfg Config) (*Agent, error) {
	if cfg.Name == "" {
		return nil, errors.New("agent: Name is required")
	}
	if cfg.Executor == nil || cfg.Clients == nil {
		return nil, errors.New("agent: Executor and Clients are required")
	}
	if err := cfg.Total.Validate(); err != nil {
		return nil, fmt.Errorf("agent: total: %w", err)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Hostname == "" {
		cfg.Hostname = cfg.Name
	}
	if cfg.RenewInterval <= 0 {
		cfg.RenewInterval = DefaultRenewInterval
	}
	if cfg.SummaryInterval <= 0 {
		cfg.SummaryInterval = DefaultSummaryInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Log.GetSink() == nil {
		cfg.Log = logr.Discard()
	}
	return &Agent{
		cfg:       cfg,
		log:       cfg.Log.WithValues("agent", cfg.Name),
		exec:      cfg.Executor,
		total:     cfg.Total,
		tasks:     map[types.UID]*task{},
		listed:    map[types.UID]agorav1.AssignedTask{},
		forgotten: map[types.UID]struct{}{},
		ready:     make(chan struct{}),
		kick:      make(chan struct{}, 1),
		resumed:   make(chan struct{}, 1),
		dirty:     true,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[types.UID](100*time.Millisecond, 30*time.Second),
			workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: ""}),
	}, nil
}

// Name is the agent's name.
func (a *Agent) Name() string { return a.cfg.Name }

// Ready is closed once the agent has registered, recovered its tasks, and
// read its Assignment and the Tasks of it that it recovered.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// StatusWrites counts the Task status writes the agent made.
func (a *Agent) StatusWrites() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.writes
}

// SetTotal changes the resources Agora may use on the node (for example when
// Kubernetes pods come and go). Admitted tasks stay; new ones must fit.
func (a *Agent) SetTotal(r resources.Resources) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.total.Equal(r) {
		a.total = r
		a.summaryChangedLocked()
	}
}

// Pause simulates a network partition: no Lease renewals and no status
// writes until Resume. Tasks keep running and the watch keeps delivering.
func (a *Agent) Pause() {
	a.mu.Lock()
	a.paused = true
	a.mu.Unlock()
}

// Resume ends a Pause: the Lease is renewed at once and every task's status
// is brought up to date (a task the master marked LOST or UNREACHABLE
// meanwhile is reported RUNNING again). Every Task is read first: the
// master's writes to it are not watched.
func (a *Agent) Resume() {
	a.mu.Lock()
	a.paused = false
	ids := make([]types.UID, 0, len(a.tasks))
	for id, t := range a.tasks {
		t.reread = true
		ids = append(ids, id)
	}
	a.mu.Unlock()
	for _, id := range ids {
		a.queue.Add(id)
	}
	select {
	case a.resumed <- struct{}{}:
	default:
	}
}

func (a *Agent) isPaused() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.paused
}

// Run registers the agent and runs it until ctx ends. Tasks keep running
// after Run returns (a real executor's supervisors outlive the agent); a new
// agent with the same executor state recovers them.
func (a *Agent) Run(ctx context.Context) error {
	a.mu.Lock()
	if a.started {
		a.mu.Unlock()
		return errors.New("agent: Run called twice")
	}
	a.started = true
	a.mu.Unlock()
	defer a.queue.ShutDown()

	if err := a.register(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	// An error return stops what was started (the Lease renewals above
	// all) before waiting for it: a live Lease on an agent that gave up
	// would keep the master binding tasks to it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { a.housekeeping(ctx) })

	if err := a.recover(ctx); err != nil {
		return err
	}
	wg.Go(func() { a.readEvents(ctx) })
	if err := a.startAssignmentWatch(ctx, &wg); err != nil {
		return err
	}
	a.initialSync(ctx)
	wg.Go(func() { a.dispatch(ctx, &wg) })
	close(a.ready)
	a.log.Info("agent ready")
	<-ctx.Done()
	a.queue.ShutDown()
	return nil
}

// jitter returns d ± 10%, so that agents started together spread out.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + time.Duration(rand.Int64N(int64(d/5)+1))
}
