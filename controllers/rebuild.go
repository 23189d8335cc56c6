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
// Agents, Offers and Tasks are handed over as copies of their own, not as
// pointers into the lists: the books switch to the informers' copies when
// those replay the same versions, and one pointer left into a list would
// keep all of it alive.
func (e *engine) rebuild(ctx context.Context) error {
	r := e.m.reader
	n := map[string]int{}
	steps := []struct {
		what string
		list func() client.ObjectList
		each func(client.ObjectList) int
	}{
		{"namespaces", func() client.ObjectList { return &corev1.NamespaceList{} }, func(l client.ObjectList) int {
			items := l.(*corev1.NamespaceList).Items
			for i := range items {
				e.onNamespace(&items[i], false)
			}
			return len(items)
		}},
		{"resource roles", func() client.ObjectList { return &agorav1.ResourceRoleList{} }, func(l client.ObjectList) int {
			items := l.(*agorav1.ResourceRoleList).Items
			for i := range items {
				e.onRole(&items[i], false)
			}
			return len(items)
		}},
		{"agents", func() client.ObjectList { return &agorav1.AgentList{} }, func(l client.ObjectList) int {
			items := l.(*agorav1.AgentList).Items
			for i := range items {
				obj := items[i] // a copy of its own: see above
				e.onAgent(&obj, false)
			}
			return len(items)
		}},
		{"assignments", func() client.ObjectList { return &agorav1.AssignmentList{} }, func(l client.ObjectList) int {
			items := l.(*agorav1.AssignmentList).Items
			for i := range items {
				obj := items[i]
				e.onAssignment(&obj, false)
			}
			return len(items)
		}},
		{"leases", func() client.ObjectList { return &coordv1.LeaseList{} }, func(l client.ObjectList) int {
			items := l.(*coordv1.LeaseList).Items
			for i := range items {
				e.onLease(&items[i], false)
			}
			return len(items)
		}},
		{"frameworks", func() client.ObjectList { return &agorav1.FrameworkList{} }, func(l client.ObjectList) int {
			items := l.(*agorav1.FrameworkList).Items
			for i := range items {
				e.onFramework(&items[i], false)
			}
			return len(items)
		}},
		{"offers", func() client.ObjectList { return &agorav1.OfferList{} }, func(l client.ObjectList) int {
			items := l.(*agorav1.OfferList).Items
			for i := range items {
				obj := items[i]
				e.onOffer(&obj, false)
			}
			return len(items)
		}},
		{"tasks", func() client.ObjectList { return &agorav1.TaskList{} }, func(l client.ObjectList) int {
			items := l.(*agorav1.TaskList).Items
			for i := range items {
				obj := items[i]
				e.onTask(&obj, false)
			}
			return len(items)
		}},
	}
	for _, s := range steps {
		count, err := listPages(ctx, r, s.list, s.each)
		if err != nil {
			return fmt.Errorf("listing %s: %w", s.what, err)
		}
		n[s.what] = count
	}
	e.log.Info("rebuilt state from the API", "agents", n["agents"], "frameworks", n["frameworks"],
		"offers", n["offers"], "tasks", n["tasks"])
	return nil
}

// listPages lists in pages of rebuildPageSize and hands each page to each,
// which returns how many objects it took.
func listPages(ctx context.Context, r client.Reader, newList func() client.ObjectList, each func(client.ObjectList) int) (int, error) {
	total, token := 0, ""
	for {
		l := newList()
		if err := r.List(ctx, l, client.Limit(rebuildPageSize.Load()), client.Continue(token)); err != nil {
			return total, err
		}
		total += each(l)
		if token = l.GetContinue(); token == "" {
			return total, nil
		}
	}
}
