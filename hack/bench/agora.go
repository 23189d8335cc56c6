package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"

	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/kubeconn"
	"github.com/agora-sched/agora/pkg/sdk"
)

// benchFramework launches its share of the tasks as fast as its offers
// allow: every offer is packed with as many tasks as fit, and Accept runs
// on a pool of workers so that a framework's creates overlap (the SDK
// creates one offer's tasks one after another).
type benchFramework struct {
	name string
	d    *sdk.Driver
	res  agorav1.Resources
	dur  time.Duration
	ack  bool

	left     atomic.Int64 // tasks with no offer to go on yet
	created  atomic.Int64
	relaunch atomic.Int64 // tasks that ended without running, launched again
	failures atomic.Int64 // Accept, Decline and Acknowledge errors
	acked    atomic.Int64 // acknowledgements answered, whatever the answer
	suppress atomic.Bool

	jobs      *jobQueue // Accepts and acknowledgements
	quick     *jobQueue // declines and suppress, never behind an Accept's creates
	lastMu    sync.Mutex
	lastCrtAt time.Time // when the last task create returned
}

// OfferReceived implements sdk.Handler. It runs on the driver's goroutine,
// the only one that takes from left, so the count cannot go negative.
func (f *benchFramework) OfferReceived(ctx context.Context, d *sdk.Driver, offer *agorav1.Offer) {
	pool, err := sdk.NewPool(offer)
	if err != nil {
		f.failures.Add(1)
		return
	}
	n := int64(0)
	for n < f.left.Load() && pool.Take(f.res) {
		n++
	}
	if n == 0 {
		f.quick.push(func() {
			if err := d.Decline(ctx, offer, 5); err != nil && !errors.Is(err, sdk.ErrOfferGone) {
				f.failed(ctx)
			}
		})
		f.quick.push(func() { f.maybeSuppress(ctx) })
		return
	}
	if f.left.Add(-n) == 0 {
		f.quick.push(func() { f.maybeSuppress(ctx) })
	}
	f.jobs.push(func() {
		tasks := make([]sdk.TaskInfo, n)
		for i := range tasks {
			tasks[i] = sdk.TaskInfo{
				Resources:   f.res,
				Command:     sdk.Shell("true"),
				Annotations: map[string]string{sim.AnnotationDuration: f.dur.String()},
			}
		}
		created, err := d.Accept(ctx, offer, tasks, sdk.Filters{})
		if len(created) > 0 {
			f.created.Add(int64(len(created)))
			f.lastMu.Lock()
			f.lastCrtAt = time.Now()
			f.lastMu.Unlock()
		}
		if lost := n - int64(len(created)); lost > 0 {
			f.left.Add(lost) // the offer went away first: launch them elsewhere
		}
		if err != nil && !errors.Is(err, sdk.ErrOfferGone) && !errors.Is(err, sdk.ErrOfferAnswered) {
			f.failed(ctx)
		}
	})
}

// failed counts a client error, but not a request cut off by the end of
// the run: the answers and acknowledgements still queued then are not
// errors of Agora's.
func (f *benchFramework) failed(ctx context.Context) {
	if ctx.Err() == nil {
		f.failures.Add(1)
	}
}

// maybeSuppress stops offers once every task has an offer to go on (Mesos'
// SUPPRESS), even while those Accepts still run: a suppress leaves the
// offers the framework holds alone, and offers it cannot use are declined.
func (f *benchFramework) maybeSuppress(ctx context.Context) {
	if f.left.Load() == 0 && f.suppress.CompareAndSwap(false, true) {
		if err := f.d.Suppress(ctx); err != nil {
			f.suppress.Store(false)
			f.failed(ctx)
		}
	}
}

// OfferRescinded implements sdk.Handler: nothing to undo, Accept has not run.
func (f *benchFramework) OfferRescinded(context.Context, *sdk.Driver, *agorav1.Offer) {}

// TaskUpdate implements sdk.Handler: finished tasks are acknowledged
// (deleted), as the design's per-task write path counts; tasks that ended
// without running are launched again.
func (f *benchFramework) TaskUpdate(ctx context.Context, d *sdk.Driver, t *agorav1.Task) {
	if !sdk.IsTerminal(t.Status.State) {
		return
	}
	if t.Status.State != agorav1.TaskFinished {
		f.relaunch.Add(1)
		f.left.Add(1)
	}
	if f.ack {
		t := t.DeepCopy()
		f.jobs.push(func() {
			if err := d.Acknowledge(ctx, t); err != nil {
				f.failed(ctx)
			}
			f.acked.Add(1)
		})
	}
}

