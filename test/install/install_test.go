// Package install proves that config/ installs a working Agora: it applies
// config/default to a real control plane (etcd, kube-apiserver with RBAC,
// kube-controller-manager), runs the master and simulated agents as local
// processes authenticated as the ServiceAccounts the manifests create, and
// runs tenant frameworks as their own ServiceAccounts. What each identity may
// do is compared with reviewed golden files (go test -update rewrites them).
package install

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authnv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/testenv"
	"github.com/agora-sched/agora/pkg/localcluster"
	"github.com/agora-sched/agora/pkg/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from what the ServiceAccounts may do now")

const (
	sysNS = "agora-system" // config/default's namespace
	// tenantA is config/samples/framework_tenant.yaml as it is; tenantB is a
	// copy with its namespace renamed, as the sample tells operators to do.
	tenantA = "batch"
	tenantB = "other"
)

func TestInstall(t *testing.T) {
	ctrllog.SetLogger(logr.Discard()) // the SDK's client logs nothing we check
	root := testenv.RepoRoot()
	bins := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}
	if os.Getenv("AGORA_SKIP_LOCALCLUSTER") == "1" && !binsBuilt(root, bins) {
		t.Skip("control-plane binaries are not built and AGORA_SKIP_LOCALCLUSTER=1; run hack/build-bins.sh to enable this test")
	}
	// Not bounded by the test's deadline: the first build takes 10-20 min.
	binDir, err := localcluster.EnsureBins(context.Background(), root, t.Output(), bins...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	work := t.TempDir()

	// Build the master and the agent while the control plane starts.
	built := make(chan error, 1)
	go func() {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", work+string(filepath.Separator), "./cmd/agora-master", "./cmd/agora-agent")
		// The default build settings, so the packages `go test ./...` has
		// compiled are reused and only linking is left.
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			built <- fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		built <- nil
	}()
	cl, err := localcluster.Start(ctx, localcluster.Options{BinDir: binDir, DataDir: filepath.Join(work, "cluster"), Log: t.Output()})
	if err != nil {
		<-built
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	admin := cl.RESTConfig()
	ac, err := client.New(admin, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	kubectl := func(stdin []byte, args ...string) []byte {
		t.Helper()
		return run(t, ctx, root, stdin, filepath.Join(binDir, "kubectl"), append([]string{"--kubeconfig", cl.Kubeconfig()}, args...)...)
	}

	// Install for real: what a user runs, kustomize build | kubectl apply.
	manifests := run(t, ctx, root, nil, "go", "tool", "kustomize", "build", "config/default")
	kubectl(manifests, "apply", "--server-side", "-f", "-")
	kubectl(nil, "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/part-of=agora", "--timeout=60s")
	checkInstalled(t, ctx, ac)

	sample, err := os.ReadFile(filepath.Join(root, "config", "samples", "framework_tenant.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	kubectl(sample, "apply", "--server-side", "-f", "-")
	kubectl([]byte(strings.ReplaceAll(string(sample), tenantA, tenantB)), "apply", "--server-side", "-f", "-")

	// A Node for the agent identity bound to it (no kubelet runs).
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	if err := ac.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	master := tokenIdentity(t, ctx, admin, sysNS, "agora-master", nil, work)
	agentSim := tokenIdentity(t, ctx, admin, sysNS, "agora-agent", nil, work)
	agentA := tokenIdentity(t, ctx, admin, sysNS, "agora-agent",
		&authnv1.BoundObjectReference{Kind: "Node", APIVersion: "v1", Name: node.Name, UID: node.UID}, "")
	tenA := tokenIdentity(t, ctx, admin, tenantA, "scheduler", nil, "")
	tenB := tokenIdentity(t, ctx, admin, tenantB, "scheduler", nil, "")

	t.Run("rules", func(t *testing.T) {
		// The default ServiceAccount of a namespace no Agora role names.
		baseline := ruleLines(t, ctx, tokenIdentity(t, ctx, admin, "default", "default", nil, ""), "default")
		for name, got := range map[string]string{
			"master":    rulesGolden(t, ctx, master, baseline, sysNS, tenantA),
			"agent":     rulesGolden(t, ctx, agentSim, baseline, sysNS, tenantA),
			"framework": rulesGolden(t, ctx, tenA, baseline, tenantA, tenantB),
		} {
			golden(t, filepath.Join("testdata", "rules-"+name+".golden"), got)
		}
	})

	// Before the master runs, so nothing else writes these objects.
	t.Run("agent-node-restriction", func(t *testing.T) { testNodeRestriction(t, ctx, admin, ac, agentA) })

	if err := <-built; err != nil {
		t.Fatal(err)
	}
	startProc(t, "agora-master", filepath.Join(work, "agora-master"), work,
		"--kubeconfig", master.kubeconfig, "--leader-elect", "--leader-election-namespace", sysNS,
		"--agent-namespace", sysNS, "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--allocation-interval", "200ms")
	agents := startProc(t, "agora-agent", filepath.Join(work, "agora-agent"), work,
		"--kubeconfig", agentSim.kubeconfig, "--simulate", "2", "--node-name", "sim", "--namespace", sysNS,
		"--renew-interval", "2s")
	eventually(t, 60*time.Second, "2 simulated agents registered", func() bool {
		if agents.exited() {
			t.Fatal("the agent process exited")
		}
		var l agorav1.AgentList
		if err := ac.List(ctx, &l); err != nil {
			return false
		}
		n := 0
		for _, a := range l.Items {
			if strings.HasPrefix(a.Name, "sim-") && a.Status.RegisteredTime != nil {
				n++
			}
		}
		return n == 2
	})

	t.Run("tenancy", func(t *testing.T) { testTenancy(t, ctx, ac, tenA, tenB) })
	t.Run("framework-runs-tasks", func(t *testing.T) { testFrameworkRuns(t, ctx, tenA) })
	t.Run("role-namespaces", func(t *testing.T) { testRoleNamespaces(t, ctx, ac, tenA) })
}

// checkInstalled asserts that config/default made every object it should.
// No kubelet runs, so the master's and agents' pods stay Pending: their
// Deployment and DaemonSet existing is what is checked.
func checkInstalled(t *testing.T, ctx context.Context, ac client.Client) {
	t.Helper()
	sys := func(name string) client.ObjectKey { return client.ObjectKey{Namespace: sysNS, Name: name} }
	cluster := func(name string) client.ObjectKey { return client.ObjectKey{Name: name} }
	for _, o := range []struct {
		key client.ObjectKey
		obj client.Object
	}{
		{cluster(sysNS), &corev1.Namespace{}},
		{sys("agora-master"), &corev1.ServiceAccount{}},
		{sys("agora-agent"), &corev1.ServiceAccount{}},
		{cluster("agora-master"), &rbacv1.ClusterRole{}},
		{cluster("agora-agent"), &rbacv1.ClusterRole{}},
		{cluster("agora-framework"), &rbacv1.ClusterRole{}},
		{cluster("agora-view"), &rbacv1.ClusterRole{}},
		{cluster("agora-cluster-view"), &rbacv1.ClusterRole{}},
		{cluster("agora-master"), &rbacv1.ClusterRoleBinding{}},
		{cluster("agora-agent"), &rbacv1.ClusterRoleBinding{}},
		{sys("agora-master"), &rbacv1.Role{}},
		{sys("agora-agent"), &rbacv1.Role{}},
		{sys("agora-master"), &rbacv1.RoleBinding{}},
		{sys("agora-agent"), &rbacv1.RoleBinding{}},
		{sys("agora-master"), &appsv1.Deployment{}},
		{sys("agora-agent"), &appsv1.DaemonSet{}},
		{cluster("agora-agent-node-restriction"), &admissionv1.ValidatingAdmissionPolicy{}},
		{cluster("agora-agent-node-restriction"), &admissionv1.ValidatingAdmissionPolicyBinding{}},
	} {
		if err := ac.Get(ctx, o.key, o.obj); err != nil {
			t.Errorf("%T %s: %v", o.obj, o.key, err)
		}
	}
	// Tasks must not run as the agent's root by default, and each
	// framework's tasks run as their own uid (docs/install.md).
	var ds appsv1.DaemonSet
	if err := ac.Get(ctx, sys("agora-agent"), &ds); err == nil {
		checkTaskUsers(t, ds.Spec.Template.Spec.Containers[0].Args)
	}
	// The aggregation labels make the built-in view role include Agora's.
	eventually(t, 30*time.Second, "ClusterRole view to aggregate agora-view", func() bool {
		var view rbacv1.ClusterRole
		if err := ac.Get(ctx, client.ObjectKey{Name: "view"}, &view); err != nil {
			return false
		}
		for _, r := range view.Rules {
			for _, g := range r.APIGroups {
				if g == agorav1.GroupVersion.Group {
					return true
				}
			}
		}
		return false
	})
	// The policy's CEL must compile against the real schemas; a typo would
	// otherwise only show as a runtime error that denies every agent write.
	eventually(t, 30*time.Second, "the agent policy to be type-checked", func() bool {
		var p admissionv1.ValidatingAdmissionPolicy
		if err := ac.Get(ctx, client.ObjectKey{Name: "agora-agent-node-restriction"}, &p); err != nil {
			return false
		}
		if p.Status.TypeChecking == nil {
			return false
		}
		for _, w := range p.Status.TypeChecking.ExpressionWarnings {
			t.Errorf("policy %s: %s", w.FieldRef, w.Warning)
		}
		return true
	})
}

// testNodeRestriction acts as the agent on node-a (a token bound to Node
// node-a, as every pod's token is bound to its node): its own Agent, Lease
// and Tasks are writable, another node's are refused with the reason.
func testNodeRestriction(t *testing.T, ctx context.Context, admin *rest.Config, ac client.Client, agentA *identity) {
	c := agentA.c
	mine := &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}
	if err := c.Create(ctx, mine); err != nil {
		t.Fatalf("agent node-a creating its own Agent: %v", err)
	}
	statusPatch := client.RawPatch(types.MergePatchType, []byte(`{"status":{"hostname":"node-a.example"}}`))
	if err := c.Status().Patch(ctx, mine, statusPatch); err != nil {
		t.Errorf("agent node-a writing its own Agent's status: %v", err)
	}
	refused(t, "agent node-a creating Agent node-b",
		c.Create(ctx, &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}), "may write only Agent node-a")

	// Agent node-b exists (an admin made it); node-a may not touch it.
	other := &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}
	if err := ac.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	refused(t, "agent node-a writing Agent node-b's status", c.Status().Patch(ctx, other, statusPatch), "not Agent node-b")
	refused(t, "agent node-a updating Agent node-b",
		c.Patch(ctx, other, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"unschedulable":true}}`))), "not Agent node-b")

	lease := func(name string) *coordinationv1.Lease {
		return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: sysNS, Name: name}}
	}
	if err := c.Create(ctx, lease("node-a")); err != nil {
		t.Errorf("agent node-a creating its own Lease: %v", err)
	}
	refused(t, "agent node-a creating Lease node-b", c.Create(ctx, lease("node-b")), "may write only its own Lease node-a")

	task := func(name, agentName string) *agorav1.Task {
		tk := &agorav1.Task{
			ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: name},
			Spec: agorav1.TaskSpec{
				FrameworkName: tenantA, AgentName: agentName,
				OfferRef:  agorav1.OfferReference{Name: "none", UID: "00000000-0000-0000-0000-000000000000"},
				Resources: agorav1.Resources{CPUs: qty("0.1")},
				Command:   sdk.Shell("true"),
			},
		}
		if err := ac.Create(ctx, tk); err != nil {
			t.Fatal(err)
		}
		return tk
	}
	onA, onB := task("on-node-a", "node-a"), task("on-node-b", "node-b")
	msg := client.RawPatch(types.MergePatchType, []byte(`{"status":{"message":"written by node-a"}}`))
	if err := c.Status().Patch(ctx, onA, msg); err != nil {
		t.Errorf("agent node-a writing the status of a Task bound to node-a: %v", err)
	}
	refused(t, "agent node-a writing the status of a Task bound to node-b", c.Status().Patch(ctx, onB, msg),
		"Task "+tenantA+"/on-node-b is bound to agent node-b")

	// What the agent DaemonSet's pod on node-a gets from kubelet: a token
	// bound to the pod, which names the pod's node too.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: sysNS, Name: "agent-on-node-a"},
		Spec: corev1.PodSpec{NodeName: "node-a", ServiceAccountName: "agora-agent",
			Containers: []corev1.Container{{Name: "agent", Image: "agora:dev"}}}}
	if err := ac.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	podAgent := tokenIdentity(t, ctx, admin, sysNS, "agora-agent",
		&authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID}, "")
	refused(t, "agent pod on node-a creating Agent node-b",
		podAgent.c.Create(ctx, &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}}), "may write only Agent node-a")
	if err := podAgent.c.Create(ctx, &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: "node-a"}}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("agent pod on node-a creating its own Agent: %v, want AlreadyExists (admitted)", err)
	}

	// Leave nothing for the master to find.
	for _, o := range []client.Object{mine, other, lease("node-a"), onA, onB, pod} {
		if err := ac.Delete(ctx, o); err != nil {
			t.Errorf("cleaning up %T %s: %v", o, o.GetName(), err)
		}
	}
}

// testTenancy: a framework sees and writes only its own namespace, never a
// status, and cannot use another framework's offer even by naming it.
func testTenancy(t *testing.T, ctx context.Context, ac client.Client, tenA, tenB *identity) {
	bd, err := sdk.Connect(ctx, sdk.Config{RESTConfig: tenB.cfg, Namespace: tenantB, Name: tenantB,
		RenewInterval: 2 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := bd.Teardown(ctx); err != nil {
			t.Errorf("tearing down %s: %v", tenantB, err)
		}
	}()
	var offer agorav1.Offer
	eventually(t, 30*time.Second, "an offer to framework "+tenantB, func() bool {
		var l agorav1.OfferList
		if err := tenB.c.List(ctx, &l, client.InNamespace(tenantB)); err != nil {
			t.Fatalf("framework %s listing its own offers: %v", tenantB, err)
		}
		for _, o := range l.Items {
			if o.Status.Phase == "" && o.Spec.Answer == nil {
				offer = o
				return true
			}
		}
		return false
	})

	// Reads: its own namespace only.
	a := tenA.c
	for _, l := range []client.ObjectList{&agorav1.OfferList{}, &agorav1.TaskList{}, &agorav1.FrameworkList{}} {
		if err := a.List(ctx, l, client.InNamespace(tenantA)); err != nil {
			t.Errorf("framework %s listing its own %T: %v", tenantA, l, err)
		}
		refused(t, fmt.Sprintf("framework %s listing %T in %s", tenantA, l, tenantB), a.List(ctx, l, client.InNamespace(tenantB)), "cannot list resource")
		refused(t, fmt.Sprintf("framework %s listing %T in all namespaces", tenantA, l), a.List(ctx, l), "cannot list resource")
	}
	refused(t, "framework "+tenantA+" reading another framework's offer", a.Get(ctx, client.ObjectKeyFromObject(&offer), &agorav1.Offer{}), "cannot get resource")
	refused(t, "framework "+tenantA+" answering another framework's offer",
		a.Patch(ctx, offer.DeepCopy(), client.RawPatch(types.MergePatchType, []byte(`{"spec":{"answer":{"type":"Accept"}}}`))), "cannot patch resource")
	refused(t, "framework "+tenantA+" reading Agents", a.List(ctx, &agorav1.AgentList{}), "cannot list resource")

	// Writes: no status of its own objects either.
	own := &agorav1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: tenantA}}
	st := client.RawPatch(types.MergePatchType, []byte(`{"status":{"phase":"Active"}}`))
	refused(t, "framework writing its Framework's status", a.Status().Patch(ctx, own, st), `cannot patch resource "frameworks/status"`)
	ownOffer := &agorav1.Offer{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "any"}}
	refused(t, "framework writing an Offer's status", a.Status().Patch(ctx, ownOffer, st), `cannot patch resource "offers/status"`)
	refused(t, "framework creating an Offer", a.Create(ctx, &agorav1.Offer{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "forged"},
		Spec: agorav1.OfferSpec{FrameworkName: tenantA, AgentName: offer.Spec.AgentName, Resources: offer.Spec.Resources}}), `cannot create resource "offers"`)

	// Naming the other framework's offer from its own namespace: the master
	// drops the task and the offer stays whole.
	steal := &agorav1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "steal"},
		Spec: agorav1.TaskSpec{
			FrameworkName: tenantA, AgentName: offer.Spec.AgentName,
			OfferRef:  agorav1.OfferReference{Name: offer.Name, UID: string(offer.UID)},
			Resources: agorav1.Resources{CPUs: qty("0.1"), Mem: qty("32Mi")},
			Command:   sdk.Shell("sleep 1"),
		},
	}
	if err := a.Create(ctx, steal); err != nil {
		t.Fatalf("framework %s creating a task in its namespace: %v", tenantA, err)
	}
	refused(t, "framework writing its Task's status",
		a.Status().Patch(ctx, steal, client.RawPatch(types.MergePatchType, []byte(`{"status":{"state":"TASK_FINISHED"}}`))), `cannot patch resource "tasks/status"`)
	eventually(t, 30*time.Second, "the task naming a foreign offer to be dropped", func() bool {
		if err := a.Get(ctx, client.ObjectKeyFromObject(steal), steal); err != nil {
			t.Fatal(err)
		}
		return sdk.IsTerminal(steal.Status.State)
	})
	if s := steal.Status; (s.State != agorav1.TaskLost && s.State != agorav1.TaskDropped) || s.Reason != agorav1.ReasonInvalidOffers || s.BindTime != nil {
		t.Errorf("task naming a foreign offer ended %s %s (bound %v), want TASK_LOST or TASK_DROPPED, REASON_INVALID_OFFERS, unbound: %s",
			s.State, s.Reason, s.BindTime, s.Message)
	}
	t.Logf("task naming %s's offer: %s %s: %s", tenantB, steal.Status.State, steal.Status.Reason, steal.Status.Message)
	var after agorav1.Offer
	if err := tenB.c.Get(ctx, client.ObjectKeyFromObject(&offer), &after); err != nil {
		t.Fatalf("the foreign offer is gone: %v", err)
	}
	if after.UID != offer.UID || after.Status.Phase != "" || after.Spec.Answer != nil || !equality(after.Spec.Resources, offer.Spec.Resources) {
		t.Fatalf("the foreign offer changed: phase %q answer %v resources %v (was %v)", after.Status.Phase, after.Spec.Answer, after.Spec.Resources, offer.Spec.Resources)
	}
	// Its owner can still use all of it.
	all := sdk.TaskInfo{Name: "whole-offer", Resources: agorav1.Resources{CPUs: offer.Spec.Resources.CPUs, Mem: offer.Spec.Resources.Mem},
		Command: sdk.Shell("sleep 1")}
	created, err := bd.Accept(ctx, &after, []sdk.TaskInfo{all}, sdk.Filters{})
	if err != nil || len(created) != 1 {
		t.Fatalf("framework %s accepting its own offer after the attempt: %v", tenantB, err)
	}
	waitFinished(t, ctx, tenB.c, created[0])
	if err := a.Delete(ctx, steal); err != nil {
		t.Errorf("framework deleting its own task: %v", err)
	}
}

// testFrameworkRuns runs the tenant from config/samples through the SDK as
// its ServiceAccount until its tasks finish on the simulated agents.
func testFrameworkRuns(t *testing.T, ctx context.Context, ten *identity) {
	d, err := sdk.Connect(ctx, sdk.Config{RESTConfig: ten.cfg, Namespace: tenantA, Name: tenantA,
		RenewInterval: 2 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const want = 4
	res := agorav1.Resources{CPUs: qty("0.1"), Mem: qty("32Mi")}
	launched, finished := 0, 0
	var failed []string
	triedGrow := false
	h := sdk.HandlerFuncs{
		Offer: func(ctx context.Context, d *sdk.Driver, o *agorav1.Offer) {
			// Of its own offers, only the answer is the framework's to write.
			if !triedGrow {
				triedGrow = true
				grow := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"resources":{"cpus":"1000"}}}`))
				if err := ten.c.Patch(ctx, o.DeepCopy(), grow); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "immutable") {
					t.Errorf("framework growing its own offer's resources: %v, want Invalid (immutable)", err)
				}
			}
			pool, err := sdk.NewPool(o)
			if err != nil {
				t.Errorf("offer %s: %v", o.Name, err)
				return
			}
			var tasks []sdk.TaskInfo
			for launched+len(tasks) < want && pool.Take(res) {
				tasks = append(tasks, sdk.TaskInfo{Name: fmt.Sprintf("hello-%d", launched+len(tasks)), Resources: res, Command: sdk.Shell("sleep 1")})
			}
			if len(tasks) == 0 {
				_ = d.Decline(ctx, o, 60)
				return
			}
			created, err := d.Accept(ctx, o, tasks, sdk.Filters{})
			launched += len(created)
			if err != nil {
				t.Logf("accept %s: %v", o.Name, err)
			}
		},
		Task: func(ctx context.Context, d *sdk.Driver, task *agorav1.Task) {
			if !sdk.IsTerminal(task.Status.State) {
				return
			}
			if task.Status.State == agorav1.TaskFinished {
				finished++
			} else {
				failed = append(failed, fmt.Sprintf("%s %s %s: %s", task.Name, task.Status.State, task.Status.Reason, task.Status.Message))
			}
			if err := d.Acknowledge(ctx, task); err != nil {
				t.Errorf("acknowledging %s: %v", task.Name, err)
			}
			if finished == want || len(failed) > 0 {
				d.Stop()
			}
		},
	}
	runCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := d.Run(runCtx, h); err != nil {
		t.Fatalf("framework %s: %v (launched %d, finished %d)", tenantA, err, launched, finished)
	}
	if finished != want || len(failed) > 0 {
		t.Fatalf("framework %s: %d of %d tasks finished; failed: %v", tenantA, finished, want, failed)
	}
}

