package v1alpha1_test

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
)

// invalidCase is one object the apiserver must reject, with the message the
// rule gives. With update set, obj is created first and update makes the
// forbidden change; statusUpdate writes through the status subresource.
type invalidCase struct {
	name         string
	obj          func(ns string) client.Object
	update       func(client.Object)
	statusUpdate bool
	wantMsg      string
}

func ptr[T any](v T) *T { return &v }

func task(ns string) *agorav1.Task {
	return b.Task(ns, "t", "fw").OfferRef("o", "uid-1", "node-1").Obj()
}

func offer(ns string) *agorav1.Offer {
	return b.Offer(ns, "o", "fw", "node-1").Resources(b.Res("2", "1Gi")).Obj()
}

func withTask(f func(*agorav1.Task)) func(string) client.Object {
	return func(ns string) client.Object { t := task(ns); f(t); return t }
}

func withOffer(f func(*agorav1.Offer)) func(string) client.Object {
	return func(ns string) client.Object { o := offer(ns); f(o); return o }
}

func withFramework(f func(*agorav1.Framework)) func(string) client.Object {
	return func(ns string) client.Object { fw := b.Framework(ns, "fw").Obj(); f(fw); return fw }
}

func withRole(f func(*agorav1.ResourceRole)) func(string) client.Object {
	return func(ns string) client.Object {
		r := &agorav1.ResourceRole{ObjectMeta: metav1.ObjectMeta{Name: ns + "-role"}}
		f(r)
		return r
	}
}

func setTaskState(state agorav1.TaskState) func(client.Object) {
	return func(o client.Object) { o.(*agorav1.Task).Status.State = state }
}

