package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/agora-sched/agora/pkg/resources"
)

// Options configure the master. Zero values take the defaults below.
type Options struct {
	// AllocationInterval between periodic allocation rounds (events also
	// trigger rounds, batched).
	AllocationInterval time.Duration
	// AllocationBatch is how long an event-triggered round waits for more
	// events (tasks ending, offers settling) after the first one, so that
	// freed resources go out in fewer, larger offers. Negative: no wait.
	AllocationBatch time.Duration
	// MaxOffersPerFramework caps the offers a framework holds unanswered
	// (being created or outstanding); the allocator skips it while it is at
	// the cap. It keeps a first round from writing an offer per agent for
	// a framework that can only answer a few at a time. Negative: no cap.
	MaxOffersPerFramework int
	// OfferTimeout is how long an offer stays outstanding unanswered.
	OfferTimeout time.Duration
	// AgentTimeout: an agent whose Lease the master has not seen change for
	// this long is unreachable.
	AgentTimeout time.Duration
	// FrameworkTimeout: a framework whose Lease the master has not seen
	// change for this long is Inactive (no offers; tasks keep running).
	FrameworkTimeout time.Duration
	// AgentRemovalRate bounds how many agents per second are marked
	// unreachable (Mesos' agent_removal_rate_limit).
	AgentRemovalRate float64
	// TaskRetention keeps terminal Tasks the framework did not delete for
	// max(TaskRetention, the framework's failoverTimeout).
	TaskRetention time.Duration
	// AgentNamespace holds the agents' heartbeat Leases.
	AgentNamespace string
	// OpenRoles may be used from every namespace unless their ResourceRole
	// restricts them.
	OpenRoles []string
	// Workers bound the writes in flight.
	Workers int
	// Clock drives every timeout; tests inject a fake clock.
	Clock clock.WithTicker
	// ExcludedFromShares are resource kinds left out of dominant shares
	// (Mesos' --fair_sharing_excluded_resource_names).
	ExcludedFromShares resources.KindSet
	// Seed of the allocator's agent shuffle.
	Seed int64
	// Hooks are test points; nil hooks do nothing.
	Hooks Hooks
}

// Hooks let tests stop a master at awkward moments (they cancel its
// context). They run on the goroutine doing the work and must not block long.
type Hooks struct {
	// AfterBind runs after an Assignment write that binds the task landed.
	AfterBind func(namespace, task string)
	// AfterAssign runs after an agent's Assignment write landed, with the
	// Tasks it lists ("namespace/name").
	AfterAssign func(agent string, tasks []string)
	// BeforeSettle runs before the write that settles an answered offer.
	BeforeSettle func(namespace, offer string)
	// MidAllocation runs after an allocation round decided its offers and
	// the first of them was handed to the writers.
	MidAllocation func()
}

// Defaults.
const (
	DefaultAllocationInterval    = time.Second
	DefaultAllocationBatch       = 500 * time.Millisecond
	DefaultMaxOffersPerFramework = 64
	DefaultOfferTimeout          = 60 * time.Second
	DefaultAgentTimeout          = 40 * time.Second
	DefaultFrameworkTimeout      = 30 * time.Second
	DefaultAgentRemovalRate      = 10.0
	DefaultTaskRetention         = time.Hour
	DefaultAgentNamespace        = "agora-system"
	DefaultWorkers               = 48
	// statusPeriod: summary status is written at most this often per object.
	statusPeriod = 10 * time.Second
	// settledOfferGrace keeps rescinded and expired offers (which hold no
	// filter) this long so frameworks watching them see why they went.
	settledOfferGrace = 5 * time.Second
)

func (o *Options) defaults() {
	if o.AllocationInterval <= 0 {
		o.AllocationInterval = DefaultAllocationInterval
	}
	if o.AllocationBatch == 0 {
		o.AllocationBatch = DefaultAllocationBatch
	}
	if o.MaxOffersPerFramework == 0 {
		o.MaxOffersPerFramework = DefaultMaxOffersPerFramework
	}
	if o.OfferTimeout <= 0 {
		o.OfferTimeout = DefaultOfferTimeout
	}
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = DefaultAgentTimeout
	}
	if o.FrameworkTimeout <= 0 {
		o.FrameworkTimeout = DefaultFrameworkTimeout
	}
	if o.AgentRemovalRate <= 0 {
		o.AgentRemovalRate = DefaultAgentRemovalRate
	}
	if o.TaskRetention <= 0 {
		o.TaskRetention = DefaultTaskRetention
	}
	if o.AgentNamespace == "" {
		o.AgentNamespace = DefaultAgentNamespace
	}
	if o.OpenRoles == nil {
		o.OpenRoles = []string{"*"}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
}

// CacheOptions are the manager cache options the master should run with:
// managedFields are stripped from every cached object (the master never
// reads them, and with many Tasks they are a large part of the cache).
func CacheOptions() cache.Options {
	return cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
}

// Master is Agora's master: a leader-elected runnable whose single engine
// goroutine owns the allocator and the books, fed by informer events.
type Master struct {
	opts     Options
	client   client.Client // writes (reads come from the engine's books)
	reader   client.Reader // consistent reads, straight from the apiserver
	cache    cache.Cache
	recorder events.EventRecorder
	log      logr.Logger
}

// New makes a master and adds it to the manager; it runs while the
// manager holds the leader lease.
func New(mgr manager.Manager, opts Options) (*Master, error) {
	opts.defaults()
	m := &Master{
		opts:     opts,
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		cache:    mgr.GetCache(),
		recorder: mgr.GetEventRecorder("agora-master"),
		log:      mgr.GetLogger().WithName("master"),
	}
	if err := mgr.Add(m); err != nil {
		return nil, err
	}
	return m, nil
}

// NeedLeaderElection: only the leader allocates.
func (m *Master) NeedLeaderElection() bool { return true }

// Start rebuilds the books from the API and runs the engine until ctx ends.
func (m *Master) Start(ctx context.Context) error {
	e := newEngine(ctx, m)
	if err := e.rebuild(ctx); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
		return fmt.Errorf("rebuilding the master's state from the API: %w", err)
	}
	if err := e.watch(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	e.run(ctx)
	return nil
}
