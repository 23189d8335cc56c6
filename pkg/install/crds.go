// Package install applies Agora's CustomResourceDefinitions to a cluster and
// waits until the apiserver serves them.
package install

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/config"
)

// FieldManager is the server-side apply manager of objects Agora installs.
const FieldManager = "agora-install"

// CRDs server-side-applies the embedded CRDs and waits until every one is
// Established, returning their names.
func CRDs(ctx context.Context, cfg *rest.Config) ([]string, error) {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	objs, err := embeddedCRDs()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, o := range objs {
		if err := apply(ctx, c, o); err != nil {
			return nil, err
		}
		names = append(names, o.GetName())
	}
	for _, o := range objs {
		if err := waitEstablished(ctx, c, o.GetName()); err != nil {
			return nil, err
		}
	}
	return names, nil
}

func embeddedCRDs() ([]*unstructured.Unstructured, error) {
	files, err := fs.Glob(config.CRDs, "crd/bases/*.yaml")
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		data, err := config.CRDs.ReadFile(f)
		if err != nil {
			return nil, err
		}
		u, err := decode(data, f)
		if err != nil {
			return nil, err
		}
		objs = append(objs, u)
	}
	return objs, nil
}

func waitEstablished(ctx context.Context, c client.Client, name string) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apiextensions.k8s.io/v1")
		u.SetKind("CustomResourceDefinition")
		if err := c.Get(ctx, client.ObjectKey{Name: name}, u); err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// decode reads one embedded manifest (what names it in errors).
func decode(data []byte, what string) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096).Decode(&u.Object); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	return u, nil
}

// apply server-side-applies o as Agora's installer, taking over its fields.
func apply(ctx context.Context, c client.Client, o *unstructured.Unstructured) error {
	if err := c.Patch(ctx, o, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
	}
	return nil
}