// testRoleNamespaces: a ResourceRole's quota is for the namespaces it
// names; a framework elsewhere asking for the role is Rejected, saying why.
func testRoleNamespaces(t *testing.T, ctx context.Context, ac client.Client, ten *identity) {
	rr := &agorav1.ResourceRole{ObjectMeta: metav1.ObjectMeta{Name: "gold"},
		Spec: agorav1.ResourceRoleSpec{Guarantee: &agorav1.Resources{CPUs: qty("1")}, Namespaces: []string{tenantB}}}
	if err := ac.Create(ctx, rr); err != nil {
		t.Fatal(err)
	}
	fw := &agorav1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: tenantA, Name: "greedy"},
		Spec: agorav1.FrameworkSpec{Roles: []string{"gold"}}}
	if err := ten.c.Create(ctx, fw); err != nil {
		t.Fatalf("framework creating its Framework: %v", err)
	}
	eventually(t, 30*time.Second, "framework greedy to be Rejected", func() bool {
		if err := ten.c.Get(ctx, client.ObjectKeyFromObject(fw), fw); err != nil {
			t.Fatal(err)
		}
		return fw.Status.Phase == agorav1.FrameworkRejected
	})
	// The master may see the Framework before the ResourceRole, and reject
	// it first for want of one; it says why the ResourceRole refuses the
	// namespace once it has seen it.
	why := fmt.Sprintf("namespace %q may not use role %q", tenantA, "gold")
	var c *metav1.Condition
	defer func() {
		if t.Failed() {
			t.Logf("the Registered condition last seen: %+v", c)
		}
	}()
	eventually(t, 30*time.Second, "the Rejected framework's Registered condition to say: "+why, func() bool {
		if err := ten.c.Get(ctx, client.ObjectKeyFromObject(fw), fw); err != nil {
			t.Fatal(err)
		}
		c = meta.FindStatusCondition(fw.Status.Conditions, agorav1.FrameworkConditionRegistered)
		return fw.Status.Phase == agorav1.FrameworkRejected && c != nil && strings.Contains(c.Message, why)
	})
	var offers agorav1.OfferList
	if err := ten.c.List(ctx, &offers, client.InNamespace(tenantA)); err != nil {
		t.Fatal(err)
	}
	for _, o := range offers.Items {
		if o.Spec.Role == "gold" {
			t.Errorf("offer %s of role gold made in namespace %s", o.Name, tenantA)
		}
	}
}

