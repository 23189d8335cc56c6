package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Handler receives the framework's events. The driver calls it from one
// goroutine, in order, so a handler needs no locking of its own state; it
// may call the driver (Accept, Decline, Kill, ...) from inside a callback.
type Handler interface {
	// OfferReceived is called once per new outstanding offer.
	OfferReceived(ctx context.Context, d *Driver, offer *agorav1.Offer)
	// OfferRescinded is called when an offer delivered earlier can no longer
	// be used: rescinded, expired or deleted before this driver answered it.
	OfferRescinded(ctx context.Context, d *Driver, offer *agorav1.Offer)
	// TaskUpdate is called when a task's state, reason or health changes,
	// and for every task with a state when Run starts or Reconcile is called.
	TaskUpdate(ctx context.Context, d *Driver, task *agorav1.Task)
}

// HandlerFuncs adapts functions to a Handler; nil functions ignore the event.
type HandlerFuncs struct {
	Offer   func(ctx context.Context, d *Driver, offer *agorav1.Offer)
	Rescind func(ctx context.Context, d *Driver, offer *agorav1.Offer)
	Task    func(ctx context.Context, d *Driver, task *agorav1.Task)
}

// OfferReceived implements Handler.
func (h HandlerFuncs) OfferReceived(ctx context.Context, d *Driver, o *agorav1.Offer) {
	if h.Offer != nil {
		h.Offer(ctx, d, o)
	}
}

// OfferRescinded implements Handler.
func (h HandlerFuncs) OfferRescinded(ctx context.Context, d *Driver, o *agorav1.Offer) {
	if h.Rescind != nil {
		h.Rescind(ctx, d, o)
	}
}

// TaskUpdate implements Handler.
func (h HandlerFuncs) TaskUpdate(ctx context.Context, d *Driver, t *agorav1.Task) {
	if h.Task != nil {
		h.Task(ctx, d, t)
	}
}

// Driver is a connected framework scheduler (Mesos' SchedulerDriver): it
// holds the Framework's registration and Lease, delivers events to a Handler
// and answers offers.
type Driver struct {
	cfg    Config
	client client.Client
	scheme *k8sruntime.Scheme
	fwUID  types.UID
	lease  string

	mu          sync.Mutex
	fw          *agorav1.Framework
	outstanding map[types.UID]bool      // offers delivered and not answered here
	answered    map[types.UID]bool      // offers answered here, until deleted
	tasks       map[types.UID]taskState // last delivered state per task
	leaseObj    *coordinationv1.Lease
	running     bool
	creates     chan struct{} // a slot per Task create in flight

	q       *queue
	stopRun chan struct{}
	stopped sync.Once
	bg      sync.WaitGroup
	cancel  context.CancelFunc
}

// taskState is what a TaskUpdate is delivered for.
type taskState struct {
	state   agorav1.TaskState
	reason  string
	healthy int8 // -1 unknown, 0 unhealthy, 1 healthy
}

func stateOf(t *agorav1.Task) taskState {
	s := taskState{state: t.Status.State, reason: t.Status.Reason, healthy: -1}
	if t.Status.Healthy != nil {
		s.healthy = 0
		if *t.Status.Healthy {
			s.healthy = 1
		}
	}
	return s
}

// Scheme returns a scheme with the types the SDK reads and writes.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := agorav1.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := coordinationv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// Connect registers the framework, or adopts the existing Framework object
// of that name without changing it (a restarted scheduler keeps its tasks),
// renews its Lease once and then every RenewInterval until Close or
// Teardown. ctx bounds only the calls Connect makes.
func Connect(ctx context.Context, cfg Config) (*Driver, error) {
	if err := cfg.complete(); err != nil {
		return nil, err
	}
	scheme := Scheme()
	if cfg.RESTConfig.QPS == 0 && cfg.RESTConfig.RateLimiter == nil {
		// A framework launching many tasks per offer would otherwise be held
		// to client-go's default of a few requests per second.
		cfg.RESTConfig = rest.CopyConfig(cfg.RESTConfig)
		cfg.RESTConfig.QPS, cfg.RESTConfig.Burst = 100, 200
	}
	c, err := client.New(cfg.RESTConfig, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("sdk: creating client: %w", err)
	}
	d := &Driver{
		cfg: cfg, client: c, scheme: scheme,
		outstanding: map[types.UID]bool{}, answered: map[types.UID]bool{}, tasks: map[types.UID]taskState{},
		q: newQueue(), stopRun: make(chan struct{}), creates: make(chan struct{}, cfg.MaxConcurrentCreates),
	}
	fw, err := d.register(ctx)
	if err != nil {
		return nil, err
	}
	d.fw, d.fwUID = fw, fw.UID
	d.lease = fw.Spec.LeaseName
	if d.lease == "" {
		d.lease = fw.Name
	}
	if err := d.renewLease(ctx); err != nil {
		return nil, fmt.Errorf("sdk: creating the framework's Lease %s/%s: %w", cfg.Namespace, d.lease, err)
	}
	bgCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.bg.Add(1)
	go func() { defer d.bg.Done(); d.renewLoop(bgCtx) }()
	return d, nil
}

