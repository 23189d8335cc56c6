// Package invariants checks Agora's invariants 1 and 2 while tests run. It
// watches every Offer, Task, Agent and Framework event and reports a
// violation the moment the API's state breaks one:
//
//  1. per agent, the resources of its live bound tasks plus its outstanding
//     offers never exceed its total (an outstanding offer counts what has
//     not been launched on it);
//  2. an offer is settled exactly once (an answered offer is never also
//     rescinded or expired); a task is bound only on an outstanding offer
//     of its framework and agent, within the offer's resources; a task
//     ended for an invalid offer or as invalid was never bound.
//
// Events of different kinds arrive on different watches, so the checker
// replays them in resourceVersion order (etcd's global revision): an event
// is applied once every watch has caught up with it, or after a short
// grace, so it never judges a state the apiserver did not hold.
package invariants

import (
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// grace is how long an event waits for the other watches to catch up. A
// watch that has nothing to send looks the same as one that lags, so
// every event waits this long while some kind is idle; on a loaded
// machine a watch can lag by more than a few hundred milliseconds, and
// an event applied ahead of an older one on a lagging watch would be a
// false violation.
const grace = 2 * time.Second

// syncWait is how long Sync lets events already sent arrive.
const syncWait = 400 * time.Millisecond

// Checker watches the API and records violations.
type Checker struct {
	report func(string)
	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	queue      eventHeap
	streamRV   []uint64
	seq        uint64
	violations []string
	processed  uint64

	agents     map[string]resources.Resources
	frameworks map[string]bool // key -> partition aware
	offers     map[string]*offer
	tasks      map[string]*task
}

type offer struct {
	uid, fw, agent string
	res            resources.Resources
	phase          agorav1.OfferPhase
	answer         *agorav1.OfferAnswer
	bound          map[string]resources.Resources // task key -> resources bound while outstanding
}

func (o *offer) outstanding() bool {
	return o.phase == "" || o.phase == agorav1.OfferOutstanding
}

// unlaunched is the offer's resources less those of the tasks bound on it
// (the whole offer if they do not fit, which checkBind reports).
func (o *offer) unlaunched() resources.Resources {
	left := o.res
	for _, r := range o.bound {
		var err error
		if left, err = left.Subtract(r); err != nil {
			return o.res
		}
	}
	return left
}

type task struct {
	uid, fw, agent      string
	offer, offerUID     string
	res                 resources.Resources
	bound               bool
	state               agorav1.TaskState
	reason              string
	createdAfterSettled bool
}

type event struct {
	rv      uint64
	seq     uint64
	at      time.Time
	obj     client.Object
	deleted bool
}

// Start watches the apiserver at cfg; report is called (from the checker's
// goroutine) with each violation, e.g. t.Errorf.
func Start(ctx context.Context, cfg *rest.Config, scheme client.Options, report func(string)) (*Checker, error) {
	c, err := client.NewWithWatch(cfg, scheme)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	ch := &Checker{
		report: report, cancel: cancel, done: make(chan struct{}),
		agents: map[string]resources.Resources{}, frameworks: map[string]bool{},
		offers: map[string]*offer{}, tasks: map[string]*task{},
	}
	lists := []client.ObjectList{&agorav1.AgentList{}, &agorav1.FrameworkList{}, &agorav1.OfferList{}, &agorav1.TaskList{}, &agorav1.AssignmentList{}}
	ch.streamRV = make([]uint64, len(lists))
	var ws []watch.Interface
	for i, l := range lists {
		if err := c.List(ctx, l); err != nil {
			cancel()
			return nil, fmt.Errorf("listing %T: %w", l, err)
		}
		rv := l.(metav1.ListInterface).GetResourceVersion()
		ch.streamRV[i] = parseRV(rv)
		items, _ := itemsOf(l)
		for _, it := range items {
			ch.push(i, it, false)
		}
		w, err := c.Watch(ctx, l, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("watching %T: %w", l, err)
		}
		ws = append(ws, w)
	}
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-w.ResultChan():
					if !ok {
						if ctx.Err() == nil {
							ch.violate(fmt.Sprintf("checker: watch %d closed; events may be missed", i))
						}
						return
					}
					obj, ok := ev.Object.(client.Object)
					if !ok {
						continue
					}
					if ev.Type == watch.Bookmark {
						ch.mu.Lock()
						ch.streamRV[i] = max(ch.streamRV[i], parseRV(obj.GetResourceVersion()))
						ch.mu.Unlock()
						continue
					}
					ch.push(i, obj, ev.Type == watch.Deleted)
				}
			}
		}()
	}
	go func() {
		defer close(ch.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-t.C:
				ch.process(false)
			}
		}
	}()
	return ch, nil
}

func itemsOf(l client.ObjectList) ([]client.Object, error) {
	var out []client.Object
	switch l := l.(type) {
	case *agorav1.AgentList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *agorav1.FrameworkList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *agorav1.OfferList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *agorav1.TaskList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *agorav1.AssignmentList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out, nil
}

func parseRV(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}

func (c *Checker) push(stream int, obj client.Object, deleted bool) {
	rv := parseRV(obj.GetResourceVersion())
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streamRV[stream] = max(c.streamRV[stream], rv)
	c.seq++
	heap.Push(&c.queue, &event{rv: rv, seq: c.seq, at: time.Now(), obj: obj, deleted: deleted})
}

// process applies queued events in resourceVersion order: those every
// watch has passed, and those older than grace (all when flush).
func (c *Checker) process(flush bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	low := c.streamRV[0]
	for _, v := range c.streamRV {
		low = min(low, v)
	}
	now := time.Now()
	for c.queue.Len() > 0 {
		ev := c.queue[0]
		if !flush && ev.rv > low && now.Sub(ev.at) < grace {
			break
		}
		heap.Pop(&c.queue)
		c.apply(ev)
		c.processed++
	}
}

// Sync waits until the events the apiserver had sent by now are applied.
func (c *Checker) Sync() {
	time.Sleep(syncWait)
	c.process(true)
}

// Violations returns what was found so far.
func (c *Checker) Violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.violations...)
}

// Stop ends the watches.
func (c *Checker) Stop() {
	c.cancel()
	<-c.done
}

func (c *Checker) violate(msg string) {
	c.violations = append(c.violations, msg)
	if c.report != nil {
		c.report(msg)
	}
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].rv != h[j].rv {
		return h[i].rv < h[j].rv
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
