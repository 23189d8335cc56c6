package controllers

import (
	"context"
	"fmt"
	"sync/atomic"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// rebuildPageSize is how many objects one request of the rebuild reads. A
// single list of 100,000 Tasks ran past the apiserver's 60 s request
// timeout on a busy machine, and the master could never start; pages of a
// list share its first page's snapshot (continue tokens), so the rebuild
// stays a consistent read. Tests set it smaller (export_test.go).
var rebuildPageSize atomic.Int64

func init() { rebuildPageSize.Store(500) }

// rebuild reads everything the master needs straight from the apiserver
// (consistent lists, not the cache, which may lag behind what the previous
// leader wrote) and replays it through the same handlers as live events:
// outstanding offers and bound live tasks are booked (AddAllocation),
// answered offers are settled, unexpired decline filters are reinstalled.
// Every agent and framework starts with a full timeout from now.
//
// Every object is handed over as a copy of its own, not as a
// pointer into its list: the books switch to the informers' copies when
// those replay the same versions, and one pointer left into a list would
// keep all of it alive.
func (e *engine) rebuild(ctx context.Context) error {
	r := e.m.reader
	e.unfit = &rebuildUnfit{}
	defer func() { e.unfit = nil }()
	n := map[string]int{}
	steps := []struct {
		what   string
		replay func() (int, error)
	}{
		{"namespaces", func() (int, error) {
			return replay(ctx, r, func(l *corev1.NamespaceList) []corev1.Namespace { return l.Items },
				func(o *corev1.Namespace) { e.onNamespace(o, false) })
		}},
		{"resource roles", func() (int, error) {
			return replay(ctx, r, func(l *agorav1.ResourceRoleList) []agorav1.ResourceRole { return l.Items },
				func(o *agorav1.ResourceRole) { e.onRole(o, false) })
		}},
		{"agents", func() (int, error) {
			return replay(ctx, r, func(l *agorav1.AgentList) []agorav1.Agent { return l.Items },
				func(o *agorav1.Agent) { e.onAgent(o, false) })
		}},
		// Before the tasks: a task listed there is bound (its entry is the
		// bind), and the tasks' replay judges the unbound ones.
		{"assignments", func() (int, error) {
			return replay(ctx, r, func(l *agorav1.AssignmentList) []agorav1.Assignment { return l.Items },
				func(o *agorav1.Assignment) { e.onAssignment(o, false) })
		}},
		{"leases", func() (int, error) {
			return replay(ctx, r, func(l *coordv1.LeaseList) []coordv1.Lease { return l.Items },
				func(o *coordv1.Lease) { e.onLease(o, false) })
		}},
		{"frameworks", func() (int, error) {
			return replay(ctx, r, func(l *agorav1.FrameworkList) []agorav1.Framework { return l.Items },
				func(o *agorav1.Framework) { e.onFramework(o, false) })
		}},
		{"offers", func() (int, error) {
			return replay(ctx, r, func(l *agorav1.OfferList) []agorav1.Offer { return l.Items },
				func(o *agorav1.Offer) { e.onOffer(o, false) })
		}},
		{"tasks", func() (int, error) {
			return replay(ctx, r, func(l *agorav1.TaskList) []agorav1.Task { return l.Items },
				func(o *agorav1.Task) { e.onTask(o, false) })
		}},
	}
	for _, s := range steps {
		count, err := s.replay()
		if err != nil {
			return fmt.Errorf("listing %s: %w", s.what, err)
		}
		n[s.what] = count
	}
	e.fitUnfit()
	e.log.Info("rebuilt state from the API", "agents", n["agents"], "frameworks", n["frameworks"],
		"offers", n["offers"], "tasks", n["tasks"])
	return nil
}

// replay lists in pages of rebuildPageSize and hands every item of every
// page to on, as a copy of its own (see rebuild). It returns how many
// items it handed over.
func replay[T any, PL interface {
	*L
	client.ObjectList
}, L any](ctx context.Context, r client.Reader, items func(PL) []T, on func(*T)) (int, error) {
	total, token := 0, ""
	for {
		l := PL(new(L))
		if err := r.List(ctx, l, client.Limit(rebuildPageSize.Load()), client.Continue(token)); err != nil {
			return total, err
		}
		page := items(l)
		for i := range page {
			obj := page[i]
			on(&obj)
		}
		total += len(page)
		if token = l.GetContinue(); token == "" {
			return total, nil
		}
	}
}
