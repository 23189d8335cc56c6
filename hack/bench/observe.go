package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/kubeconn"
	"github.com/agora-sched/agora/pkg/sdk"
)

// observer watches every Task and Offer, as a framework or operator would,
// and times what it sees on its own clock: creationTimestamp has a 1 s
// resolution, so latencies are measured from watch receipt to watch receipt.
type observer struct {
	// wanting says whether some framework has tasks with no offer yet:
	// offer latency is only meaningful then (freed resources nobody wants
	// are not offered to suppressed frameworks).
	wanting func() bool

	mu        sync.Mutex
	tasks     map[string]*taskTimes // by UID
	freed     map[string][]time.Time
	bound     int
	running   int
	ended     int
	finished  int
	onReal    int // tasks finished on the real agent
	byState   map[agorav1.TaskState]int
	firstSeen time.Time
	lastBound time.Time
	lastEnded time.Time
	offers    int
	unmatched int      // resources freed while wanted and never re-offered
	samples   []string // why some tasks did not finish

	listedFirst      map[string]bool      // task UIDs listed in an Assignment before the Task was seen
	offerAdded       map[string]time.Time // offer name -> seen, until a task names it
	offerToTask      latencies            // offer seen -> first task on it seen
	createdToRunning latencies
	createdToBound   latencies
	boundToRunning   latencies // the agent's part of created -> RUNNING
	offerLatency     latencies
	allFinished      chan struct{}
	want             int
}

type taskTimes struct {
	added, bound, running, ended time.Time
}

func newObserver(want int, wanting func() bool) *observer {
	return &observer{
		wanting: wanting, want: want,
		tasks: map[string]*taskTimes{}, freed: map[string][]time.Time{}, offerAdded: map[string]time.Time{},
		listedFirst: map[string]bool{},
		byState:     map[agorav1.TaskState]int{}, allFinished: make(chan struct{}),
	}
}

// start runs the informers until ctx ends and returns once they synced.
func (o *observer) start(ctx context.Context, cfg *rest.Config) error {
	// Its own connection: the observer's watches must not queue behind
	// the frameworks' requests, or the latencies would include that wait.
	c, err := cache.New(kubeconn.Own(cfg), cache.Options{Scheme: sdk.Scheme(), DefaultTransform: cache.TransformStripManagedFields()})
	if err != nil {
		return err
	}
	// Offers count when added; Tasks and Assignments (a task is bound when
	// its agent's Assignment lists it) on every version.
	for _, w := range []struct {
		obj     client.Object
		on      func(any)
		updates bool
	}{
		{&agorav1.Task{}, o.onTask, true},
		{&agorav1.Offer{}, o.onOffer, false},
		{&agorav1.Assignment{}, o.onAssignment, true},
	} {
		inf, err := c.GetInformer(ctx, w.obj)
		if err != nil {
			return err
		}
		h := toolscache.ResourceEventHandlerFuncs{AddFunc: w.on}
		if w.updates {
			h.UpdateFunc = func(_, obj any) { w.on(obj) }
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("observer: informers did not sync")
	}
	return nil
}

func (o *observer) onTask(obj any) {
	t, ok := obj.(*agorav1.Task)
	if !ok || t.Labels[preloadLabel] != "" {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	tt := o.tasks[string(t.UID)]
	if tt == nil {
		tt = &taskTimes{added: now}
		o.tasks[string(t.UID)] = tt
		if o.firstSeen.IsZero() {
			o.firstSeen = now
		}
		if at, ok := o.offerAdded[t.Spec.OfferRef.Name]; ok {
			o.offerToTask.add(now.Sub(at))
			delete(o.offerAdded, t.Spec.OfferRef.Name)
		}
	}
	st := t.Status.State
	if t.Status.BindTime != nil || st != "" || o.listedFirst[string(t.UID)] {
		delete(o.listedFirst, string(t.UID))
		o.markBound(tt, now)
	}
	// A task that ends before its RUNNING write went out is reported
	// terminal with its startTime: it ran, so that is when RUNNING was seen.
	if tt.running.IsZero() && (st == agorav1.TaskRunning || (sdk.IsTerminal(st) && t.Status.StartTime != nil)) {
		tt.running = now
		o.running++
		o.createdToRunning.add(now.Sub(tt.added))
		if !tt.bound.IsZero() {
			o.boundToRunning.add(now.Sub(tt.bound))
		}
	}
	if tt.ended.IsZero() && sdk.IsTerminal(st) {
		tt.ended = now
		o.ended++
		o.lastEnded = now
		o.byState[st]++
		if st != agorav1.TaskFinished && len(o.samples) < 5 {
			o.samples = append(o.samples, fmt.Sprintf("%s %s %s: %s", t.Name, st, t.Status.Reason, t.Status.Message))
		}
		if o.wanting() && t.Spec.AgentName != "" {
			o.freed[t.Spec.AgentName] = append(o.freed[t.Spec.AgentName], now)
		}
		if st == agorav1.TaskFinished {
			if t.Spec.AgentName == realAgentName {
				o.onReal++
			}
			o.finished++
			if o.finished == o.want {
				close(o.allFinished)
			}
		}
	}
}

func (o *observer) onAssignment(obj any) {
	a, ok := obj.(*agorav1.Assignment)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, at := range a.Spec.Tasks {
		if tt := o.tasks[string(at.UID)]; tt != nil {
			o.markBound(tt, now)
		} else {
			o.listedFirst[string(at.UID)] = true
		}
	}
}

func (o *observer) markBound(tt *taskTimes, now time.Time) {
	if !tt.bound.IsZero() {
		return
	}
	tt.bound = now
	o.bound++
	o.lastBound = now
	o.createdToBound.add(now.Sub(tt.added))
}

// onOffer ends the wait of every resource release on the offer's agent:
// the released resources are what (part of) this offer carries.
func (o *observer) onOffer(obj any) {
	of, ok := obj.(*agorav1.Offer)
	if !ok {
		return
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.offers++
	o.offerAdded[of.Name] = now
	for _, at := range o.freed[of.Spec.AgentName] {
		o.offerLatency.add(now.Sub(at))
	}
	delete(o.freed, of.Spec.AgentName)
}

// snapshot of the counters.
type obsCounts struct {
	bound, running, ended, finished, offers, unmatched int
	onReal                                             int
	firstSeen, lastBound, lastEnded                    time.Time
	byState                                            map[agorav1.TaskState]int
	samples                                            []string
}

func (o *observer) counts() obsCounts {
	o.mu.Lock()
	defer o.mu.Unlock()
	c := obsCounts{bound: o.bound, running: o.running, ended: o.ended, finished: o.finished, onReal: o.onReal, offers: o.offers,
		firstSeen: o.firstSeen, lastBound: o.lastBound, lastEnded: o.lastEnded, byState: map[agorav1.TaskState]int{}}
	for k, v := range o.byState {
		c.byState[k] = v
	}
	c.samples = append(c.samples, o.samples...)
	for _, ts := range o.freed {
		c.unmatched += len(ts)
	}
	return c
}
