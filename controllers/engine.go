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

	alloc       *allocator.Allocator
	agents      map[string]*agentState
	frameworks  map[string]*fwState
	offers      map[string]*offerState
	tasks       map[string]*taskState
	roles       map[string]*agorav1.ResourceRole // by role name
	nsLabels    map[string]map[string]string
	leases      map[string]*leaseObs
	assigns     map[string]*assignState          // by agent name
	assignDirty map[string]struct{}              // agents whose list to compare at the next flush
	offerBuf    []allocator.Offer                // the last round's offers, cleared, for the next
	agentTasks  map[string]map[string]*taskState // agent name -> task key -> task
	absentSince map[string]time.Time             // agents with live tasks and no Agent object, since when (judgeAbsentAgents)

	// parked tasks wait for their offer's create, settle or withdrawal.
	parked map[string][]string
	// stateRetries are failed master-sourced task state writes, by task key.
	stateRetries map[string]*stateRetry
	// unfit is set while the rebuild replays the API (see rebuildfit.go).
	unfit *rebuildUnfit
	// terminalTasks awaiting retention deletion.
	terminalTasks map[string]*taskState

	started         time.Time
	dirty           bool // something changed that may allow new offers
	removal         tokenBucket
	lastRound       time.Time
	lastRoleStatus  time.Time
	lastAssignSweep time.Time

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
		assigns:       map[string]*assignState{},
		assignDirty:   map[string]struct{}{},
		agentTasks:    map[string]map[string]*taskState{},
		absentSince:   map[string]time.Time{},
		parked:        map[string][]string{},
		terminalTasks: map[string]*taskState{},
		stateRetries:  map[string]*stateRetry{},
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

// lane orders the master's writes. Binds, settles and task states are on
// the critical path of tasks that are waiting; a burst of offer creates
// (a first round makes one per agent) or of garbage collection must not
// queue in front of them. Lower lanes are served when the higher ones are
// empty, or when their oldest write has waited laneMaxWait, so that they
// are never starved.
type lane int

const (
	laneAssign     lane = iota // agents' Assignments: they start the bound tasks
	laneCritical               // binds, settles, withdrawals, task states, kills
	laneOffers                 // offer creates
	laneBackground             // deletes of settled offers and old tasks, summary status
	nLanes
)

var laneNames = [nLanes]string{"assign", "critical", "offers", "background"}

// laneMaxWait bounds how long a lower lane waits behind busier ones.
const laneMaxWait = time.Second

type queuedJob struct {
	j  job
	at time.Time
}

type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	lanes  [nLanes][]queuedJob
	closed bool
}

func (q *workQueue) push(l lane, j job) {
	q.mu.Lock()
	q.lanes[l] = append(q.lanes[l], queuedJob{j: j, at: time.Now()})
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *workQueue) pop() (job, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.empty() && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return nil, false
	}
	now := time.Now()
	l := q.next(now)
	writeWaitSeconds.WithLabelValues(laneNames[l]).Observe(now.Sub(q.lanes[l][0].at).Seconds())
	j := q.lanes[l][0].j
	q.lanes[l][0] = queuedJob{}
	q.lanes[l] = q.lanes[l][1:]
	return j, true
}

func (q *workQueue) empty() bool {
	for _, l := range q.lanes {
		if len(l) > 0 {
			return false
		}
	}
	return true
}

// next picks the lane to serve: the lowest lane below the critical one
// whose head waited too long, else the highest non-empty lane. The critical
// lane does not age past the assign lane: at most one Assignment write per
// agent is queued, and each starts tasks whose binds already landed.
func (q *workQueue) next(now time.Time) lane {
	for l := nLanes - 1; l > laneCritical; l-- {
		if len(q.lanes[l]) > 0 && now.Sub(q.lanes[l][0].at) > laneMaxWait {
			return l
		}
	}
	for l := laneAssign; l < nLanes; l++ {
		if len(q.lanes[l]) > 0 {
			return l
		}
	}
	return laneAssign
}

func (q *workQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// do queues a write on the critical lane; its result comes back through
// the inbox.
func (e *engine) do(j job) { e.work.push(laneCritical, j) }

// doIn queues a write on a lane.
func (e *engine) doIn(l lane, j job) { e.work.push(l, j) }

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
	batch := newBatchTimer(e.opts.AllocationBatch)
	defer batch.stop()
	var buf []msg
	e.tick()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
			e.tick()
			batch.stop()
		case <-batch.c:
			batch.fired()
			if e.dirty {
				e.allocate()
			}
		case <-e.inbox.signal:
			buf = e.inbox.drain(buf)
			for _, m := range buf {
				if ctx.Err() != nil {
					return
				}
				m(e)
			}
			clear(buf)
			e.flushAssignments()
			if e.dirty {
				if batch.window <= 0 {
					e.allocate()
				} else {
					batch.arm()
				}
			}
		}
	}
}

// batchTimer delays event-triggered rounds by a short window from the
// first event, so resources freed by tasks ending close together (and
// answers settling together) go out as one offer per agent instead of one
// per task: every offer costs a create, an answer, a settle and a delete.
// The window runs on the wall clock, not the master's: it is about the
// apiserver's pace, not a timeout (and tests on a fake clock still see
// event-triggered rounds).
type batchTimer struct {
	window time.Duration
	t      *time.Timer
	c      <-chan time.Time
}

func newBatchTimer(window time.Duration) *batchTimer { return &batchTimer{window: window} }

// arm starts the window unless one is running.
func (b *batchTimer) arm() {
	if b.c != nil {
		return
	}
	b.t = time.NewTimer(b.window)
	b.c = b.t.C
}

// fired: the window ended.
func (b *batchTimer) fired() { b.t, b.c = nil, nil }

// stop drops a running window (a periodic round just ran).
func (b *batchTimer) stop() {
	if b.t != nil {
		b.t.Stop()
	}
	b.fired()
}

// tick does the periodic work, all judged on the master's clock.
func (e *engine) tick() {
	if e.ctx.Err() != nil {
		return
	}
	now := e.clock.Now()
	e.judgeAgents(now)
	e.judgeAbsentAgents(now)
	e.judgeFrameworks(now)
	e.expireOffers(now)
	e.retryStateWrites(now)
	e.collectOffers(now)
	e.collectTasks(now)
	e.dirty = true
	e.allocate()
	e.writeStatuses(now, false)
	e.sweepAssignments(now)
	e.flushAssignments()
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
