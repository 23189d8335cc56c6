package controllers

import (
	"context"
	"fmt"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// leaseMetadata is the object the master watches Leases as: only their
// metadata, since a Lease is judged by its resourceVersion changing. Every
// renewal of every agent and framework (100 per second at 1,000 agents)
// then decodes and caches a few hundred bytes instead of the whole object.
func leaseMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(coordv1.SchemeGroupVersion.WithKind("Lease"))
	return m
}

// watch subscribes the engine to the manager's shared informers. Handlers
// only enqueue; the engine applies events in order on its goroutine. The
// informers replay what they hold when a handler is added; the books
// ignore versions older than what the rebuild read.
func (e *engine) watch(ctx context.Context) error {
	type sub struct {
		obj client.Object
		on  func(e *engine, obj client.Object, deleted bool)
	}
	subs := []sub{
		{&corev1.Namespace{}, func(e *engine, o client.Object, d bool) { e.onNamespace(o.(*corev1.Namespace), d) }},
		{&agorav1.ResourceRole{}, func(e *engine, o client.Object, d bool) { e.onRole(o.(*agorav1.ResourceRole), d) }},
		{&agorav1.Agent{}, func(e *engine, o client.Object, d bool) { e.onAgent(o.(*agorav1.Agent), d) }},
		{&agorav1.Assignment{}, func(e *engine, o client.Object, d bool) { e.onAssignment(o.(*agorav1.Assignment), d) }},
		{leaseMetadata(), func(e *engine, o client.Object, d bool) { e.onLease(o, d) }},
		{&agorav1.Framework{}, func(e *engine, o client.Object, d bool) { e.onFramework(o.(*agorav1.Framework), d) }},
		{&agorav1.Offer{}, func(e *engine, o client.Object, d bool) { e.onOffer(o.(*agorav1.Offer), d) }},
		{&agorav1.Task{}, func(e *engine, o client.Object, d bool) { e.onTask(o.(*agorav1.Task), d) }},
	}
	var regs []func()
	for _, s := range subs {
		inf, err := e.m.cache.GetInformer(ctx, s.obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", s.obj, err)
		}
		on := s.on
		push := func(obj any, deleted bool) {
			if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			o, ok := obj.(client.Object)
			if !ok {
				return
			}
			e.inbox.push(func(e *engine) { on(e, o, deleted) })
		}
		reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { push(obj, false) },
			UpdateFunc: func(_, obj any) { push(obj, false) },
			DeleteFunc: func(obj any) { push(obj, true) },
		})
		if err != nil {
			return err
		}
		regs = append(regs, func() { _ = inf.RemoveEventHandler(reg) })
	}
	// A deposed engine must stop hearing events; the informers outlive it.
	go func() {
		<-ctx.Done()
		for _, r := range regs {
			r()
		}
	}()
	return nil
}