func (d *Driver) register(ctx context.Context) (*agorav1.Framework, error) {
	key := client.ObjectKey{Namespace: d.cfg.Namespace, Name: d.cfg.Name}
	fw := &agorav1.Framework{}
	err := d.client.Get(ctx, key, fw)
	if apierrors.IsNotFound(err) {
		fw = &agorav1.Framework{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: d.cfg.Labels},
			Spec: agorav1.FrameworkSpec{
				Roles: d.cfg.Roles, Capabilities: d.cfg.Capabilities, User: d.cfg.User,
			},
		}
		if d.cfg.FailoverTimeout > 0 {
			fw.Spec.FailoverTimeout = &metav1.Duration{Duration: d.cfg.FailoverTimeout}
		}
		err = d.client.Create(ctx, fw)
		if apierrors.IsAlreadyExists(err) {
			// Another instance registered it first: adopt theirs.
			err = d.client.Get(ctx, key, fw)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sdk: registering framework %s: %w", key, err)
	}
	if fw.DeletionTimestamp != nil || fw.Status.Phase == agorav1.FrameworkTornDown {
		return nil, fmt.Errorf("%w: %s", ErrFrameworkTornDown, key)
	}
	return fw, nil
}

// Name is the Framework's name.
func (d *Driver) Name() string { return d.cfg.Name }

// Namespace is the Framework's namespace.
func (d *Driver) Namespace() string { return d.cfg.Namespace }

// Client is the driver's Kubernetes client, for what the SDK does not wrap.
func (d *Driver) Client() client.Client { return d.client }

// Framework returns the Framework as the driver last read or wrote it.
func (d *Driver) Framework() *agorav1.Framework {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fw.DeepCopy()
}

// Run watches the framework's Offers and Tasks and calls h until ctx is
// done (it returns ctx's error), Stop is called (it returns nil), or the
// Framework is torn down or deleted (it returns ErrFrameworkTornDown, as
// Mesos' driver reports a removed framework). Only one Run may be active
// at a time.
func (d *Driver) Run(ctx context.Context, h Handler) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("sdk: Run is already running")
	}
	d.running = true
	d.mu.Unlock()
	defer func() { d.mu.Lock(); d.running = false; d.mu.Unlock() }()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sel := fields.OneTermEqualSelector("spec.frameworkName", d.cfg.Name)
	c, err := cache.New(d.cfg.RESTConfig, cache.Options{
		Scheme:            d.scheme,
		DefaultNamespaces: map[string]cache.Config{d.cfg.Namespace: {}},
		ByObject: map[client.Object]cache.ByObject{
			&agorav1.Offer{}:     {Field: sel},
			&agorav1.Task{}:      {Field: sel},
			&agorav1.Framework{}: {Field: fields.OneTermEqualSelector("metadata.name", d.cfg.Name)},
		},
	})
	if err != nil {
		return fmt.Errorf("sdk: creating informers: %w", err)
	}
	offers, err := c.GetInformer(ctx, &agorav1.Offer{})
	if err != nil {
		return err
	}
	tasks, err := c.GetInformer(ctx, &agorav1.Task{})
	if err != nil {
		return err
	}
	if _, err := offers.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { d.onOffer(obj, false) },
		UpdateFunc: func(_, obj any) { d.onOffer(obj, false) },
		DeleteFunc: func(obj any) { d.onOffer(obj, true) },
	}); err != nil {
		return err
	}
	if _, err := tasks.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { d.onTask(obj, false) },
		UpdateFunc: func(_, obj any) { d.onTask(obj, false) },
		DeleteFunc: func(obj any) { d.onTask(obj, true) },
	}); err != nil {
		return err
	}
	fws, err := c.GetInformer(ctx, &agorav1.Framework{})
	if err != nil {
		return err
	}
	if _, err := fws.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { d.onFramework(obj, false) },
		UpdateFunc: func(_, obj any) { d.onFramework(obj, false) },
		DeleteFunc: func(obj any) { d.onFramework(obj, true) },
	}); err != nil {
		return err
	}
	cacheErr := make(chan error, 1)
	go func() { cacheErr <- c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("sdk: informers did not sync: %w", <-cacheErr)
	}
	for {
		for _, ev := range d.q.drain() {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select {
			case <-d.stopRun:
				return nil
			default:
			}
			switch ev.kind {
			case evOffer:
				h.OfferReceived(ctx, d, ev.offer)
			case evRescind:
				h.OfferRescinded(ctx, d, ev.offer)
			case evTask:
				h.TaskUpdate(ctx, d, ev.task)
			case evTornDown:
				return fmt.Errorf("%w: %s/%s", ErrFrameworkTornDown, d.cfg.Namespace, d.cfg.Name)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.stopRun:
			return nil
		case err := <-cacheErr:
			// The informers stop when ctx ends too, and select may pick
			// this case first: that is the caller's cancellation.
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err == nil {
				err = errors.New("informers stopped")
			}
			return fmt.Errorf("sdk: %w", err)
		case <-d.q.signal:
		}
	}
}

