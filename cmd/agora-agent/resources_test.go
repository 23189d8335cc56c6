package main

import (
	"strings"
	"testing"

	"github.com/agora-sched/agora/pkg/resources"
)

func TestOverrideResources(t *testing.T) {
	measured := resources.Scalars(8000, 16<<30, 100<<30, 0)
	got, err := overrideResources(measured, "cpus:2;mem:4Gi")
	if err != nil {
		t.Fatal(err)
	}
	want := resources.Scalars(2000, 4<<30, 100<<30, 0)
	if got.Scalars != want.Scalars {
		t.Errorf("override = %v, want %v (disk kept as measured)", got, want)
	}
	if same, _ := overrideResources(measured, ""); !same.Equal(measured) {
		t.Errorf("an empty --resources changed the measured resources: %v", same)
	}
	if _, err := overrideResources(measured, "cpus:lots"); err == nil || !strings.Contains(err.Error(), "--resources") {
		t.Errorf("bad --resources gave %v, want an error naming the flag", err)
	}
}
