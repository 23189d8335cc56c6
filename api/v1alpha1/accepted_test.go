package v1alpha1_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
)

// TestAllowedTransitions proves the rules do not forbid what Mesos allows:
// an agent coming back turns LOST and UNREACHABLE tasks RUNNING again, a kill
// request can be made, an offer can be answered once, defaults are applied.
func TestAllowedTransitions(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "allowed")
	for _, from := range []agorav1.TaskState{agorav1.TaskLost, agorav1.TaskUnreachable} {
		tk := b.Task(ns, "back-"+strings.ToLower(string(from[5:])), "fw").OfferRef("o", "uid", "node-1").Obj()
		if err := env.Client.Create(ctx, tk); err != nil {
			t.Fatal(err)
		}
		tk.Status.State = from
		if err := env.Client.Status().Update(ctx, tk); err != nil {
			t.Fatalf("setting %s: %v", from, err)
		}
		tk.Status.State = agorav1.TaskRunning
		if err := env.Client.Status().Update(ctx, tk); err != nil {
			t.Fatalf("%s -> TASK_RUNNING must be allowed: %v", from, err)
		}
		tk.Spec.Kill = true
		if err := env.Client.Update(ctx, tk); err != nil {
			t.Fatalf("a kill request must be allowed: %v", err)
		}
	}

	o := b.Offer(ns, "answer-once", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Status.Phase = agorav1.OfferOutstanding
	if err := env.Client.Status().Update(ctx, o); err != nil {
		t.Fatal(err)
	}
	o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferDecline}
	if err := env.Client.Update(ctx, o); err != nil {
		t.Fatalf("answering an outstanding offer must be allowed: %v", err)
	}
	// The master settles the offer through the status subresource.
	o.Status.Phase = agorav1.OfferDeclined
	if err := env.Client.Status().Update(ctx, o); err != nil {
		t.Fatalf("settling an answered offer must be allowed: %v", err)
	}

	fw := b.Framework(ns, "defaults").Obj()
	if err := env.Client.Create(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if got := fw.Spec.Roles; len(got) != 1 || got[0] != "*" {
		t.Errorf("default roles = %v, want [*]", got)
	}
	if fw.Spec.FailoverTimeout == nil || fw.Spec.FailoverTimeout.Hours() != 168 {
		t.Errorf("default failoverTimeout = %v, want 168h", fw.Spec.FailoverTimeout)
	}
}

// TestSamplesApply applies every sample in config/samples with kubectl.
func TestSamplesApply(t *testing.T) {
	ctx := context.Background()
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "analytics"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	out, err := env.KubectlCmd(ctx, nil, "apply", "--server-side", "-k", "config/samples")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"framework.scheduling.agora.dev/spark", "offer.scheduling.agora.dev/spark-node-1-1",
		"task.scheduling.agora.dev/wordcount-1", "agent.scheduling.agora.dev/node-1", "resourcerole.scheduling.agora.dev/analytics"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply output lacks %q:\n%s", want, out)
		}
	}
	var task agorav1.Task
	if err := env.Client.Get(ctx, keyOf("analytics", "wordcount-1"), &task); err != nil {
		t.Fatal(err)
	}
	if task.Spec.Resources.CPUs.String() != "500m" {
		t.Errorf("sample task cpus = %s, want 500m", task.Spec.Resources.CPUs)
	}
	// kubectl get is useful: the printer columns show the task's agent.
	out, err = env.KubectlCmd(ctx, nil, "get", "tasks", "-n", "analytics")
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"STATE", "AGENT", "CPUS", "MEM", "AGE", "node-1"} {
		if !strings.Contains(out, col) {
			t.Errorf("kubectl get tasks lacks %q:\n%s", col, out)
		}
	}
}

// TestDefaultInstallDryRun renders config/default with kustomize and applies
// it to the apiserver with a server-side dry run.
func TestDefaultInstallDryRun(t *testing.T) {
	ctx := context.Background()
	rendered, err := exec.CommandContext(ctx, "go", "tool", "kustomize", "build", env.RepoRoot+"/config/default").Output()
	if err != nil {
		t.Fatalf("kustomize build config/default: %v", err)
	}
	// Namespaced objects need their namespace to exist even in a dry run.
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "agora-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	out, err := env.KubectlCmd(ctx, rendered, "apply", "--server-side", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"deployment.apps/agora-master", "daemonset.apps/agora-agent", "clusterrole.rbac.authorization.k8s.io/agora-framework",
		"customresourcedefinition.apiextensions.k8s.io/tasks.scheduling.agora.dev"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run apply output lacks %q:\n%s", want, out)
		}
	}
}

// TestExplain proves `kubectl explain` documents fields from the Go comments.
// The apiserver publishes a new CRD's OpenAPI schema a few seconds after
// the CRD is established, so a run of this test alone, right after the
// control plane started, waits for it (as a user does).
func TestExplain(t *testing.T) {
	var out string
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		out, err = env.KubectlCmd(ctx, nil, "explain", "task.spec.resources")
		if err != nil && strings.Contains(out, "couldn't find resource") {
			return false, nil // not published yet
		}
		return true, err
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"Resources the task uses", "cpus", "ports"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl explain task.spec.resources lacks %q:\n%s", want, out)
		}
	}
}

// TestTasksSelectableByAgent proves agents can list only their own tasks
// with a field selector on spec.agentName.
func TestTasksSelectableByAgent(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "select")
	for _, agent := range []string{"node-a", "node-b", "node-b"} {
		tk := b.Task(ns, "", "fw").OfferRef("o", "uid", agent).Obj()
		tk.GenerateName = agent + "-"
		if err := env.Client.Create(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	out, err := env.KubectlCmd(ctx, nil, "get", "tasks", "-n", ns, "--field-selector", "spec.agentName=node-b", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out)
	if len(lines) != 2 {
		t.Fatalf("field selector spec.agentName=node-b returned %d tasks, want 2:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.Contains(l, "node-b-") {
			t.Errorf("task %s is not node-b's", l)
		}
	}
}

// TestOfferExpiryColumn: `kubectl get offers` shows when an outstanding
// offer expires. A date column showed "<invalid>" for every offer that had
// not expired yet, since kubectl prints a date column as an age.
func TestOfferExpiryColumn(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "expiry")
	o := b.Offer(ns, "o", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
	o.Spec.ExpiresAt = metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second).UTC())
	if err := env.Client.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	out, err := env.KubectlCmd(ctx, nil, "get", "offers", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "<invalid>") {
		t.Errorf("kubectl get offers shows <invalid>:\n%s", out)
	}
	if want := o.Spec.ExpiresAt.Format(time.RFC3339); !strings.Contains(out, want) || !strings.Contains(out, "EXPIRES") {
		t.Errorf("kubectl get offers lacks the EXPIRES column with %s:\n%s", want, out)
	}
}
