package agent_test

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/pkg/resources"
)

// TestWatchNode: on a Kubernetes node the agent offers the node's
// allocatable minus its pods' requests, and follows the pods.
func TestWatchNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	name := agentName("node")
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	node.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi")}
	node.Status.Capacity = node.Status.Allocatable
	if err := env.Client.Status().Update(ctx, node); err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t, "pods")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: corev1.PodSpec{NodeName: name,
		Containers: []corev1.Container{{Name: "c", Image: "x", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("2Gi")}}}}}}
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	clients, err := agent.NewClients(env.Config, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := agent.NodeExists(ctx, clients.Kube, name); !ok || err != nil {
		t.Fatalf("NodeExists = %v, %v", ok, err)
	}
	var mu sync.Mutex
	var total resources.Resources
	ports := resources.MustParse("ports:[31000-32000]").Ports
	if err := agent.WatchNode(ctx, clients.Kube, name, ports, func(r resources.Resources) {
		mu.Lock()
		total = r
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	get := func() resources.Resources {
		mu.Lock()
		defer mu.Unlock()
		return total
	}
	if want := resources.Scalars(3000, 6*resources.GiB, 0, 0).WithPorts(ports); !get().Equal(want) {
		t.Errorf("total = %v, want %v", get(), want)
	}
	if err := env.Client.Delete(ctx, pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	want := resources.Scalars(4000, 8*resources.GiB, 0, 0).WithPorts(ports)
	eventually(t, 10*time.Second, "total grows when the pod goes", func() bool { return get().Equal(want) })
}
