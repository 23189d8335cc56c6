package writecost

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel/model"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/common"
	"sigs.k8s.io/yaml"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

// taskRules is the Task CRD's CEL validator with the rules keep accepts
// (the variant BenchmarkTaskWrites installs), built as the apiserver builds it.
func taskRules(tb testing.TB, keep func(string) bool) (*cel.Validator, *structuralschema.Structural) {
	tb.Helper()
	dir, err := crdVariant(tb.TempDir(), keep)
	if err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "scheduling.agora.dev_tasks.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	_, ss := structuralOf(tb, data)
	return cel.NewValidator(ss, true, celconfig.PerCallLimit), ss
}

// structuralOf reads a CRD strictly and builds its first version's
// structural schema, as the apiserver does.
func structuralOf(tb testing.TB, data []byte) (*apiextensionsv1.CustomResourceDefinition, *structuralschema.Structural) {
	tb.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		tb.Fatal(err)
	}
	var internal apiextensionsinternal.JSONSchemaProps
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, &internal, nil); err != nil {
		tb.Fatal(err)
	}
	ss, err := structuralschema.NewStructural(&internal)
	if err != nil {
		tb.Fatal(err)
	}
	return &crd, ss
}

// statusWrites are a task's RUNNING and terminal status writes as the
// apiserver sees them (old and new object), for a Task shaped like the
// scale benchmark's.
func statusWrites(tb testing.TB) [][2]map[string]any {
	tb.Helper()
	t := builders.Task("ns", "t-1", "fw").OfferRef("fw-agent-1-abcde", "1111-2222", "agent-1").Resources(builders.Res("1", "1Gi")).Obj()
	t.Annotations = map[string]string{"sim.agora.dev/duration": "1s"}
	toMap := func(t *agorav1.Task) map[string]any {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(t)
		if err != nil {
			tb.Fatal(err)
		}
		return m
	}
	created := toMap(t)
	now := t.CreationTimestamp
	t.Status = agorav1.TaskStatus{State: agorav1.TaskRunning, Source: agorav1.SourceExecutor, BindTime: &now, Role: "*", StartTime: &now, Sandbox: "sim://ns/t-1"}
	running := toMap(t)
	exit := int32(0)
	t.Status.State, t.Status.CompletionTime, t.Status.ExitCode = agorav1.TaskFinished, &now, &exit
	finished := toMap(t)
	return [][2]map[string]any{{running, created}, {finished, running}}
}

// BenchmarkTaskStatusRules: the CPU and allocations the Task CRD's CEL
// rules take on one status write (RUNNING, then terminal, alternately), in
// process, as the apiserver's status strategy runs them (with ratcheting):
// the rules run over the whole object, spec included, on every status
// write. Measured alone, so that a change to the rules shows without the
// apiserver's noise.
func BenchmarkTaskStatusRules(b *testing.B) {
	for _, vr := range variants {
		b.Run(vr.name, func(b *testing.B) { benchRules(b, vr.keep) })
	}
}

func benchRules(b *testing.B, keep func(string) bool) {
	v, ss := taskRules(b, keep)
	writes := statusWrites(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		w := writes[i%len(writes)]
		if errs := validate(v, ss, w[0], w[1]); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// validate runs the rules on an update of old to obj, as the apiserver's
// status strategy does.
func validate(v *cel.Validator, ss *structuralschema.Structural, obj, old map[string]any) field.ErrorList {
	correlated := common.NewCorrelatedObject(obj, old, &model.Structural{Structural: ss})
	errs, _ := v.Validate(context.Background(), nil, ss, obj, old, celconfig.RuntimeCELCostBudget, cel.WithRatcheting(correlated))
	return errs
}

// TestTaskRulesInProcess: the validator the benchmark times is the CRD's:
// it passes the benchmark's writes and refuses a terminal task's return to
// TASK_RUNNING with the rule's message.
func TestTaskRulesInProcess(t *testing.T) {
	v, ss := taskRules(t, func(string) bool { return true })
	writes := statusWrites(t)
	for _, w := range writes {
		if errs := validate(v, ss, w[0], w[1]); len(errs) > 0 {
			t.Fatalf("a valid status write refused: %v", errs)
		}
	}
	finished, running := writes[1][0], writes[0][0]
	errs := validate(v, ss, running, finished)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "a task in a terminal state cannot change state") {
		t.Fatalf("TASK_FINISHED -> TASK_RUNNING: got %v, want the terminal-state rule's error", errs)
	}
}
