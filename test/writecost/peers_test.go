package writecost

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// untypedCRD is a custom resource with no schema beyond "any object" and a
// status subresource: written with a Task's body, it costs what the
// apiserver's custom-resource path costs, without the Task's schema and rules.
const untypedCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: untypeds.writecost.agora.dev
spec:
  group: writecost.agora.dev
  scope: Namespaced
  names: {plural: untypeds, singular: untyped, kind: Untyped, listKind: UntypedList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status: {type: object, x-kubernetes-preserve-unknown-fields: true}
`

// BenchmarkPeerWrites: the same life as BenchmarkTaskWrites, on the same
// control plane as its cel=all variant, for two peers: an Untyped custom
// resource carrying a Task's body (what any custom resource of that size
// costs), and a ConfigMap like the scale benchmark's ceiling creates, whose
// two patches change its data (what a small built-in object costs). Run it
// in the same process as BenchmarkTaskWrites/cel=all, so the three share
// one apiserver and its state.
func BenchmarkPeerWrites(b *testing.B) {
	b.Run("kind=Untyped", func(b *testing.B) {
		e := envFor(b, variants[0].name, variants[0].keep)
		runLife(b, e, untypedLife(e.Client, e.Namespace(b, "wc")))
	})
	b.Run("kind=ConfigMap", func(b *testing.B) {
		e := envFor(b, variants[0].name, variants[0].keep)
		runLife(b, e, configMapLife(e.Client, e.Namespace(b, "wc")))
	})
}

func untypedLife(c client.Client, ns string) life {
	obj := func(i int) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("writecost.agora.dev/v1alpha1")
		u.SetKind("Untyped")
		u.SetNamespace(ns)
		u.SetName(taskName(i))
		return u
	}
	return life{
		ns: ns,
		create: func(ctx context.Context, i int) (string, error) {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(benchTask(ns, i))
			if err != nil {
				return "", err
			}
			u := obj(i)
			u.Object["metadata"], u.Object["spec"] = m["metadata"], m["spec"]
			err = c.Create(ctx, u)
			return u.GetResourceVersion(), err
		},
		patch: func(ctx context.Context, i int, rv *string, status map[string]any) error {
			return patchStatus(ctx, c, obj(i), rv, status)
		},
		delete: func(ctx context.Context, i int) error { return c.Delete(ctx, obj(i)) },
	}
}

func configMapLife(c client.Client, ns string) life {
	obj := func(i int) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: taskName(i)}}
	}
	return life{
		ns: ns,
		create: func(ctx context.Context, i int) (string, error) {
			cm := obj(i)
			cm.Data = map[string]string{"k": "v"}
			err := c.Create(ctx, cm)
			return cm.ResourceVersion, err
		},
		patch: func(ctx context.Context, i int, rv *string, fields map[string]any) error {
			data := map[string]string{}
			for k, v := range fields {
				data[k] = fmt.Sprint(v)
			}
			body, err := json.Marshal(map[string]any{"metadata": map[string]any{"resourceVersion": *rv}, "data": data})
			if err != nil {
				return err
			}
			cm := obj(i)
			if err := c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, body)); err != nil {
				return err
			}
			*rv = cm.ResourceVersion
			return nil
		},
		delete: func(ctx context.Context, i int) error { return c.Delete(ctx, obj(i)) },
	}
}

// TestUntypedCRD: the peer's CRD is one the apiserver takes (strict YAML,
// a structural schema), so that BenchmarkPeerWrites' control plane starts.
func TestUntypedCRD(t *testing.T) {
	crd, ss := structuralOf(t, []byte(untypedCRD))
	if errs := structuralschema.ValidateStructural(nil, ss); len(errs) > 0 {
		t.Fatalf("the Untyped schema is not structural: %v", errs.ToAggregate())
	}
	if crd.Spec.Versions[0].Subresources == nil || crd.Spec.Versions[0].Subresources.Status == nil {
		t.Fatal("the Untyped CRD has no status subresource: its status patches would not be the Task's")
	}
}
