package agent

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/agora-sched/agora/agent/runtime"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

func TestParseAttributes(t *testing.T) {
	attrs, err := ParseAttributes("rack:r1; zone:a;level:3;ids:[1-10,20-30]")
	if err != nil {
		t.Fatal(err)
	}
	if len(attrs) != 4 || *attrs[0].Text != "r1" || *attrs[1].Text != "a" || attrs[2].Scalar.String() != "3" ||
		len(attrs[3].Ranges) != 2 || attrs[3].Ranges[1].End != 30 {
		t.Errorf("attributes = %+v", attrs)
	}
	for _, bad := range []string{"rack", "rack:", ":x", "ids:[5-1]"} {
		if _, err := ParseAttributes(bad); err == nil {
			t.Errorf("ParseAttributes(%q) accepted", bad)
		}
	}
}

func TestParseReserved(t *testing.T) {
	r, err := ParseReserved([]string{"eng:cpus:1;mem:1Gi", "ops:cpus:0.5;ports:[31000-31009]"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r) != 2 || r[0].Role != "eng" || r[0].Resources.Mem.String() != "1Gi" || r[1].Resources.CPUs.String() != "500m" {
		t.Errorf("reserved = %+v", r)
	}
	total := resources.MustParse("cpus:2;mem:2Gi;ports:[31000-32000]")
	if err := CheckReserved(total, r); err != nil {
		t.Error(err)
	}
	if err := CheckReserved(resources.MustParse("cpus:1;mem:2Gi"), r); err == nil {
		t.Error("reservations beyond the total accepted")
	}
	for _, bad := range [][]string{{"cpus:1"}, {"eng:cpus:x"}, {"eng:cpus:1", "eng:mem:1Gi"}} {
		if _, err := ParseReserved(bad); err == nil {
			t.Errorf("ParseReserved(%q) accepted", bad)
		}
	}
}

func TestDetectHost(t *testing.T) {
	ports := resources.MustParse("ports:[31000-32000]").Ports
	r, err := DetectHost(HostOptions{WorkDir: t.TempDir(), MemReserve: 512 * resources.MiB, Ports: ports})
	if err != nil {
		t.Fatal(err)
	}
	if r.Get(resources.CPUs) < resources.CPU/10 || r.Get(resources.Mem) <= 0 || r.Get(resources.Disk) <= 0 || !r.Ports.Equal(ports) {
		t.Errorf("host = %v", r)
	}
}

func TestNodeTotal(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"), gpuResource: resource.MustParse("2"),
	}}}
	always := corev1.ContainerRestartPolicyAlways
	req := func(cpu, mem string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}}
	}
	pods := []*corev1.Pod{
		{Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Resources: req("500m", "1Gi")}, {Resources: req("500m", "1Gi")}},
			InitContainers: []corev1.Container{{Resources: req("3", "1Gi")}}}}, // init 3 cpus > 1: counts 3
		{Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Resources: req("250m", "512Mi")}},
			InitContainers: []corev1.Container{{Resources: req("250m", "512Mi"), RestartPolicy: &always}}}}, // sidecar adds
		{Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Resources: req("1", "1Gi")}}},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}, // done: not counted
		{Spec: corev1.PodSpec{NodeName: "other", Containers: []corev1.Container{{Resources: req("1", "1Gi")}}}},
	}
	got := NodeTotal(node, pods, nil)
	want := resources.Scalars(4000-3000-500, 8*resources.GiB-2*resources.GiB-resources.GiB, 100*resources.GiB, 2)
	if !got.Equal(want) {
		t.Errorf("NodeTotal = %v, want %v", got, want)
	}
}

