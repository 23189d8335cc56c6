package controllers

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/allocator"
)

// engine is the master's actor: one goroutine owns the allocator and the
// books; informer handlers and write workers talk to it only through its
// inbox, so the hot path needs no locks.
type engine struct {
	m     *Master
	opts  Options
	clock clock.WithTicker
	log   logr.Logger
	ctx   context.Context

	alloc      *allocator.Allocator
	agents     map[string]*agentState
	frameworks map[string]*fwState
	offers     map[string]*offerState
	tasks      map[string]*taskState
	roles      map[string]*agorav1.ResourceRole // by role name
	nsLabels   map[string]map[string]string
	leases     map[string]*leaseObs

	// parked tasks wait for their offer's create, settle or withdrawal.
	parked map[string][]string
	// terminalTasks awaiting retention deletion.
	terminalTasks map[string]*taskState

	started        time.Time
	dirty          bool // something changed that may allow new offers
	removal        tokenBucket
	lastRound      time.Time
	lastRoleStatus time.Time

	inbox inbox
	work  workQueue
}

func newEngine(ctx context.Context, m *Master) *engine {
	e := &engine{
		m:             m,
		opts:          m.opts,
		clock:         m.opts.Clock,
		log:           m.log,
		ctx:           ctx,
		alloc:         allocator.New(allocator.Options{Seed: m.opts.Seed, ExcludedFromShares: m.opts.ExcludedFromShares}),
		agents:        map[string]*agentState{},
		frameworks:    map[string]*fwState{},
		offers:        map[string]*offerState{},
		tasks:         map[string]*taskState{},
		roles:         map[string]*agorav1.ResourceRole{},
		nsLabels:      map[string]map[string]string{},
		leases:        map[string]*leaseObs{},
		parked:        map[string][]string{},
		terminalTasks: map[string]*taskState{},
	}
	e.started = e.clock.Now()
	e.removal = newTokenBucket(m.opts.AgentRemovalRate, e.started)
	e.inbox.signal = make(chan struct{}, 1)
	e.work.cond = sync.NewCond(&e.work.mu)
	return e
}

// msg is anything the engine applies: an informer event or a write's result.
type msg func(e *engine)

// inbox is an unbounded queue into the engine: producers never block, so
// workers and informers cannot deadlock against it.
type inbox struct {
	mu     sync.Mutex
	items  []msg
	signal chan struct{}
}

func (b *inbox) push(m msg) {
	b.mu.Lock()
	b.items = append(b.items, m)
	b.mu.Unlock()
	select {
	case b.signal <- struct{}{}:
	default:
	}
}

func (b *inbox) drain(buf []msg) []msg {
	b.mu.Lock()
	buf = append(buf[:0], b.items...)
	clear(b.items)
	b.items = b.items[:0]
	b.mu.Unlock()
	return buf
}

// job is a write run by a worker; it returns the message that applies its
// result (nil when there is nothing to apply).
type job func(ctx context.Context) msg

type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	jobs   []job
	closed bool
}

func (q *workQueue) push(j job) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *workQueue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	j := q.jobs[0]
	q.jobs[0] = nil
	q.jobs = q.jobs[1:]
	return j, true
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// do queues a write; its result comes back through the inbox.
func (e *engine) do(j job) { e.work.push(j) }

// run is the engine loop: apply messages, then allocate if something
// changed; tick on the master's clock for timeouts and periodic rounds.
func (e *engine) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range e.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, ok := e.work.pop()
				if !ok {
					return
				}
				if ctx.Err() != nil {
					continue // a deposed master writes nothing more
				}
				if res := j(ctx); res != nil {
					e.inbox.push(res)
				}
			}
		}()
	}
	defer func() {
		e.work.close()
		wg.Wait()
	}()

	ticker := e.clock.NewTicker(e.opts.AllocationInterval)
	defer ticker.Stop()
	var buf []msg
	e.tick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			e.tick()
		case <-e.inbox.signal:
			buf = e.inbox.drain(buf)
			for _, m := range buf {
				if ctx.Err() != nil {
					return
				}
				m(e)
			}
			clear(buf)
			if e.dirty {
				e.allocate()
			}
		}
	}
}

// tick does the periodic work, all judged on the master's clock.
func (e *engine) tick() {
	if e.ctx.Err() != nil {
		return
	}
	now := e.clock.Now()
	e.judgeAgents(now)
	e.judgeFrameworks(now)
	e.expireOffers(now)
	e.collectOffers(now)
	e.collectTasks(now)
	e.dirty = true
	e.allocate()
	e.writeStatuses(now, false)
	e.updateMetrics()
}

// tokenBucket is a rate limit on the master's clock.
type tokenBucket struct {
	rate, tokens, burst float64
	last                time.Time
}

func newTokenBucket(rate float64, now time.Time) tokenBucket {
	burst := max(1, rate)
	return tokenBucket{rate: rate, tokens: burst, burst: burst, last: now}
}

func (b *tokenBucket) take(now time.Time) bool {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
