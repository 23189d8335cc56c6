package agent

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/agora-sched/agora/pkg/resources"
)

// gpuResource is the extended resource NVIDIA's device plugin advertises.
const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// NodeExists reports whether a Kubernetes Node of that name exists.
func NodeExists(ctx context.Context, kube kubernetes.Interface, name string) (bool, error) {
	_, err := kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// NodeTotal is what Agora may use on a Kubernetes node: the node's
// allocatable minus the requests of the pods scheduled there, so Agora and
// kube-scheduler never book the same capacity. Ports are not Kubernetes'
// to know and are added as given.
func NodeTotal(node *corev1.Node, pods []*corev1.Pod, ports resources.Ranges) resources.Resources {
	alloc := node.Status.Allocatable
	req := corev1.ResourceList{}
	for _, p := range pods {
		if p.Spec.NodeName != node.Name || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		addList(req, podRequests(p))
	}
	free := func(name corev1.ResourceName, milli bool) int64 {
		a, r := alloc[name], req[name]
		if milli {
			return max(0, a.MilliValue()-r.MilliValue())
		}
		return max(0, a.Value()-r.Value())
	}
	return resources.Scalars(
		free(corev1.ResourceCPU, true),
		free(corev1.ResourceMemory, false),
		free(corev1.ResourceEphemeralStorage, false),
		free(gpuResource, false),
	).WithPorts(ports)
}

// podRequests is what the scheduler counts for a pod: its containers (and
// restartable init containers, i.e. sidecars) together, or the largest
// plain init container if that is more, plus the pod's overhead.
func podRequests(p *corev1.Pod) corev1.ResourceList {
	sum := corev1.ResourceList{}
	for _, c := range p.Spec.Containers {
		addList(sum, c.Resources.Requests)
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			addList(sum, c.Resources.Requests)
		}
	}
	for _, c := range p.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			continue
		}
		for name, q := range c.Resources.Requests {
			if cur, ok := sum[name]; !ok || q.Cmp(cur) > 0 {
				sum[name] = q.DeepCopy()
			}
		}
	}
	addList(sum, p.Spec.Overhead)
	return sum
}

func addList(into, add corev1.ResourceList) {
	for name, q := range add {
		cur := into[name]
		cur.Add(q)
		into[name] = cur
	}
}

// WatchNode keeps calling set with NodeTotal as the node and its pods
// change, until ctx ends. It returns once both watches have synced and set
// was called once.
func WatchNode(ctx context.Context, kube kubernetes.Interface, nodeName string, ports resources.Ranges,
	set func(resources.Resources)) error {
	rc := kube.CoreV1().RESTClient()
	nodeInf := cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(rc, "nodes", "", fields.OneTermEqualSelector("metadata.name", nodeName)),
		&corev1.Node{}, 0, cache.Indexers{})
	podInf := cache.NewSharedIndexInformer(
		cache.NewListWatchFromClient(rc, "pods", "", fields.OneTermEqualSelector("spec.nodeName", nodeName)),
		&corev1.Pod{}, 0, cache.Indexers{})

	var mu sync.Mutex
	synced := false
	update := func() {
		mu.Lock()
		defer mu.Unlock()
		if !synced {
			return
		}
		obj, ok, _ := nodeInf.GetStore().GetByKey(nodeName)
		if !ok {
			return // the node is gone: keep the last total
		}
		var pods []*corev1.Pod
		for _, p := range podInf.GetStore().List() {
			pods = append(pods, p.(*corev1.Pod))
		}
		set(NodeTotal(obj.(*corev1.Node), pods, ports))
	}
	h := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { update() },
		UpdateFunc: func(_, _ any) { update() },
		DeleteFunc: func(any) { update() },
	}
	for _, inf := range []cache.SharedIndexInformer{nodeInf, podInf} {
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
		go inf.RunWithContext(ctx)
	}
	if !cache.WaitForCacheSync(ctx.Done(), nodeInf.HasSynced, podInf.HasSynced) {
		return ctx.Err()
	}
	mu.Lock()
	synced = true
	mu.Unlock()
	if _, ok, _ := nodeInf.GetStore().GetByKey(nodeName); !ok {
		return fmt.Errorf("node %s not found", nodeName)
	}
	update()
	return nil
}