// refused checks that err is a denial (RBAC or admission) whose message
// contains want, so users get told what they may not do.
func refused(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: allowed, want refused", what)
	case !apierrors.IsForbidden(err):
		t.Errorf("%s: %v, want Forbidden", what, err)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: refused with %q, want the message to contain %q", what, err, want)
	}
}

func waitFinished(t *testing.T, ctx context.Context, c client.Client, task *agorav1.Task) {
	t.Helper()
	eventually(t, 30*time.Second, "task "+task.Name+" to end", func() bool {
		if err := c.Get(ctx, client.ObjectKeyFromObject(task), task); err != nil {
			t.Fatal(err)
		}
		return sdk.IsTerminal(task.Status.State)
	})
	if task.Status.State != agorav1.TaskFinished {
		t.Errorf("task %s ended %s %s: %s", task.Name, task.Status.State, task.Status.Reason, task.Status.Message)
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s is missing; review the rules below and run go test ./test/install -update\n%s", path, got)
	}
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != got {
		t.Errorf("%s differs from what the ServiceAccount may do now; if the change is intended, review it and run go test ./test/install -update\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

func binsBuilt(root string, bins []string) bool {
	dirs, _ := filepath.Glob(filepath.Join(root, "bin", "k8s", "*"))
	for _, d := range dirs {
		all := true
		for _, b := range bins {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}

func qty(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

func equality(a, b agorav1.Resources) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}