var invalidCases = []invalidCase{
	// Resources (checked here through Task.spec.resources; every kind shares the type).
	{name: "negative cpus", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.CPUs = b.Q("-1") }), wantMsg: "cpus must not be negative"},
	{name: "negative mem", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.Mem = b.Q("-1Mi") }), wantMsg: "mem must not be negative"},
	{name: "negative disk", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.Disk = b.Q("-1Gi") }), wantMsg: "disk must not be negative"},
	{name: "negative gpus", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.GPUs = b.Q("-1") }), wantMsg: "gpus must not be negative"},
	{name: "fractional gpus", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.GPUs = b.Q("0.5") }), wantMsg: "gpus must be a whole number"},
	{name: "port range reversed", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.Ports = []agorav1.PortRange{{Begin: 31010, End: 31000}} }), wantMsg: "a port range's begin must not exceed its end"},
	{name: "port ranges unsorted", obj: withTask(func(t *agorav1.Task) {
		t.Spec.Resources.Ports = []agorav1.PortRange{{Begin: 31010, End: 31011}, {Begin: 31000, End: 31001}}
	}), wantMsg: "port ranges must be sorted by begin"},
	{name: "port ranges overlap", obj: withTask(func(t *agorav1.Task) {
		t.Spec.Resources.Ports = []agorav1.PortRange{{Begin: 31000, End: 31005}, {Begin: 31003, End: 31008}}
	}), wantMsg: "port ranges must not overlap"},
	{name: "port out of range", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources.Ports = []agorav1.PortRange{{Begin: 0, End: 70000}} }), wantMsg: "should be less than or equal to 65535"},
	{name: "task without cpus or mem", obj: withTask(func(t *agorav1.Task) { t.Spec.Resources = agorav1.Resources{Disk: b.Q("1Gi")} }), wantMsg: "a task needs some cpus or mem"},

	// Task command, kill policy, health check.
	{name: "shell and argv", obj: withTask(func(t *agorav1.Task) { t.Spec.Command.Argv = []string{"true"} }), wantMsg: "set exactly one of command.shell or command.argv"},
	{name: "empty shell", obj: withTask(func(t *agorav1.Task) { t.Spec.Command.Shell = ptr("  ") }), wantMsg: "command.shell must not be empty"},
	{name: "empty argv", obj: withTask(func(t *agorav1.Task) { t.Spec.Command = agorav1.CommandInfo{Argv: []string{""}} }), wantMsg: "command.argv must name a program"},
	{name: "env overrides agent variable", obj: withTask(func(t *agorav1.Task) {
		t.Spec.Command.Env = []agorav1.EnvVar{{Name: "AGORA_SANDBOX", Value: "/"}}
	}), wantMsg: "env must not set AGORA_*, MESOS_SANDBOX or PORT* variables"},
	{name: "workingDir escapes sandbox", obj: withTask(func(t *agorav1.Task) { t.Spec.Command.WorkingDir = "../../etc" }), wantMsg: "workingDir must be absolute or stay inside the sandbox"},
	{name: "kill grace too long", obj: withTask(func(t *agorav1.Task) {
		t.Spec.KillPolicy = &agorav1.KillPolicy{GracePeriod: &metav1.Duration{Duration: 2 * time.Hour}}
	}), wantMsg: "killPolicy.gracePeriod must be between 0s and 1h"},
	{name: "command health check without command", obj: withTask(func(t *agorav1.Task) {
		t.Spec.HealthCheck = &agorav1.HealthCheck{Type: agorav1.HealthCheckCommand}
	}), wantMsg: "a Command health check needs command"},
	{name: "HTTP health check without port", obj: withTask(func(t *agorav1.Task) {
		t.Spec.HealthCheck = &agorav1.HealthCheck{Type: agorav1.HealthCheckHTTP, Path: "/health"}
	}), wantMsg: "an HTTP or TCP health check needs port"},
	{name: "offerRef without uid", obj: withTask(func(t *agorav1.Task) { t.Spec.OfferRef.UID = "" }), wantMsg: "spec.offerRef.uid"},

	// Task immutability and kill.
	{name: "task offerRef changed", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) { o.(*agorav1.Task).Spec.OfferRef.Name = "other" }, wantMsg: "spec.offerRef is immutable"},
	{name: "task agent changed", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) { o.(*agorav1.Task).Spec.AgentName = "node-2" }, wantMsg: "spec.agentName is immutable"},
	{name: "task resources changed", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) { o.(*agorav1.Task).Spec.Resources.CPUs = b.Q("4") }, wantMsg: "spec.resources are immutable"},
	{name: "task command changed", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) { o.(*agorav1.Task).Spec.Command.Shell = ptr("rm -rf /") }, wantMsg: "spec.command is immutable"},
	{name: "kill withdrawn", obj: withTask(func(t *agorav1.Task) { t.Spec.Kill = true }), update: func(o client.Object) { o.(*agorav1.Task).Spec.Kill = false }, wantMsg: "a kill request cannot be withdrawn"},
	{name: "task framework changed", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) { o.(*agorav1.Task).Spec.FrameworkName = "other" }, wantMsg: "spec.frameworkName is immutable"},
	{name: "health check added", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) {
		o.(*agorav1.Task).Spec.HealthCheck = &agorav1.HealthCheck{Type: agorav1.HealthCheckTCP, Port: ptr(int32(8080))}
	}, wantMsg: "spec.healthCheck is immutable"},
	{name: "health check removed", obj: withTask(func(t *agorav1.Task) {
		t.Spec.HealthCheck = &agorav1.HealthCheck{Type: agorav1.HealthCheckTCP, Port: ptr(int32(8080))}
	}), update: func(o client.Object) { o.(*agorav1.Task).Spec.HealthCheck = nil }, wantMsg: "spec.healthCheck is immutable"},
	{name: "health check changed", obj: withTask(func(t *agorav1.Task) {
		t.Spec.HealthCheck = &agorav1.HealthCheck{Type: agorav1.HealthCheckTCP, Port: ptr(int32(8080))}
	}), update: func(o client.Object) { o.(*agorav1.Task).Spec.HealthCheck.Port = ptr(int32(9090)) }, wantMsg: "spec.healthCheck is immutable"},

	// Task status.
	{name: "unknown task state", obj: withTask(func(*agorav1.Task) {}), update: setTaskState("TASK_SLEEPING"), statusUpdate: true, wantMsg: "Unsupported value"},
	{name: "terminal state changed", obj: withTask(func(t *agorav1.Task) { t.Status.State = agorav1.TaskFinished }), update: setTaskState(agorav1.TaskRunning), statusUpdate: true, wantMsg: "a task in a terminal state cannot change state"},
	{name: "terminal state removed", obj: withTask(func(t *agorav1.Task) { t.Status.State = agorav1.TaskFailed }), update: setTaskState(""), statusUpdate: true, wantMsg: "cannot be removed"},
	{name: "terminal state to another", obj: withTask(func(t *agorav1.Task) { t.Status.State = agorav1.TaskFinished }), update: setTaskState(agorav1.TaskFailed), statusUpdate: true, wantMsg: "a task in a terminal state cannot change state"},
	{name: "lost state removed", obj: withTask(func(t *agorav1.Task) { t.Status.State = agorav1.TaskLost }), update: setTaskState(""), statusUpdate: true, wantMsg: "cannot be removed"},
	{name: "lost becomes finished", obj: withTask(func(t *agorav1.Task) { t.Status.State = agorav1.TaskLost }), update: setTaskState(agorav1.TaskFinished), statusUpdate: true, wantMsg: "a TASK_LOST task can only become TASK_RUNNING"},
	{name: "reason not a Mesos reason", obj: withTask(func(*agorav1.Task) {}), update: func(o client.Object) { o.(*agorav1.Task).Status.Reason = "oops" }, statusUpdate: true, wantMsg: "reason must be a Mesos reason"},
	{name: "task bound twice", obj: withTask(func(t *agorav1.Task) { t.Status.BindTime = &metav1.Time{Time: time.Unix(1700000000, 0)} }), update: func(o client.Object) {
		o.(*agorav1.Task).Status.BindTime = &metav1.Time{Time: time.Unix(1700000100, 0)}
	}, statusUpdate: true, wantMsg: "a task is bound once"},
	{name: "task bind removed", obj: withTask(func(t *agorav1.Task) { t.Status.BindTime = &metav1.Time{Time: time.Unix(1700000000, 0)} }), update: func(o client.Object) {
		o.(*agorav1.Task).Status.BindTime = nil
	}, statusUpdate: true, wantMsg: "a task is bound once"},
	{name: "task role removed", obj: withTask(func(t *agorav1.Task) { t.Status.Role = "analytics" }), update: func(o client.Object) {
		o.(*agorav1.Task).Status.Role = ""
	}, statusUpdate: true, wantMsg: "status.role is written once"},
	{name: "task role changed", obj: withTask(func(t *agorav1.Task) { t.Status.Role = "analytics" }), update: func(o client.Object) {
		o.(*agorav1.Task).Status.Role = "web"
	}, statusUpdate: true, wantMsg: "status.role is written once"},

	// Offers.
	{name: "offer answer changed", obj: withOffer(func(o *agorav1.Offer) { o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferAccept} }), update: func(o client.Object) {
		o.(*agorav1.Offer).Spec.Answer.Type = agorav1.OfferDecline
	}, wantMsg: "an offer is answered exactly once"},
	{name: "offer answer removed", obj: withOffer(func(o *agorav1.Offer) { o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferDecline} }), update: func(o client.Object) {
		o.(*agorav1.Offer).Spec.Answer = nil
	}, wantMsg: "an offer is answered exactly once"},
	{name: "offer resources changed", obj: withOffer(func(*agorav1.Offer) {}), update: func(o client.Object) { o.(*agorav1.Offer).Spec.Resources.CPUs = b.Q("64") }, wantMsg: "an offer's resources are immutable"},
	{name: "offer agent changed", obj: withOffer(func(*agorav1.Offer) {}), update: func(o client.Object) { o.(*agorav1.Offer).Spec.AgentName = "node-9" }, wantMsg: "an offer's framework, agent and role are immutable"},
	{name: "offer expiry extended", obj: withOffer(func(*agorav1.Offer) {}), update: func(o client.Object) {
		o.(*agorav1.Offer).Spec.ExpiresAt = metav1.NewTime(time.Now().Add(24 * time.Hour).Truncate(time.Second))
	}, wantMsg: "an offer's expiresAt is immutable"},
	{name: "offer attributes changed", obj: withOffer(func(*agorav1.Offer) {}), update: func(o client.Object) {
		o.(*agorav1.Offer).Spec.Attributes = []agorav1.Attribute{{Name: "gpu", Text: ptr("yes")}}
	}, wantMsg: "an offer's hostname and attributes are immutable"},
	{name: "answer to a rescinded offer", obj: withOffer(func(o *agorav1.Offer) { o.Status.Phase = agorav1.OfferRescinded }), update: func(o client.Object) {
		o.(*agorav1.Offer).Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferAccept}
	}, wantMsg: "spec.answer: Invalid value: this offer was already rescinded or expired"},
	{name: "unknown answer", obj: withOffer(func(o *agorav1.Offer) { o.Spec.Answer = &agorav1.OfferAnswer{Type: "Maybe"} }), wantMsg: "Unsupported value: \"Maybe\""},
	{name: "negative refuseSeconds", obj: withOffer(func(o *agorav1.Offer) {
		o.Spec.Answer = &agorav1.OfferAnswer{Type: agorav1.OfferDecline, RefuseSeconds: ptr(int32(-5))}
	}), wantMsg: "spec.answer.refuseSeconds: Invalid value: -5: spec.answer.refuseSeconds in body should be greater than or equal to 0"},
	{name: "attribute with two values", obj: withOffer(func(o *agorav1.Offer) {
		o.Spec.Attributes = []agorav1.Attribute{{Name: "rack", Text: ptr("r1"), Scalar: b.Q("3")}}
	}), wantMsg: "an attribute must set exactly one of text, scalar or ranges"},

	// Frameworks.
	{name: "invalid role name", obj: withFramework(func(f *agorav1.Framework) { f.Spec.Roles = []string{"Eng Web"} }), wantMsg: "spec.roles[0]: Invalid value: \"Eng Web\""},
	{name: "suppressing an unknown role", obj: withFramework(func(f *agorav1.Framework) {
		f.Spec.Roles = []string{"a"}
		f.Spec.SuppressedRoles = []string{"b"}
	}), wantMsg: "suppressedRoles must name roles listed in roles"},
	{name: "negative failover timeout", obj: withFramework(func(f *agorav1.Framework) { f.Spec.FailoverTimeout = &metav1.Duration{Duration: -time.Hour} }), wantMsg: "failoverTimeout must not be negative"},
	{name: "invalid lease name", obj: withFramework(func(f *agorav1.Framework) { f.Spec.LeaseName = "Not/Valid" }), wantMsg: "spec.leaseName in body should match"},
	{name: "unknown capability", obj: withFramework(func(f *agorav1.Framework) { f.Spec.Capabilities = []agorav1.FrameworkCapability{"TELEPORT"} }), wantMsg: "Unsupported value: \"TELEPORT\""},

	// Resource roles.
	{name: "zero weight", obj: withRole(func(r *agorav1.ResourceRole) { r.Spec.Weight = b.Q("0") }), wantMsg: "weight must be greater than 0"},
	{name: "cpu guarantee above limit", obj: withRole(func(r *agorav1.ResourceRole) {
		r.Spec.Guarantee = &agorav1.Resources{CPUs: b.Q("8")}
		r.Spec.Limit = &agorav1.Resources{CPUs: b.Q("4")}
	}), wantMsg: "quota guarantee of cpus must not exceed the limit"},
	{name: "mem guarantee above limit", obj: withRole(func(r *agorav1.ResourceRole) {
		r.Spec.Guarantee = &agorav1.Resources{Mem: b.Q("8Gi")}
		r.Spec.Limit = &agorav1.Resources{Mem: b.Q("4Gi")}
	}), wantMsg: "quota guarantee of mem must not exceed the limit"},
	{name: "namespaces and selector", obj: withRole(func(r *agorav1.ResourceRole) {
		r.Spec.Namespaces = []string{"a"}
		r.Spec.NamespaceSelector = &metav1.LabelSelector{}
	}), wantMsg: "set namespaces or namespaceSelector, not both"},
	{name: "invalid namespace name", obj: withRole(func(r *agorav1.ResourceRole) { r.Spec.Namespaces = []string{"Team_A"} }), wantMsg: "spec.namespaces[0] in body should match"},
	{name: "selector operator unknown", obj: withRole(func(r *agorav1.ResourceRole) {
		r.Spec.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Bogus"}}}
	}), wantMsg: "operator must be In, NotIn, Exists or DoesNotExist"},
	{name: "selector In without values", obj: withRole(func(r *agorav1.ResourceRole) {
		r.Spec.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpIn}}}
	}), wantMsg: "In and NotIn need values, Exists and DoesNotExist take none"},
	{name: "selector Exists with values", obj: withRole(func(r *agorav1.ResourceRole) {
		r.Spec.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: metav1.LabelSelectorOpExists, Values: []string{"a"}}}}
	}), wantMsg: "In and NotIn need values, Exists and DoesNotExist take none"},
}