// Stop makes Run return nil after the callback in progress; the Lease keeps
// being renewed until Close.
func (d *Driver) Stop() { d.stopped.Do(func() { close(d.stopRun) }) }

// Close stops Run and the Lease renewals and returns. The Framework, its
// Lease and its tasks stay: within failoverTimeout a new scheduler process
// can Connect and adopt them (Mesos' failover).
func (d *Driver) Close() {
	d.Stop()
	d.cancel()
	d.bg.Wait()
}

// Teardown deletes the Framework (Mesos' TEARDOWN): the master kills its
// tasks and rescinds its offers. It then closes the driver.
func (d *Driver) Teardown(ctx context.Context) error {
	fw := &agorav1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: d.cfg.Namespace, Name: d.cfg.Name}}
	err := d.client.Delete(ctx, fw, client.Preconditions{UID: &d.fwUID})
	d.Close()
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("sdk: tearing down framework %s: %w", d.cfg.Name, err)
	}
	return nil
}

func (d *Driver) onOffer(obj any, deleted bool) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	o, ok := obj.(*agorav1.Offer)
	if !ok || o.Spec.FrameworkName != d.cfg.Name {
		return
	}
	open := !deleted && o.Spec.Answer == nil &&
		(o.Status.Phase == "" || o.Status.Phase == agorav1.OfferOutstanding)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case open && !d.outstanding[o.UID] && !d.answered[o.UID]:
		d.outstanding[o.UID] = true
		d.q.push(event{kind: evOffer, offer: o.DeepCopy()})
	case !open && d.outstanding[o.UID]:
		delete(d.outstanding, o.UID)
		d.q.push(event{kind: evRescind, offer: o.DeepCopy()})
	}
	if deleted {
		delete(d.answered, o.UID)
	}
}

func (d *Driver) onFramework(obj any, deleted bool) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	fw, ok := obj.(*agorav1.Framework)
	if !ok || fw.UID != d.fwUID {
		return // a newer Framework of the same name is not ours
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !deleted {
		d.fw = fw.DeepCopy()
	}
	if deleted || fw.DeletionTimestamp != nil || fw.Status.Phase == agorav1.FrameworkTornDown {
		d.q.push(event{kind: evTornDown})
	}
}

func (d *Driver) onTask(obj any, deleted bool) {
	if t, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	t, ok := obj.(*agorav1.Task)
	if !ok || t.Spec.FrameworkName != d.cfg.Name {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if deleted {
		delete(d.tasks, t.UID)
		return
	}
	if t.Status.State == "" {
		return // no state yet (its agent reports the first): nothing to report
	}
	s := stateOf(t)
	if prev, seen := d.tasks[t.UID]; seen && prev == s {
		return
	}
	d.tasks[t.UID] = s
	d.q.push(event{kind: evTask, task: t.DeepCopy()})
}

type eventKind int

const (
	evOffer eventKind = iota
	evRescind
	evTask
	evTornDown
)

type event struct {
	kind  eventKind
	offer *agorav1.Offer
	task  *agorav1.Task
}

// queue is unbounded so informer callbacks never block on a slow handler,
// and a handler can enqueue (Reconcile) without deadlocking on itself.
type queue struct {
	mu     sync.Mutex
	items  []event
	signal chan struct{}
}

func newQueue() *queue { return &queue{signal: make(chan struct{}, 1)} }

func (q *queue) push(e event) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *queue) drain() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.items
	q.items = nil
	return items
}
