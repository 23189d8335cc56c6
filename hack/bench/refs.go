package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// fanOut runs do(i) for i in [0, n) on concurrency goroutines, or until
// deadline (zero: none), and returns how many calls succeeded.
func fanOut(ctx context.Context, n, concurrency int, deadline time.Time, do func(ctx context.Context, i int) error) (ok int64, firstErr error) {
	var next, okN atomic.Int64
	var once sync.Once
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if (n > 0 && i >= n) || ctx.Err() != nil || (!deadline.IsZero() && time.Now().After(deadline)) {
					return
				}
				if err := do(ctx, i); err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				okN.Add(1)
			}
		})
	}
	wg.Wait()
	return okN.Load(), firstErr
}

// ceilingResult is a raw create rate, and the CPU cores each control
// plane process used while it was measured.
type ceilingResult struct {
	kind    string
	created int64
	elapsed time.Duration
	cores   map[string]float64
	err     error
}

func (c ceilingResult) rate() float64 { return float64(c.created) / c.elapsed.Seconds() }

// measureCeiling creates small ConfigMaps, then Task objects (the same CRD,
// with its CEL rules, naming no live agent or offer: nothing else reacts),
// for d each with concurrency goroutines: the apiserver's raw create rate.
// The CPU of procs is sampled around each kind, so that the apiserver's
// load while flooded can be set beside its load during Agora's phase.
func measureCeiling(ctx context.Context, cs kubernetes.Interface, c client.Client, ns string, concurrency int, d time.Duration, procs map[string]int) []ceilingResult {
	measure := func(kind string, create func(ctx context.Context, i int) error) ceilingResult {
		cpu0, start := cpuOf(procs), time.Now()
		n, err := fanOut(ctx, 0, concurrency, start.Add(d), create)
		elapsed := time.Since(start)
		return ceilingResult{kind: kind, created: n, elapsed: elapsed, cores: coresSince(procs, cpu0, elapsed), err: err}
	}
	cpu, mem := resource.MustParse("1"), resource.MustParse("1Gi")
	return []ceilingResult{
		measure("ConfigMap", func(ctx context.Context, i int) error {
			_, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)},
				Data:       map[string]string{"k": "v"},
			}, metav1.CreateOptions{})
			return err
		}),
		measure("Task", func(ctx context.Context, i int) error {
			return c.Create(ctx, &agorav1.Task{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("task-%d", i)},
				Spec: agorav1.TaskSpec{
					FrameworkName: "ceiling",
					OfferRef:      agorav1.OfferReference{Name: "ceiling-offer", UID: "00000000-0000-0000-0000-000000000000"},
					AgentName:     "no-such-agent",
					Resources:     agorav1.Resources{CPUs: &cpu, Mem: &mem},
					Command:       agorav1.CommandInfo{Shell: ptr.To("true")},
				},
			})
		}),
	}
}

// schedResult is the kube-scheduler reference run.
type schedResult struct {
	nodes, pods, bound int
	elapsed            time.Duration // first create to last bind
	createdToBound     *latencies
	writes             writeCounts
	err                error
}

func (r schedResult) rate() float64 { return float64(r.bound) / r.elapsed.Seconds() }

