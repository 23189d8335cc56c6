// Package writecost measures what the apiserver spends on each write of a
// task's life (create, RUNNING, terminal, delete), and how much of it the
// Task CRD's CEL rules take: the scale benchmark (hack/bench) is too noisy
// on shared machines to show a change of a few percent, while this one
// runs nothing but those writes. BenchmarkPeerWrites makes the same writes
// to two peers on the same apiserver, a custom resource with no schema and
// a ConfigMap, so that a Task's cost can be set beside theirs.
// BenchmarkTaskStatusRules times the rules alone, in process, for changes
// too small for the apiserver's CPU to show.
// Run them with make bench-writes; make test runs only the harness's own
// tests. docs/benchmarks.md records what they measured.
package writecost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/internal/testenv"
)

// concurrency is the clients writing at once, as the scale benchmark's.
const concurrency = 16

// variants of the Task CRD: which of its x-kubernetes-validations rules
// stay. A transition rule is one that reads oldSelf.
var variants = []struct {
	name string
	keep func(rule string) bool
}{
	{"cel=all", func(string) bool { return true }},
	{"cel=none", func(string) bool { return false }},
	{"cel=no-transition", func(r string) bool { return !strings.Contains(r, "oldSelf") }},
	{"cel=transition-only", func(r string) bool { return strings.Contains(r, "oldSelf") }},
}

// envs are the control planes of the variants, started on first use and
// stopped by TestMain: the testing package calls a benchmark once with
// b.N = 1 before the real run, and a second control plane would only add
// its start-up.
var envs = map[string]*testenv.Env{}

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard()) // envtest's start-up logs say nothing measured here
	code := m.Run()
	for _, e := range envs {
		_ = e.Stop()
	}
	os.Exit(code)
}

// BenchmarkTaskWrites: one op is one task's four writes, made phase by
// phase over all b.N tasks (all creates, then all RUNNING writes, ...) by
// 16 clients. Each phase reports the apiserver's CPU per write, from its
// process_cpu_seconds_total; run with -benchtime 2000x or more, as the
// metric counts in steps of 10 ms.
func BenchmarkTaskWrites(b *testing.B) {
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) { measure(b, envFor(b, v.name, v.keep)) })
	}
}

// envFor is the control plane of a variant, started on first use.
func envFor(b *testing.B, name string, keep func(string) bool) *testenv.Env {
	if e := envs[name]; e != nil {
		return e
	}
	dir, err := crdVariant(b.TempDir(), keep)
	if err != nil {
		b.Fatal(err)
	}
	// TempDir goes with the calling benchmark; the CRDs are installed by then.
	e, err := testenv.StartWithCRDs(dir)
	if err != nil {
		b.Fatal(err)
	}
	envs[name] = e
	return e
}

func measure(b *testing.B, e *testenv.Env) {
	runLife(b, e, taskLife(e.Client, e.Namespace(b, "wc")))
}

// life is what a task's four writes are for one kind of object: the
// Task itself, or a peer that shows what the apiserver's path for that
// kind costs beside it.
type life struct {
	ns     string // where its objects live
	create func(ctx context.Context, i int) (resourceVersion string, err error)
	// patch writes fields as the agent writes a status: a merge patch
	// conditioned on the resourceVersion last seen, which it updates.
	patch  func(ctx context.Context, i int, rv *string, fields map[string]any) error
	delete func(ctx context.Context, i int) error
}

// runLife makes b.N objects live a task's life, phase by phase (all
// creates, then all RUNNING writes, ...) by 16 clients, and reports the
// apiserver's CPU per write of each phase.
func runLife(b *testing.B, e *testenv.Env, l life) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(e.Config)
	if err != nil {
		b.Fatal(err)
	}
	rvs := make([]string, b.N)
	phase := func(unit string, write func(i int) error) {
		before := apiserverCPU(ctx, b, cs)
		inParallel(b.N, func(i int) {
			if err := write(i); err != nil {
				b.Error(err)
			}
		})
		b.ReportMetric((apiserverCPU(ctx, b, cs)-before)*1000/float64(b.N), unit)
	}
	b.ResetTimer()
	phase("create-cpu-ms", func(i int) (err error) {
		rvs[i], err = l.create(ctx, i)
		return err
	})
	now := metav1.Now()
	phase("running-cpu-ms", func(i int) error {
		return l.patch(ctx, i, &rvs[i], map[string]any{
			"state": agorav1.TaskRunning, "source": agorav1.SourceExecutor, "bindTime": now, "role": "*",
			"startTime": now, "sandbox": "sim://" + l.ns + "/" + taskName(i),
		})
	})
	phase("terminal-cpu-ms", func(i int) error {
		return l.patch(ctx, i, &rvs[i], map[string]any{
			"state": agorav1.TaskFinished, "source": agorav1.SourceExecutor, "completionTime": now, "exitCode": 0,
		})
	})
	phase("delete-cpu-ms", func(i int) error { return l.delete(ctx, i) })
}