func TestRuntimeSpec(t *testing.T) {
	port := int32(8080)
	task := &agorav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "t", UID: "u-1"}, Spec: agorav1.TaskSpec{
		FrameworkName: "fw",
		Resources:     agorav1.Resources{CPUs: qp("1.5"), Mem: qp("64Mi"), Ports: []agorav1.PortRange{{Begin: 31000, End: 31001}, {Begin: 31005, End: 31005}}},
		Command:       agorav1.CommandInfo{Argv: []string{"srv", "-x"}, Env: []agorav1.EnvVar{{Name: "A", Value: "b"}}, User: "nobody", WorkingDir: "data"},
		KillPolicy:    &agorav1.KillPolicy{GracePeriod: &metav1.Duration{Duration: 5 * time.Second}},
		HealthCheck:   &agorav1.HealthCheck{Type: agorav1.HealthCheckHTTP, Port: &port, Path: "/health", DelaySeconds: 2, GracePeriodSeconds: 3},
	}}
	s, err := RuntimeSpec(task)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID != "u-1" || s.Name != "ns/t" || s.Tenant != "ns/fw" || len(s.Command.Argv) != 2 || s.Env["A"] != "b" || s.User != "nobody" || s.WorkingDir != "data" ||
		s.Resources.MilliCPUs != 1500 || s.Resources.MemBytes != 64<<20 || len(s.Ports) != 3 || s.Ports[2] != 31005 ||
		s.KillGracePeriod != 5*time.Second {
		t.Errorf("spec = %+v", s)
	}
	h := s.HealthCheck
	if h == nil || h.HTTP == nil || h.HTTP.Port != 8080 || h.HTTP.Path != "/health" || h.GracePeriod != 5*time.Second ||
		h.Interval != 10*time.Second || h.ConsecutiveFailures != 3 {
		t.Errorf("health check = %+v", h)
	}

	// A task that names no memory still runs under a hard limit: Mesos'
	// minimum, not none.
	task.Spec.Resources.Mem = nil
	if s, err := RuntimeSpec(task); err != nil || s.Resources.MemBytes != MinTaskMemBytes {
		t.Errorf("without mem: MemBytes = %d (%v), want %d", s.Resources.MemBytes, err, MinTaskMemBytes)
	}
}

func TestFinalFromExit(t *testing.T) {
	cases := []struct {
		exit   ExitStatus
		state  agorav1.TaskState
		reason string
		code   *int32
	}{
		{ExitStatus{ExitCode: 0}, agorav1.TaskFinished, "", ptr32(0)},
		{ExitStatus{ExitCode: 3}, agorav1.TaskFailed, "", ptr32(3)},
		{ExitStatus{ExitCode: -1, Signal: 9, OOM: true}, agorav1.TaskFailed, agorav1.ReasonContainerLimitationMemory, nil},
		{ExitStatus{ExitCode: -1, Signal: 15, Killed: true}, agorav1.TaskKilled, "", nil},
		{*exitFromRuntime(&runtime.ExitStatus{ExitCode: -1, Signal: 15, Killed: true, Reason: runtime.ReasonHealthCheck}, false),
			agorav1.TaskKilled, agorav1.ReasonTaskHealthCheckStatusUpdate, nil},
		{*exitFromRuntime(&runtime.ExitStatus{ExitCode: -1, Reason: runtime.ReasonSupervisorGone}, false),
			agorav1.TaskFailed, agorav1.ReasonExecutorTerminated, nil},
		{*exitFromRuntime(&runtime.ExitStatus{ExitCode: -1, Reason: runtime.ReasonHostRebooted}, true),
			agorav1.TaskFailed, agorav1.ReasonAgentRestarted, nil},
	}
	for i, c := range cases {
		f := finalFromExit(&c.exit)
		if f.state != c.state || f.reason != c.reason || (c.code == nil) != (f.exitCode == nil) || (c.code != nil && *c.code != *f.exitCode) {
			t.Errorf("case %d: %+v -> %s %s %v", i, c.exit, f.state, f.reason, f.exitCode)
		}
	}
}

func qp(s string) *resource.Quantity { q := resource.MustParse(s); return &q }
func ptr32(v int32) *int32           { return &v }
