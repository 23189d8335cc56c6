package main

import (
	"math"
	"strings"
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

// TestWritesByResource: Agora's writes per task by resource stand beside
// the kube-scheduler reference's per pod when the reference ran, and alone
// when it did not (--skip-refs).
func TestWritesByResource(t *testing.T) {
	r := newResult()
	r.set("agora.finished", 100)
	r.writes["tasks"], r.writes["leases"] = 400, 100
	var alone strings.Builder
	writesByResource(&alone, r)
	for _, want := range []string{"| tasks | 400 | 4.00 |\n", "| leases | 100 | 1.00 |\n"} {
		if !strings.Contains(alone.String(), want) {
			t.Errorf("without the reference, no row %q in:\n%s", want, alone.String())
		}
	}
	if strings.Contains(alone.String(), "pods") || strings.Contains(alone.String(), "kube-scheduler") {
		t.Errorf("without the reference, a reference column or row in:\n%s", alone.String())
	}

	r.set("sched.writes_per_pod", 4.9)
	r.set("sched.writes_per_pod.pods", 1)
	r.set("sched.writes_per_pod.leases", 1.9)
	r.set("sched.writes_per_pod.bindings", 1)
	r.set("sched.writes_per_pod.events", 1)
	var both strings.Builder
	writesByResource(&both, r)
	for _, want := range []string{"| tasks | 400 | 4.00 | 0.00 |\n", "| leases | 100 | 1.00 | 1.90 |\n", "| pods | 0 | 0.00 | 1.00 |\n", "| bindings | 0 | 0.00 | 1.00 |\n"} {
		if !strings.Contains(both.String(), want) {
			t.Errorf("with the reference, no row %q in:\n%s", want, both.String())
		}
	}
	if strings.Contains(both.String(), "| offers |") {
		t.Errorf("a row for a resource neither wrote, in:\n%s", both.String())
	}
}