func taskName(i int) string { return fmt.Sprintf("t-%d", i) }

// benchTask is a Task shaped like the scale benchmark's.
func benchTask(ns string, i int) *agorav1.Task {
	t := builders.Task(ns, taskName(i), "fw").OfferRef("fw-agent-1-abcde", "1111-2222", "agent-1").Resources(builders.Res("1", "1Gi")).Obj()
	t.Annotations = map[string]string{"sim.agora.dev/duration": "1s"}
	t.OwnerReferences = []metav1.OwnerReference{{APIVersion: agorav1.GroupVersion.String(), Kind: "Framework", Name: "fw", UID: "3333-4444"}}
	return t
}

// taskLife is a Task's life as the framework and the agent write it.
func taskLife(c client.Client, ns string) life {
	return life{
		ns: ns,
		create: func(ctx context.Context, i int) (string, error) {
			t := benchTask(ns, i)
			err := c.Create(ctx, t)
			return t.ResourceVersion, err
		},
		patch: func(ctx context.Context, i int, rv *string, status map[string]any) error {
			return patchStatus(ctx, c, &agorav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: taskName(i)}}, rv, status)
		},
		delete: func(ctx context.Context, i int) error {
			return c.Delete(ctx, &agorav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: taskName(i)}})
		},
	}
}

// patchStatus writes status as the agent does: a merge patch of the status
// subresource conditioned on the resourceVersion it last saw.
func patchStatus(ctx context.Context, c client.Client, obj client.Object, rv *string, status map[string]any) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": *rv}, "status": status})
	if err != nil {
		return err
	}
	if err := c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, body)); err != nil {
		return err
	}
	*rv = obj.GetResourceVersion()
	return nil
}

func inParallel(n int, f func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range next {
				f(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// apiserverCPU reads the apiserver's process_cpu_seconds_total.
func apiserverCPU(ctx context.Context, b *testing.B, cs kubernetes.Interface) float64 {
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for line := range bytes.Lines(raw) {
		if v, ok := strings.CutPrefix(string(line), "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatal(err)
			}
			return f
		}
	}
	b.Fatal("the apiserver's /metrics has no process_cpu_seconds_total")
	return 0
}

// crdVariant writes config/crd/bases into dir, with the Task CRD's rules
// cut to those keep accepts.
func crdVariant(dir string, keep func(rule string) bool) (string, error) {
	src := filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")
	entries, err := os.ReadDir(src)
	if err != nil {
		return "", err
	}
	for _, ent := range entries {
		data, err := os.ReadFile(filepath.Join(src, ent.Name()))
		if err != nil {
			return "", err
		}
		if strings.HasSuffix(ent.Name(), "_tasks.yaml") {
			var crd map[string]any
			if err := yaml.Unmarshal(data, &crd); err != nil {
				return "", err
			}
			filterRules(crd, keep)
			if data, err = yaml.Marshal(crd); err != nil {
				return "", err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ent.Name()), data, 0o644); err != nil {
			return "", err
		}
	}
	return dir, os.WriteFile(filepath.Join(dir, "writecost_untyped.yaml"), []byte(untypedCRD), 0o644)
}

// filterRules drops, anywhere in v, the x-kubernetes-validations rules
// keep rejects.
func filterRules(v any, keep func(rule string) bool) {
	switch x := v.(type) {
	case map[string]any:
		if rules, ok := x["x-kubernetes-validations"].([]any); ok {
			var kept []any
			for _, r := range rules {
				if m, ok := r.(map[string]any); ok && keep(fmt.Sprint(m["rule"])) {
					kept = append(kept, r)
				}
			}
			if len(kept) == 0 {
				delete(x, "x-kubernetes-validations")
			} else {
				x["x-kubernetes-validations"] = kept
			}
		}
		for _, child := range x {
			filterRules(child, keep)
		}
	case []any:
		for _, child := range x {
			filterRules(child, keep)
		}
	}
}

// TestFilterRules: the variants keep exactly the rules they name.
func TestFilterRules(t *testing.T) {
	crd := map[string]any{"spec": map[string]any{
		"x-kubernetes-validations": []any{
			map[string]any{"rule": "self.a == oldSelf.a"},
			map[string]any{"rule": "self.b > 0"},
		},
		"properties": map[string]any{"c": map[string]any{
			"x-kubernetes-validations": []any{map[string]any{"rule": "self.size() > 0"}},
		}},
	}}
	filterRules(crd, variants[3].keep) // transition-only
	got, _ := json.Marshal(crd)
	want := `{"spec":{"properties":{"c":{}},"x-kubernetes-validations":[{"rule":"self.a == oldSelf.a"}]}}`
	if string(got) != want {
		t.Fatalf("transition-only kept %s, want %s", got, want)
	}
}