// unsuppressLoop revives offers for tasks handed back after a suppress
// (an offer rescinded under an Accept, or a task that did not run).
func (f *benchFramework) unsuppressLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.left.Load() > 0 && f.suppress.Load() {
			if err := f.d.Unsuppress(ctx); err == nil {
				f.suppress.Store(false)
			}
		}
	}
}

// jobQueue is an unbounded queue served by a fixed number of workers:
// the driver's handler must never block on it.
type jobQueue struct {
	mu    sync.Mutex
	cond  *sync.Cond
	items []func()
	done  bool
}

func newJobQueue(ctx context.Context, workers int, wg *sync.WaitGroup) *jobQueue {
	q := &jobQueue{}
	q.cond = sync.NewCond(&q.mu)
	for range workers {
		wg.Go(func() {
			for {
				q.mu.Lock()
				for len(q.items) == 0 && !q.done {
					q.cond.Wait()
				}
				if q.done {
					q.mu.Unlock()
					return
				}
				j := q.items[0]
				q.items[0] = nil
				q.items = q.items[1:]
				q.mu.Unlock()
				if ctx.Err() == nil {
					j()
				}
			}
		})
	}
	return q
}

func (q *jobQueue) push(j func()) {
	q.mu.Lock()
	q.items = append(q.items, j)
	q.mu.Unlock()
	q.cond.Signal()
}

func (q *jobQueue) close() {
	q.mu.Lock()
	q.done = true
	q.mu.Unlock()
	q.cond.Broadcast()
}

// frameworks are the benchmark's frameworks, running until stop.
type frameworks struct {
	list   []*benchFramework
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startFrameworks connects n frameworks (namespaces bench-fw-<i>, created
// beforehand), splits tasks between them and starts launching.
func startFrameworks(ctx context.Context, cfg *rest.Config, n, tasks, concurrency int, res agorav1.Resources, dur time.Duration, ack bool) (*frameworks, error) {
	ctx, cancel := context.WithCancel(ctx)
	fws := &frameworks{cancel: cancel}
	// Each framework has at most workers Task creates in flight, so all of
	// them together create with the references' concurrency. Two Accepts
	// run at a time: with one per create slot, an offer's creates went one
	// at a time and each of its binds cost an Assignment write of its own
	// (0.65 against 0.36 per task), for no more tasks bound per second.
	workers := max(1, concurrency/n)
	for i := range n {
		// A connection of its own, as a framework in its own process has.
		d, err := sdk.Connect(ctx, sdk.Config{RESTConfig: kubeconn.Own(cfg), Namespace: fmt.Sprintf("bench-fw-%d", i), Name: fmt.Sprintf("bench-%d", i),
			MaxConcurrentCreates: workers})
		if err != nil {
			fws.stop()
			return nil, err
		}
		f := &benchFramework{name: d.Name(), d: d, res: res, dur: dur, ack: ack}
		share := tasks / n
		if i < tasks%n {
			share++
		}
		f.left.Store(int64(share))
		f.jobs = newJobQueue(ctx, min(2, workers), &fws.wg)
		f.quick = newJobQueue(ctx, 1, &fws.wg)
		fws.list = append(fws.list, f)
		fws.wg.Go(func() { f.unsuppressLoop(ctx) })
		fws.wg.Go(func() {
			if err := d.Run(ctx, f); err != nil && ctx.Err() == nil {
				fmt.Printf("framework %s: %v\n", f.name, err)
			}
		})
	}
	return fws, nil
}

// wanting says whether some framework has tasks with no offer to go on yet:
// only then is there a next framework for freed resources to be offered to.
func (fws *frameworks) wanting() bool {
	return slices.ContainsFunc(fws.list, func(f *benchFramework) bool { return f.left.Load() > 0 })
}

// lastCreate is when the last task create of any framework returned.
func (fws *frameworks) lastCreate() time.Time {
	var t time.Time
	for _, f := range fws.list {
		f.lastMu.Lock()
		if f.lastCrtAt.After(t) {
			t = f.lastCrtAt
		}
		f.lastMu.Unlock()
	}
	return t
}

func (fws *frameworks) sum(get func(*benchFramework) int64) int64 {
	var s int64
	for _, f := range fws.list {
		s += get(f)
	}
	return s
}

// stop closes the drivers (their Frameworks stay registered) and workers.
func (fws *frameworks) stop() {
	fws.cancel()
	for _, f := range fws.list {
		f.jobs.close()
		f.quick.close()
		f.d.Close()
	}
	fws.wg.Wait()
}

// waitAcks waits until the frameworks have answered an acknowledgement for
// each of the ended tasks, or d passes; it says whether they all were.
func (fws *frameworks) waitAcks(ctx context.Context, ended int, d time.Duration) bool {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, d, true, func(context.Context) (bool, error) {
		return fws.sum(func(f *benchFramework) int64 { return f.acked.Load() }) >= int64(ended), nil
	}) == nil
}
