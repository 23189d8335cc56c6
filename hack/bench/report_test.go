package main

import (
	"math"
	"testing"
)

// TestDeriveServerCPU: the apiserver's CPU per write comes from its cores
// over the writes per s of the same window, and each ceiling's from its own
// cores and rate; a ceiling not measured gives no ratio.
func TestDeriveServerCPU(t *testing.T) {
	r := newResult()
	r.set("cpu.kube-apiserver", 1.2)
	r.set("writes.per_s", 600)
	r.set("ceiling.ConfigMap", 2000)
	r.set("ceilcpu.ConfigMap.kube-apiserver", 1.6)
	r.derive()
	for key, want := range map[string]float64{
		"apiserver.ms_per_write":                     2.0,
		"apiserver.ms_per_create.ConfigMap":          0.8,
		"ratio.apiserver_cores_vs_ConfigMap_ceiling": 0.75,
	} {
		if got, ok := r.get(key); !ok || math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v (set: %v), want %v", key, got, ok, want)
		}
	}
	if v, ok := r.get("ratio.apiserver_cores_vs_Task_ceiling"); ok {
		t.Errorf("Task ceiling not measured, yet its ratio is %v", v)
	}
}