// TestDurationsNeedAUnit: a duration without a unit ("10") is refused with
// a message naming the field and an example, not CEL's conversion error;
// the forms Go's time.ParseDuration reads are accepted.
func TestDurationsNeedAUnit(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "durations")
	framework := func(name, timeout string) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "scheduling.agora.dev/v1alpha1", "kind": "Framework",
			"metadata": map[string]any{"namespace": ns, "name": name},
			"spec":     map[string]any{"failoverTimeout": timeout},
		}}
	}
	taskWithGrace := func(name, grace string) *unstructured.Unstructured {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(task(ns))
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{Object: obj}
		u.SetAPIVersion("scheduling.agora.dev/v1alpha1")
		u.SetKind("Task")
		u.SetName(name)
		if err := unstructured.SetNestedField(u.Object, grace, "spec", "killPolicy", "gracePeriod"); err != nil {
			t.Fatal(err)
		}
		return u
	}
	for i, bad := range []string{"10", "1 h", "forever", "1d"} {
		err := env.Client.Create(ctx, framework("bad-"+itoa(i), bad))
		if err == nil || !strings.Contains(err.Error(), "failoverTimeout must be a duration with a unit, e.g. 30m") {
			t.Errorf("failoverTimeout %q: got %v, want the duration message", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "type conversion error") {
			t.Errorf("failoverTimeout %q: the error still carries CEL's conversion error: %v", bad, err)
		}
		err = env.Client.Create(ctx, taskWithGrace("bad-"+itoa(i), bad))
		if err == nil || !strings.Contains(err.Error(), "killPolicy.gracePeriod must be a duration with a unit") {
			t.Errorf("gracePeriod %q: got %v, want the duration message", bad, err)
		}
	}
	if err := env.Client.Create(ctx, framework("negative", "-5m")); err == nil || !strings.Contains(err.Error(), "failoverTimeout must not be negative") {
		t.Errorf("failoverTimeout -5m: got %v, want the negative message", err)
	}
	for i, good := range []string{"0", "168h", "1h30m", "1.5h", "500ms", "2m0.5s", "+3s"} {
		if err := env.Client.Create(ctx, framework("good-"+itoa(i), good)); err != nil {
			t.Errorf("failoverTimeout %q refused: %v", good, err)
		}
	}
	for i, good := range []string{"0", "3s", "1h", "0.5m", "500ms", "2m0.5s", "+3s"} {
		if err := env.Client.Create(ctx, taskWithGrace("good-"+itoa(i), good)); err != nil {
			t.Errorf("gracePeriod %q refused: %v", good, err)
		}
	}
}

