package sim

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/queue"
)

// taskHub is a diagnostic, not a simulation of anything real: one
// cluster-wide Task watch whose events it hands to each simulated agent by
// spec.agentName, so that the apiserver serves one Task watcher instead of
// one per agent. Custom resources have no watch-cache index, so each Task
// event otherwise wakes every agent's watcher; the scale benchmark uses the
// hub (--diagnostic-shared-task-watch) to measure what that fan-out costs.
// Its figures are not results: real agents each watch for themselves.
type taskHub struct {
	rc rest.Interface

	mu   sync.Mutex
	hist []hubEvent // every event seen, for watches that start behind; never trimmed, fine for a run of minutes
	subs map[string]map[*hubWatch]struct{}
}

type hubEvent struct {
	rv    uint64
	agent string
	ev    watch.Event
}

func newTaskHub(rc rest.Interface) *taskHub {
	return &taskHub{rc: rc, subs: map[string]map[*hubWatch]struct{}{}}
}

// start lists every Task for a starting resourceVersion, then watches from
// it until ctx ends, reopening the watch where it stopped.
func (h *taskHub) start(ctx context.Context) error {
	var l agorav1.TaskList
	if err := h.rc.Get().Resource("tasks").Do(ctx).Into(&l); err != nil {
		return fmt.Errorf("sim: hub list: %w", err)
	}
	go h.run(ctx, l.ResourceVersion)
	return nil
}

func (h *taskHub) run(ctx context.Context, rv string) {
	for ctx.Err() == nil {
		opts := metav1.ListOptions{Watch: true, ResourceVersion: rv, AllowWatchBookmarks: true}
		w, err := h.rc.Get().Resource("tasks").VersionedParams(&opts, metav1.ParameterCodec).Watch(ctx)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			t, ok := ev.Object.(*agorav1.Task)
			if !ok {
				continue // errors end the watch; it is reopened from rv
			}
			rv = t.ResourceVersion
			if ev.Type != watch.Bookmark {
				h.publish(ev, t)
			}
		}
		w.Stop()
	}
}

func (h *taskHub) publish(ev watch.Event, t *agorav1.Task) {
	n, _ := strconv.ParseUint(t.ResourceVersion, 10, 64)
	e := hubEvent{rv: n, agent: t.Spec.AgentName, ev: ev}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hist = append(h.hist, e)
	for w := range h.subs[e.agent] {
		w.q.Push(e.ev)
	}
}

// watch serves one agent's watch from resourceVersion opts.ResourceVersion:
// the events after it that the hub has, then new ones.
func (h *taskHub) watch(agent string) func(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		from, _ := strconv.ParseUint(opts.ResourceVersion, 10, 64)
		w := &hubWatch{q: queue.New[watch.Event]()}
		w.end = sync.OnceFunc(func() {
			h.mu.Lock()
			delete(h.subs[agent], w)
			h.mu.Unlock()
			w.q.Close()
		})
		h.mu.Lock()
		for _, e := range h.hist {
			if e.agent == agent && e.rv > from {
				w.q.Push(e.ev)
			}
		}
		if h.subs[agent] == nil {
			h.subs[agent] = map[*hubWatch]struct{}{}
		}
		h.subs[agent][w] = struct{}{}
		h.mu.Unlock()
		w.unhook = context.AfterFunc(ctx, w.end)
		return w, nil
	}
}

// hubWatch is one agent's watch: an unbounded queue, so that a slow agent
// never holds up the hub. It ends with Stop or with its context.
type hubWatch struct {
	q      *queue.Unbounded[watch.Event]
	end    func()      // unsubscribes and closes the queue, once
	unhook func() bool // drops the context's call of end
}

func (w *hubWatch) ResultChan() <-chan watch.Event { return w.q.C() }

func (w *hubWatch) Stop() {
	w.unhook()
	w.end()
}