// measureScheduler registers nodes fake Ready Nodes (heartbeating through
// their Leases every renew, as kubelets do, so the node lifecycle
// controller leaves them alone), then creates pods of the tasks' shape with
// concurrency goroutines while kube-scheduler binds them, timing
// created -> bound from a pod watch.
func measureScheduler(ctx context.Context, cs kubernetes.Interface, nodes, pods, concurrency int, cpu, mem resource.Quantity, renew time.Duration) schedResult {
	r := schedResult{nodes: nodes, pods: pods, createdToBound: &latencies{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const ns = "bench-pods"
	if _, err := fanOut(ctx, nodes, concurrency, time.Time{}, func(ctx context.Context, i int) error {
		return createNode(ctx, cs, fmt.Sprintf("fake-node-%d", i))
	}); err != nil {
		r.err = fmt.Errorf("creating nodes: %w", err)
		return r
	}
	var hb sync.WaitGroup
	defer func() { cancel(); hb.Wait() }()
	hb.Go(func() { renewNodeLeases(ctx, cs, nodes, renew) })
	// Pods need the namespace's default ServiceAccount (admission checks it).
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	}); err != nil {
		r.err = fmt.Errorf("waiting for ServiceAccount %s/default: %w", ns, err)
		return r
	}

	var mu sync.Mutex
	added := map[string]time.Time{}
	boundAt := map[string]bool{}
	var lastBound time.Time
	allBound := make(chan struct{})
	f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(ns))
	inf := f.Core().V1().Pods().Informer()
	on := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if _, seen := added[p.Name]; !seen {
			added[p.Name] = now
		}
		if p.Spec.NodeName != "" && !boundAt[p.Name] {
			boundAt[p.Name] = true
			lastBound = now
			r.createdToBound.add(now.Sub(added[p.Name]))
			if len(boundAt) == pods {
				close(allBound)
			}
		}
	}
	_, _ = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{AddFunc: on, UpdateFunc: func(_, o any) { on(o) }})
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())
	// Let the scheduler's node cache fill before the clock starts.
	if err := waitSchedulerNodes(ctx, cs, nodes); err != nil {
		r.err = err
		return r
	}

	before, err := scrapeWrites(ctx, cs)
	if err != nil {
		r.err = err
		return r
	}
	// The Agora phase scrapes the apiserver's /metrics (megabytes of text)
	// every samplePeriod; this phase pays the same, so that neither side
	// of the ratio carries the observer's load alone.
	sampler := &writeSampler{}
	sctx, stopSampler := context.WithCancel(ctx)
	defer stopSampler()
	go sampler.run(sctx, cs, samplePeriod)
	start := time.Now()
	if _, err := fanOut(ctx, pods, concurrency, time.Time{}, func(ctx context.Context, i int) error {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, benchPod(fmt.Sprintf("pod-%d", i), cpu, mem), metav1.CreateOptions{})
		return err
	}); err != nil {
		r.err = fmt.Errorf("creating pods: %w", err)
	}
	select {
	case <-allBound:
	case <-time.After(2 * time.Minute):
		r.err = fmt.Errorf("only part of the pods were bound within 2 minutes")
	case <-ctx.Done():
	}
	mu.Lock()
	r.bound = len(boundAt)
	r.elapsed = lastBound.Sub(start)
	mu.Unlock()
	if after, err := scrapeWrites(ctx, cs); err == nil {
		r.writes = after.sub(before)
	}
	return r
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("8"),
		corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	_, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name, "bench.agora.dev/fake": "true"}},
		Status: corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				Reason: "KubeletReady", LastHeartbeatTime: now, LastTransitionTime: now}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	_, err = cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Create(ctx, &coordv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: coordv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}, metav1.CreateOptions{})
	return err
}

// renewNodeLeases renews every fake node's Lease once per period, spread
// over the period as kubelets' renewals are.
func renewNodeLeases(ctx context.Context, cs kubernetes.Interface, nodes int, period time.Duration) {
	step := period / time.Duration(max(nodes, 1))
	t := time.NewTicker(max(step, time.Millisecond))
	defer t.Stop()
	for i := 0; ; i = (i + 1) % nodes {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		leases := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease)
		l, err := leases.Get(ctx, fmt.Sprintf("fake-node-%d", i), metav1.GetOptions{})
		if err != nil {
			continue
		}
		l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
		_, _ = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
}

// waitSchedulerNodes waits until the fake nodes are listed and then a
// moment for kube-scheduler's informer to take them in.
func waitSchedulerNodes(ctx context.Context, cs kubernetes.Interface, nodes int) error {
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		l, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "bench.agora.dev/fake=true", ResourceVersion: "0"})
		return err == nil && len(l.Items) >= nodes, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d nodes: %w", nodes, err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Second):
		return nil
	}
}

func benchPod(name string, cpu, mem resource.Quantity) *corev1.Pod {
	req := corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "task", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: req, Limits: req}}},
			// No kubelet runs: bound pods stay Pending, which is all we time.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		},
	}
}
