package controllers

import (
	"context"
	"fmt"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

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
	var nss corev1.NamespaceList
	if err := r.List(ctx, &nss); err != nil {
		return fmt.Errorf("listing namespaces: %w", err)
	}
	for i := range nss.Items {
		e.onNamespace(&nss.Items[i], false)
	}
	var roles agorav1.ResourceRoleList
	if err := r.List(ctx, &roles); err != nil {
		return fmt.Errorf("listing resource roles: %w", err)
	}
	for i := range roles.Items {
		e.onRole(&roles.Items[i], false)
	}
	var agents agorav1.AgentList
	if err := r.List(ctx, &agents); err != nil {
		return fmt.Errorf("listing agents: %w", err)
	}
	for i := range agents.Items {
		obj := agents.Items[i] // a copy of its own: see below
		e.onAgent(&obj, false)
	}
	var assigns agorav1.AssignmentList
	if err := r.List(ctx, &assigns); err != nil {
		return fmt.Errorf("listing assignments: %w", err)
	}
	for i := range assigns.Items {
		obj := assigns.Items[i] // a copy of its own, as for agents
		e.onAssignment(&obj, false)
	}
	var leases coordv1.LeaseList
	if err := r.List(ctx, &leases); err != nil {
		return fmt.Errorf("listing leases: %w", err)
	}
	for i := range leases.Items {
		e.onLease(&leases.Items[i], false)
	}
	var fws agorav1.FrameworkList
	if err := r.List(ctx, &fws); err != nil {
		return fmt.Errorf("listing frameworks: %w", err)
	}
	for i := range fws.Items {
		e.onFramework(&fws.Items[i], false)
	}
	var offers agorav1.OfferList
	if err := r.List(ctx, &offers); err != nil {
		return fmt.Errorf("listing offers: %w", err)
	}
	for i := range offers.Items {
		obj := offers.Items[i] // a copy of its own: see below
		e.onOffer(&obj, false)
	}
	var tasks agorav1.TaskList
	if err := r.List(ctx, &tasks); err != nil {
		return fmt.Errorf("listing tasks: %w", err)
	}
	for i := range tasks.Items {
		obj := tasks.Items[i] // a copy of its own: see below
		e.onTask(&obj, false)
	}
	e.log.Info("rebuilt state from the API", "agents", len(agents.Items), "frameworks", len(fws.Items),
		"offers", len(offers.Items), "tasks", len(tasks.Items))
	return nil
}