// TestValidationRejectsInvalidObjects proves each CRD rule rejects the object
// it is about with a message that says what to fix.
func TestValidationRejectsInvalidObjects(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "validation")
	for i, tc := range invalidCases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj(ns)
			obj.SetName(obj.GetName() + "-" + strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(tc.name, " ", "-"), "*", "")) + "-" + itoa(i))
			if len(obj.GetName()) > 63 {
				obj.SetName(obj.GetName()[len(obj.GetName())-63:])
			}
			obj.SetName(strings.Trim(obj.GetName(), "-"))
			var err error
			if tc.update == nil {
				err = env.Client.Create(ctx, obj)
			} else {
				if err := createWithStatus(ctx, obj); err != nil {
					t.Fatalf("creating the valid object first: %v", err)
				}
				tc.update(obj)
				if tc.statusUpdate {
					err = env.Client.Status().Update(ctx, obj)
				} else {
					err = env.Client.Update(ctx, obj)
				}
			}
			if err == nil {
				t.Fatalf("the apiserver accepted an invalid object; want an error containing %q", tc.wantMsg)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.wantMsg)
			}
		})
	}
	if len(invalidCases) < 25 {
		t.Fatalf("only %d invalid cases", len(invalidCases))
	}
}

// createWithStatus creates obj and then writes the status it was built with
// (a create ignores status when the status subresource is on).
func createWithStatus(ctx context.Context, obj client.Object) error {
	status := obj.DeepCopyObject().(client.Object)
	if err := env.Client.Create(ctx, obj); err != nil {
		return err
	}
	switch s := status.(type) {
	case *agorav1.Task:
		if s.Status == (agorav1.TaskStatus{}) {
			return nil
		}
		obj.(*agorav1.Task).Status = s.Status
	case *agorav1.Offer:
		if s.Status.Phase == "" {
			return nil
		}
		obj.(*agorav1.Offer).Status = s.Status
	default:
		return nil
	}
	return env.Client.Status().Update(ctx, obj)
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// TestTaskLifeIsAccepted: the writes of a task's life that the rules must
// let through: the kill request, the first status write with the bind,
// TASK_LOST and back to TASK_RUNNING (its agent came back), a terminal
// state, and a state removed from a task not yet terminal.
func TestTaskLifeIsAccepted(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "task-life")
	tk := task(ns)
	tk.Spec.HealthCheck = &agorav1.HealthCheck{Type: agorav1.HealthCheckTCP, Port: ptr(int32(8080))}
	tk.Spec.Command.Env = []agorav1.EnvVar{{Name: "GREETING", Value: "hi"}}
	if err := env.Client.Create(ctx, tk); err != nil {
		t.Fatal(err)
	}
	step := func(what string, status bool, change func(*agorav1.Task)) {
		t.Helper()
		change(tk)
		var err error
		if status {
			err = env.Client.Status().Update(ctx, tk)
		} else {
			err = env.Client.Update(ctx, tk)
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	bound := metav1.NewTime(time.Unix(1700000000, 0))
	step("staging", true, func(t *agorav1.Task) { t.Status.State = agorav1.TaskStaging })
	step("staging state removed", true, func(t *agorav1.Task) { t.Status.State = "" })
	step("running, with the bind", true, func(t *agorav1.Task) {
		t.Status = agorav1.TaskStatus{State: agorav1.TaskRunning, Source: agorav1.SourceExecutor, BindTime: &bound, Role: "*", StartTime: &bound}
	})
	step("lost", true, func(t *agorav1.Task) {
		t.Status.State, t.Status.Source, t.Status.Reason = agorav1.TaskLost, agorav1.SourceMaster, agorav1.ReasonAgentRemoved
	})
	step("running again", true, func(t *agorav1.Task) {
		t.Status.State, t.Status.Source, t.Status.Reason = agorav1.TaskRunning, agorav1.SourceAgent, agorav1.ReasonAgentReregistered
	})
	step("kill requested", false, func(t *agorav1.Task) { t.Spec.Kill = true })
	step("killed", true, func(t *agorav1.Task) {
		t.Status.State, t.Status.Source, t.Status.Reason = agorav1.TaskKilled, agorav1.SourceExecutor, ""
	})
	step("message on a killed task", true, func(t *agorav1.Task) { t.Status.Message = "killed on request" })
}
