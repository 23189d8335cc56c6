// Package e2enode proves the kustomize install (config/default) on a real
// single-node Kubernetes: the master Deployment and the agent DaemonSet run
// from Agora's image, a framework in a tenant namespace runs tasks in
// cgroups through the agent pod, tasks survive the agent pod's deletion,
// and a new master leader continues after the leader's pod is deleted.
//
// It needs the node hack/localnode brings up (`make test-e2e`); without
// AGORA_E2E_NODE it skips, so `go test ./...` stays hermetic.
package e2enode

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/sdk"
)

const (
	systemNS  = "agora-system"
	tenantNS  = "e2e-tenant"
	tenantSA  = "scheduler"
	agentSel  = "app.kubernetes.io/name=agora,app.kubernetes.io/component=agent"
	masterSel = "app.kubernetes.io/name=agora,app.kubernetes.io/component=master"
)

type env struct {
	node, kubectl, workDir, overlay string
	admin                           *rest.Config
	cs                              kubernetes.Interface
}

func setup(t *testing.T) *env {
	t.Helper()
	// The SDK's controller-runtime client logs through this; unset, it
	// prints a stack trace.
	ctrllog.SetLogger(logr.Discard())
	node := os.Getenv("AGORA_E2E_NODE")
	if node == "" {
		t.Skip("AGORA_E2E_NODE is not set: run through `make test-e2e` (hack/localnode)")
	}
	e := &env{node: node, kubectl: os.Getenv("AGORA_E2E_KUBECTL"), workDir: os.Getenv("AGORA_E2E_WORK_DIR"),
		overlay: os.Getenv("AGORA_E2E_OVERLAY")}
	if e.kubectl == "" {
		e.kubectl = "kubectl"
	}
	if e.workDir == "" {
		e.workDir = "/var/lib/agora"
	}
	if e.overlay == "" {
		e.overlay = "overlay"
	}
	var err error
	if e.admin, err = clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG")); err != nil {
		t.Fatal(err)
	}
	if e.cs, err = kubernetes.NewForConfig(e.admin); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) kubectlRun(t *testing.T, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	c := exec.Command(e.kubectl, args...)
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// diagnose logs what an operator would look at when a step fails.
func (e *env) diagnose(t *testing.T) {
	if !t.Failed() {
		return
	}
	for _, args := range [][]string{
		{"get", "pods", "-A", "-o", "wide"},
		{"-n", systemNS, "logs", "-l", "app.kubernetes.io/component=agent", "--tail=30", "--all-containers"},
		{"-n", systemNS, "logs", "-l", "app.kubernetes.io/component=master", "--tail=20"},
		{"-n", tenantNS, "get", "tasks", "-o", "wide"},
	} {
		out, _ := exec.Command(e.kubectl, args...).CombinedOutput()
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
}

func TestNode(t *testing.T) {
	e := setup(t)
	defer e.diagnose(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()

	// 1. The install: config/default with only the image overridden.
	t.Logf("kubectl apply -k %s", e.overlay)
	t.Logf("%s", e.kubectlRun(t, "apply", "-k", e.overlay))
	e.waitWorkloads(ctx, t, "")
	t.Logf("%s", e.kubectlRun(t, "get", "nodes,pods", "-A", "-o", "wide"))

	// 2. A tenant whose scheduler runs with its own ServiceAccount's token.
	fw := e.connectTenant(ctx, t)
	defer fw.stop()

	// 3. Tasks run in cgroups under the agent's parent and end as expected.
	t.Run("tasks", func(t *testing.T) {
		fw.launch(
			task("cgroups", "cat /proc/self/cgroup"),
			task("exit-3", "echo failing; exit 3"),
		)
		got := fw.waitTerminal(ctx, t, 2*time.Minute, "cgroups", "exit-3")
		expect(t, got["cgroups"], agorav1.TaskFinished, 0)
		expect(t, got["exit-3"], agorav1.TaskFailed, 3)
		out := e.sandboxFile(t, got["cgroups"], "stdout")
		t.Logf("task cgroups, /proc/self/cgroup:\n%s", out)
		prefix := fmt.Sprintf("/agora/%s/task/", e.node)
		for _, ctrl := range []string{"cpu", "memory", "pids", "freezer"} {
			if !hasCgroupLine(out, ctrl, prefix) {
				t.Errorf("the task's %s cgroup is not under %s:\n%s", ctrl, prefix, out)
			}
		}
		// In no hierarchy may the task stay in the agent pod's cgroup: the
		// kubelet kills every process it finds in any hierarchy of a
		// deleted pod's cgroup (named ones such as name=systemd included).
		// (On hybrid hosts the kubelet does not look at the v2 side
		// hierarchy, line "0::", so only v1 lines count there.)
		hybrid := strings.Contains(out, ":memory:") || strings.Contains(out, ",memory")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if hybrid && strings.HasPrefix(line, "0::") {
				continue
			}
			if strings.Contains(line, "/kubepods") {
				t.Errorf("the task is still in the agent pod's cgroup in hierarchy %q: it dies with the pod", line)
			}
		}
	})

	// 4. Tasks survive the agent pod's deletion and end with their codes.
	t.Run("agent-pod-deleted", func(t *testing.T) {
		fw.launch(
			task("survivor-0", "echo started; sleep 25; exit 0"),
			task("survivor-7", "echo started; sleep 25; exit 7"),
		)
		fw.waitState(ctx, t, time.Minute, agorav1.TaskRunning, "survivor-0", "survivor-7")
		old := e.podsOf(ctx, t, agentSel)
		t.Logf("deleting agent pod %s while survivor-0 and survivor-7 run", old[0].Name)
		if err := e.cs.CoreV1().Pods(systemNS).Delete(ctx, old[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		e.waitWorkloads(ctx, t, old[0].UID)
		t.Logf("the DaemonSet recreated the agent: %s", e.podsOf(ctx, t, agentSel)[0].Name)
		got := fw.waitTerminal(ctx, t, 2*time.Minute, "survivor-0", "survivor-7")
		expect(t, got["survivor-0"], agorav1.TaskFinished, 0)
		expect(t, got["survivor-7"], agorav1.TaskFailed, 7)
		for _, n := range []string{"survivor-0", "survivor-7"} {
			if c := strings.Count(e.sandboxFile(t, got[n], "stdout"), "started"); c != 1 {
				t.Errorf("task %s started %d times, want once", n, c)
			}
		}
	})

	// 5. A new master leader continues: no task lost or run twice.
	t.Run("master-leader-deleted", func(t *testing.T) {
		leader := e.leader(ctx, t)
		t.Logf("master leader: %s", leader)
		across := []string{"across-0", "across-1", "across-2"}
		var tis []sdk.TaskInfo
		for _, n := range across {
			tis = append(tis, task(n, "echo started; sleep 8"))
		}
		fw.launch(tis...)
		fw.waitState(ctx, t, time.Minute, agorav1.TaskRunning, across...)
		t.Logf("deleting the leader's pod %s", leader)
		if err := e.cs.CoreV1().Pods(systemNS).Delete(ctx, leader, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		after := []string{"after-0", "after-1", "after-2"}
		tis = nil
		for _, n := range after {
			tis = append(tis, task(n, "echo started"))
		}
		fw.launch(tis...)
		all := append(append([]string{}, across...), after...)
		got := fw.waitTerminal(ctx, t, 3*time.Minute, all...)
		newLeader := e.leader(ctx, t)
		if newLeader == leader {
			t.Errorf("leader is still %s", leader)
		}
		t.Logf("new leader: %s", newLeader)
		for _, n := range all {
			expect(t, got[n], agorav1.TaskFinished, 0)
			if c := strings.Count(e.sandboxFile(t, got[n], "stdout"), "started"); c != 1 {
				t.Errorf("task %s started %d times, want once", n, c)
			}
		}
		// Exactly the tasks launched, each once: nothing dropped, nothing
		// duplicated.
		tasks, err := fw.d.Tasks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, tk := range tasks {
			seen[tk.Name]++
		}
		for _, n := range all {
			if seen[fw.name(n)] != 1 {
				t.Errorf("task %s: %d objects, want 1", n, seen[fw.name(n)])
			}
		}
		e.waitWorkloads(ctx, t, "")
	})
}

func task(name, cmd string) sdk.TaskInfo {
	res, err := sdk.ParseResources("0.1", "32Mi")
	if err != nil {
		panic(err)
	}
	return sdk.TaskInfo{Name: name, Resources: res, Command: sdk.Shell(cmd)}
}

func expect(t *testing.T, tk *agorav1.Task, state agorav1.TaskState, code int32) {
	t.Helper()
	if tk == nil {
		t.Errorf("task missing")
		return
	}
	got := "none"
	if tk.Status.ExitCode != nil {
		got = fmt.Sprint(*tk.Status.ExitCode)
	}
	if tk.Status.State != state || got != fmt.Sprint(code) {
		t.Errorf("task %s: %s exit %s (reason %q, %q), want %s exit %d", tk.Name, tk.Status.State, got,
			tk.Status.Reason, tk.Status.Message, state, code)
		return
	}
	t.Logf("task %s: %s exit %s", tk.Name, tk.Status.State, got)
}

// hasCgroupLine reports whether /proc/self/cgroup output puts controller
// ctrl (v1) or the unified hierarchy (v2) under prefix.
func hasCgroupLine(out, ctrl, prefix string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		ctrls := strings.Split(f[1], ",")
		if (f[0] == "0" && f[1] == "" || contains(ctrls, ctrl)) && strings.HasPrefix(f[2], prefix) {
			return true
		}
	}
	return false
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// sandboxFile reads a task's sandbox file from the host: the agent's work
// dir is a hostPath at the same path.
func (e *env) sandboxFile(t *testing.T, tk *agorav1.Task, name string) string {
	t.Helper()
	dir := tk.Status.Sandbox
	if !strings.HasPrefix(dir, e.workDir+"/") {
		t.Fatalf("task %s: sandbox %q is not under the agent's work dir %s", tk.Name, dir, e.workDir)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("task %s: %v", tk.Name, err)
	}
	return string(b)
}

// waitWorkloads waits for the master Deployment to be fully available and
// the agent DaemonSet's pod to be ready, and, if notUID is set, for an agent
// pod other than that one.
func (e *env) waitWorkloads(ctx context.Context, t *testing.T, notUID any) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var why string
	for time.Now().Before(deadline) {
		why = e.workloadsNotReady(ctx, notUID)
		if why == "" {
			t.Logf("master Deployment available (2/2) and agent DaemonSet ready (1/1)")
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("Agora's workloads not ready after 3m: %s", why)
}

func (e *env) workloadsNotReady(ctx context.Context, notUID any) string {
	dep, err := e.cs.AppsV1().Deployments(systemNS).Get(ctx, "agora-master", metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	want := int32(1)
	if dep.Spec.Replicas != nil {
		want = *dep.Spec.Replicas
	}
	if dep.Status.ReadyReplicas != want || dep.Status.UpdatedReplicas != want || dep.Status.Replicas != want {
		return fmt.Sprintf("master: %d/%d ready", dep.Status.ReadyReplicas, want)
	}
	ds, err := e.cs.AppsV1().DaemonSets(systemNS).Get(ctx, "agora-agent", metav1.GetOptions{})
	if err != nil {
		return err.Error()
	}
	if ds.Status.DesiredNumberScheduled != 1 || ds.Status.NumberReady != 1 {
		return fmt.Sprintf("agent: %d/%d ready", ds.Status.NumberReady, ds.Status.DesiredNumberScheduled)
	}
	pods, err := e.cs.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{LabelSelector: agentSel})
	if err != nil {
		return err.Error()
	}
	for _, p := range pods.Items {
		if p.UID == notUID || p.DeletionTimestamp != nil || !podReady(&p) {
			return "agent pod " + p.Name + " is old or not ready"
		}
	}
	return ""
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (e *env) podsOf(ctx context.Context, t *testing.T, sel string) []corev1.Pod {
	t.Helper()
	pods, err := e.cs.CoreV1().Pods(systemNS).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil || len(pods.Items) == 0 {
		t.Fatalf("pods %s: %v (%d)", sel, err, len(pods.Items))
	}
	return pods.Items
}

// leader is the pod holding the master's leader Lease (controller-runtime
// writes <hostname>_<uuid>; the hostname is the pod's name).
func (e *env) leader(ctx context.Context, t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		l, err := e.cs.CoordinationV1().Leases(systemNS).Get(ctx, "agora-master", metav1.GetOptions{})
		if err == nil && l.Spec.HolderIdentity != nil {
			name, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
			if p, err := e.cs.CoreV1().Pods(systemNS).Get(ctx, name, metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
				return name
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatal("no master holds the leader Lease")
	return ""
}

// connectTenant creates the tenant namespace, its scheduler ServiceAccount
// bound to agora-framework (config/rbac/framework_role.yaml), and connects
// a framework with that ServiceAccount's token.
func (e *env) connectTenant(ctx context.Context, t *testing.T) *framework {
	t.Helper()
	objs := []func() error{
		func() error {
			_, err := e.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenantNS}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := e.cs.CoreV1().ServiceAccounts(tenantNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: tenantSA}}, metav1.CreateOptions{})
			return err
		},
		func() error {
			_, err := e.cs.RbacV1().RoleBindings(tenantNS).Create(ctx, &rbacv1.RoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: "agora-framework"},
				RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "agora-framework"},
				Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: tenantSA, Namespace: tenantNS}},
			}, metav1.CreateOptions{})
			return err
		},
	}
	for _, create := range objs {
		if err := create(); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	exp := int64(3600)
	tok, err := e.cs.CoreV1().ServiceAccounts(tenantNS).CreateToken(ctx, tenantSA,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &rest.Config{Host: e.admin.Host, BearerToken: tok.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: e.admin.CAData, CAFile: e.admin.CAFile}}
	fw := &framework{prefix: "e2e-" + time.Now().Format("150405"), tasks: map[string]*agorav1.Task{}, changed: make(chan struct{}, 1)}
	d, err := sdk.Connect(ctx, sdk.Config{RESTConfig: cfg, Namespace: tenantNS, Name: "e2e"})
	if err != nil {
		t.Fatalf("connecting the framework as %s/%s: %v", tenantNS, tenantSA, err)
	}
	fw.d = d
	runCtx, cancel := context.WithCancel(context.Background())
	fw.done = make(chan error, 1)
	go func() { fw.done <- d.Run(runCtx, fw) }()
	fw.stop = func() {
		tctx, tcancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer tcancel()
		_ = d.Teardown(tctx)
		cancel()
		<-fw.done
		d.Close()
	}
	t.Logf("framework %s/e2e connected as system:serviceaccount:%s:%s", tenantNS, tenantNS, tenantSA)
	return fw
}

// framework launches queued tasks on the offers it gets and records every
// task update. The SDK calls it from one goroutine; tests read under mu.
type framework struct {
	d       *sdk.Driver
	prefix  string
	done    chan error
	stop    func()
	mu      sync.Mutex
	pending []sdk.TaskInfo
	tasks   map[string]*agorav1.Task // by short name
	changed chan struct{}
}

func (f *framework) name(short string) string { return f.prefix + "-" + short }

func (f *framework) launch(tis ...sdk.TaskInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ti := range tis {
		ti.Name = f.name(ti.Name)
		f.pending = append(f.pending, ti)
	}
}

func (f *framework) OfferReceived(ctx context.Context, d *sdk.Driver, offer *agorav1.Offer) {
	f.mu.Lock()
	var take, rest []sdk.TaskInfo
	pool, err := sdk.NewPool(offer)
	for _, ti := range f.pending {
		if err == nil && pool.Take(ti.Resources) {
			take = append(take, ti)
		} else {
			rest = append(rest, ti)
		}
	}
	f.pending = rest
	f.mu.Unlock()
	if len(take) == 0 {
		_ = d.Decline(ctx, offer, 1) // offered again soon, for tasks queued meanwhile
		return
	}
	if _, err := d.Accept(ctx, offer, take, sdk.Refuse(0)); err != nil {
		// Nothing was created (the offer went away): launch on the next one.
		f.mu.Lock()
		f.pending = append(take, f.pending...)
		f.mu.Unlock()
	}
}

func (f *framework) OfferRescinded(context.Context, *sdk.Driver, *agorav1.Offer) {}

func (f *framework) TaskUpdate(_ context.Context, _ *sdk.Driver, tk *agorav1.Task) {
	short := strings.TrimPrefix(tk.Name, f.prefix+"-")
	f.mu.Lock()
	f.tasks[short] = tk.DeepCopy()
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *framework) wait(ctx context.Context, t *testing.T, d time.Duration, what string, ok func(*agorav1.Task) bool, names ...string) map[string]*agorav1.Task {
	t.Helper()
	deadline := time.After(d)
	for {
		f.mu.Lock()
		got := map[string]*agorav1.Task{}
		var missing []string
		for _, n := range names {
			if tk := f.tasks[n]; tk != nil && ok(tk) {
				got[n] = tk
			} else if tk != nil {
				missing = append(missing, n+"="+string(tk.Status.State))
			} else {
				missing = append(missing, n+"=not created")
			}
		}
		f.mu.Unlock()
		if len(missing) == 0 {
			return got
		}
		select {
		case <-f.changed:
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatalf("tasks not %s after %v: %s", what, d, strings.Join(missing, ", "))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
}

func (f *framework) waitTerminal(ctx context.Context, t *testing.T, d time.Duration, names ...string) map[string]*agorav1.Task {
	t.Helper()
	return f.wait(ctx, t, d, "terminal", func(tk *agorav1.Task) bool { return sdk.IsTerminal(tk.Status.State) }, names...)
}

// waitState waits for state or anything after it (a fast task may be
// past RUNNING when we look).
func (f *framework) waitState(ctx context.Context, t *testing.T, d time.Duration, state agorav1.TaskState, names ...string) {
	t.Helper()
	f.wait(ctx, t, d, string(state), func(tk *agorav1.Task) bool {
		return tk.Status.State == state || sdk.IsTerminal(tk.Status.State)
	}, names...)
}
