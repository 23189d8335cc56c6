package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strings"
)

// result is one run's figures by key (see rows for their meaning).
type result struct {
	m          map[string]float64
	writes     writeCounts // Agora phase, by resource
	notes      []string
	profileTop string
	// serverLatency: the apiserver's mean latency per verb on Agora's
	// resources during the phase.
	serverLatency string
	// masterWaits: mean time the master's writes waited in its queue, per lane.
	masterWaits string
}

func newResult() *result { return &result{m: map[string]float64{}, writes: writeCounts{}} }

func (r *result) set(k string, v float64) { r.m[k] = v }

func (r *result) get(k string) (float64, bool) {
	v, ok := r.m[k]
	return v, ok && !math.IsNaN(v) && !math.IsInf(v, 0)
}

// derive computes the ratios to the references and the writes per task by
// resource.
func (r *result) derive() {
	if a, ok := r.get("agora.bound_per_s"); ok {
		if s, ok := r.get("sched.bound_per_s"); ok && s > 0 {
			r.set("ratio.bound_vs_sched", a/s)
		}
	}
	if w, ok := r.get("writes.per_s_queued"); ok {
		if c, ok := r.get("ceiling.ConfigMap"); ok && c > 0 {
			r.set("ratio.writes_vs_cm_ceiling", w/c)
		}
		if c, ok := r.get("ceiling.Task"); ok && c > 0 {
			r.set("ratio.writes_vs_task_ceiling", w/c)
		}
	}
	r.deriveServerCPU()
}

// deriveServerCPU sets the apiserver's CPU per write, in Agora's phase and
// in each ceiling, and how busy Agora kept it against each ceiling: a write
// count alone hides that a status patch costs the apiserver more than a
// create.
func (r *result) deriveServerCPU() {
	const server = "kube-apiserver"
	busy, ok := r.get("cpu." + server)
	if !ok {
		return
	}
	if w, ok := r.get("writes.per_s"); ok && w > 0 {
		r.set("apiserver.ms_per_write", 1000*busy/w)
	}
	for _, kind := range []string{"ConfigMap", "Task"} {
		flooded, ok := r.get("ceilcpu." + kind + "." + server)
		if !ok || flooded <= 0 {
			continue
		}
		r.set("ratio.apiserver_cores_vs_"+kind+"_ceiling", busy/flooded)
		if n, ok := r.get("ceiling." + kind); ok && n > 0 {
			r.set("apiserver.ms_per_create."+kind, 1000*flooded/n)
		}
	}
}

// row is a line of the report: a key, its label and how to print it.
type row struct{ key, label, format string }

var rows = []row{
	{"agora.finished", "Agora: tasks finished", "%.0f"},
	{"agora.elapsed_s", "Agora: phase duration (s)", "%.1f"},
	{"agora.bound_per_s", "Agora: tasks created->bound per s", "%.0f"},
	{"agora.completed_per_s", "Agora: tasks completed per s", "%.0f"},
	{"agora.c2b_p50_ms", "Agora: Task created -> bound p50 (ms)", "%.0f"},
	{"agora.c2b_p99_ms", "Agora: Task created -> bound p99 (ms)", "%.0f"},
	{"agora.c2r_p50_ms", "Agora: Task created -> RUNNING p50 (ms)", "%.0f"},
	{"agora.c2r_p99_ms", "Agora: Task created -> RUNNING p99 (ms)", "%.0f"},
	{"agora.b2r_p50_ms", "Agora: Task bound -> RUNNING p50 (ms)", "%.0f"},
	{"agora.b2r_p99_ms", "Agora: Task bound -> RUNNING p99 (ms)", "%.0f"},
	{"agora.offer_p50_ms", "Agora: offer latency (freed -> offered) p50 (ms)", "%.0f"},
	{"agora.offer_p99_ms", "Agora: offer latency (freed -> offered) p99 (ms)", "%.0f"},
	{"agora.offer_to_task_p50_ms", "Agora: offer seen -> first task on it seen p50 (ms)", "%.0f"},
	{"agora.offer_to_task_p99_ms", "Agora: offer seen -> first task on it seen p99 (ms)", "%.0f"},
	{"agora.offer_samples", "Agora: offer latency samples", "%.0f"},
	{"agora.offer_unmatched", "Agora: releases while tasks wanted offers, never re-offered", "%.0f"},
	{"agora.offers", "Agora: offers created", "%.0f"},
	{"agora.relaunched", "Agora: tasks relaunched (ended without running)", "%.0f"},
	{"agora.client_errors", "Agora: framework client errors", "%.0f"},
	{"writes.total", "apiserver writes during the phase", "%.0f"},
	{"writes.per_task", "apiserver writes per finished task (all)", "%.2f"},
	{"writes.per_task_no_leases", "apiserver writes per finished task, Leases left out", "%.2f"},
	{"writes.per_task_hot", "apiserver writes per finished task on the hot path (Tasks, Offers, Assignments; budget 5)", "%.2f"},
	{"writes.per_s", "apiserver writes per s (whole phase)", "%.0f"},
	{"writes.per_s_queued", "apiserver writes per s while tasks queued", "%.0f"},
	{"master.cpu_s", "master CPU seconds (phase)", "%.1f"},
	{"master.cpu_cores", "master CPU cores (average)", "%.2f"},
	{"agora.preloaded", "finished Tasks preloaded before the phase (held by the master, never run)", "%.0f"},
	{"master.peak_rss_mib", "master peak RSS, VmHWM (MiB)", "%.0f"},
	{"master.rss_mib", "master RSS at the end (MiB)", "%.0f"},
	{"agents.start_s", "agents: all registered and watching (s)", "%.1f"},
	{"agents.rss_kib_per_agent", "agents: RSS per simulated agent, idle (KiB)", "%.0f"},
	{"agents.peak_rss_kib_per_agent", "agents: peak RSS per simulated agent (KiB)", "%.0f"},
	{"agents.real_rss_kib", "agents: RSS of the real agent, idle (KiB)", "%.0f"},
	{"agents.real_peak_rss_kib", "agents: peak RSS of the real agent (KiB)", "%.0f"},
	{"agents.real_finished", "agents: tasks the real agent ran to TASK_FINISHED", "%.0f"},
	{"ceiling.ConfigMap", "ceiling: ConfigMap creates per s", "%.0f"},
	{"ceiling.Task", "ceiling: Task creates per s (no agents/master running)", "%.0f"},
	{"sched.pods", "kube-scheduler: pods bound", "%.0f"},
	{"sched.bound_per_s", "kube-scheduler: pods created->bound per s", "%.0f"},
	{"sched.c2b_p50_ms", "kube-scheduler: pod created -> bound p50 (ms)", "%.0f"},
	{"sched.c2b_p99_ms", "kube-scheduler: pod created -> bound p99 (ms)", "%.0f"},
	{"sched.writes_per_pod", "kube-scheduler: apiserver writes per pod", "%.2f"},
	{"ratio.bound_vs_sched", "ratio: Agora bound/s / kube-scheduler bound/s", "%.2f"},
	{"ratio.writes_vs_cm_ceiling", "ratio: Agora writes/s (queued) / ConfigMap ceiling", "%.2f"},
	{"ratio.writes_vs_task_ceiling", "ratio: Agora writes/s (queued) / Task ceiling", "%.2f"},
	{"apiserver.ms_per_write", "apiserver CPU per Agora write, its reads and watches included (ms; whole phase)", "%.2f"},
	{"apiserver.ms_per_create.ConfigMap", "apiserver CPU per create, ConfigMap ceiling (ms)", "%.2f"},
	{"apiserver.ms_per_create.Task", "apiserver CPU per create, Task ceiling (ms)", "%.2f"},
	{"ratio.apiserver_cores_vs_ConfigMap_ceiling", "ratio: apiserver cores in Agora's phase / in the ConfigMap ceiling", "%.2f"},
	{"ratio.apiserver_cores_vs_Task_ceiling", "ratio: apiserver cores in Agora's phase / in the Task ceiling", "%.2f"},
}

func printResult(w io.Writer, c *config, title string, r *result) {
	fmt.Fprintf(w, "\n### %s: %d agents on %d connections, %d frameworks, %d tasks of %s cpus/%s mem for %s, concurrency %d, allocation interval %s, lease renew %s\n\n",
		title, c.agents, simConnections(c), c.frameworks, c.tasks, c.taskCPUs, c.taskMem, c.taskDuration, c.concurrency, c.allocInterval, c.leaseRenew)
	fmt.Fprintln(w, "| figure | value |")
	fmt.Fprintln(w, "|---|---|")
	for _, rw := range rows {
		if v, ok := r.get(rw.key); ok {
			fmt.Fprintf(w, "| %s | "+rw.format+" |\n", rw.label, v)
		}
	}
	writesByResource(w, r)
	fmt.Fprintln(w)
	for _, g := range goals(c, r) {
		fmt.Fprintln(w, g)
	}
	for _, n := range r.notes {
		fmt.Fprintln(w, "note:", n)
	}
	var cpus []string
	for k, v := range r.m {
		if name, ok := strings.CutPrefix(k, "cpu."); ok {
			cpus = append(cpus, fmt.Sprintf("%s %.2f", name, v))
		}
	}
	if len(cpus) > 0 {
		slices.Sort(cpus)
		fmt.Fprintf(w, "\nCPU cores used during the Agora phase (of %d): %s\n", runtime.NumCPU(), strings.Join(cpus, ", "))
	}
	cpus = cpus[:0]
	for k, v := range r.m {
		if name, ok := strings.CutPrefix(k, "schedcpu."); ok {
			cpus = append(cpus, fmt.Sprintf("%s %.2f", name, v))
		}
	}
	if len(cpus) > 0 {
		slices.Sort(cpus)
		fmt.Fprintf(w, "CPU cores used during the kube-scheduler reference: %s\n", strings.Join(cpus, ", "))
	}
	for _, kind := range []string{"ConfigMap", "Task"} {
		cpus = cpus[:0]
		for k, v := range r.m {
			if name, ok := strings.CutPrefix(k, "ceilcpu."+kind+"."); ok {
				cpus = append(cpus, fmt.Sprintf("%s %.2f", name, v))
			}
		}
		if len(cpus) > 0 {
			slices.Sort(cpus)
			fmt.Fprintf(w, "CPU cores used during the %s ceiling: %s\n", kind, strings.Join(cpus, ", "))
		}
	}
	if r.masterWaits != "" {
		fmt.Fprintf(w, "\nmaster writes, mean wait in its queue by lane: %s\n", r.masterWaits)
	}
	if r.serverLatency != "" {
		fmt.Fprintf(w, "\napiserver mean latency during the Agora phase: %s\n", r.serverLatency)
	}
	if r.profileTop != "" {
		fmt.Fprintf(w, "\nmaster CPU profile (top):\n\n```\n%s```\n", r.profileTop)
	}
}

// goals judges the targets on r; the benchmark asserts nothing.
func goals(c *config, r *result) []string {
	var out []string
	judge := func(name, key string, ok func(v float64) bool, format string) {
		v, have := r.get(key)
		switch {
		case !have:
			out = append(out, fmt.Sprintf("goal %-52s not measured", name))
		case ok(v):
			out = append(out, fmt.Sprintf("goal %-52s met     ("+format+")", name, v))
		default:
			out = append(out, fmt.Sprintf("goal %-52s NOT met ("+format+")", name, v))
		}
	}
	judge("Agora bound/s >= 1.0x kube-scheduler bound/s", "ratio.bound_vs_sched", func(v float64) bool { return v >= 1 }, "%.2fx")
	judge("apiserver writes per finished task <= 5", "writes.per_task", func(v float64) bool { return v <= 5 }, "%.2f")
	judge("writes/s while queued >= 60% of the ConfigMap ceiling", "ratio.writes_vs_cm_ceiling", func(v float64) bool { return v >= 0.6 }, "%.2f")
	limit := ms(c.allocInterval) + 100
	judge(fmt.Sprintf("offer latency p99 <= allocation interval + 100ms (%.0fms)", limit), "agora.offer_p99_ms", func(v float64) bool { return v <= limit }, "%.0f ms")
	judge("Task created -> RUNNING p99 <= 1s", "agora.c2r_p99_ms", func(v float64) bool { return v <= 1000 }, "%.0f ms")
	judge(fmt.Sprintf("master peak RSS <= 1 GiB (at %d agents, %d tasks, %d preloaded finished)", c.agents, c.tasks, c.preload), "master.peak_rss_mib", func(v float64) bool { return v <= 1024 }, "%.0f MiB")
	return out
}

// medianResult takes the median of every figure over the runs.
func medianResult(rs []*result) *result {
	out := newResult()
	keys := map[string]bool{}
	for _, r := range rs {
		for k := range r.m {
			keys[k] = true
		}
	}
	for k := range keys {
		var vs []float64
		for _, r := range rs {
			if v, ok := r.get(k); ok {
				vs = append(vs, v)
			}
		}
		if len(vs) > 0 {
			out.set(k, median(vs))
		}
	}
	for _, k := range append(slices.Clone(reportedResources), "other") {
		var vs []float64
		for _, r := range rs {
			vs = append(vs, r.writes[k])
		}
		out.writes[k] = median(vs)
	}
	for i, r := range rs {
		for _, n := range r.notes {
			out.notes = append(out.notes, fmt.Sprintf("run %d: %s", i+1, n))
		}
	}
	var sb strings.Builder
	for i, r := range rs {
		if r.profileTop != "" {
			fmt.Fprintf(&sb, "(see run %d above)\n", i+1)
			break
		}
	}
	out.profileTop = sb.String()
	return out
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// writesByResource prints Agora's writes per finished task by resource,
// beside the kube-scheduler reference's writes per bound pod in the same
// run (its node Leases, pod creates, bindings and events).
func writesByResource(w io.Writer, r *result) {
	fin, ok := r.get("agora.finished")
	if !ok || fin <= 0 {
		return
	}
	_, sched := r.get("sched.writes_per_pod")
	fmt.Fprintln(w, "\napiserver writes per finished task, by resource (Agora phase, and its acknowledgements):")
	fmt.Fprintln(w)
	if sched {
		fmt.Fprintln(w, "| resource | writes | per task | kube-scheduler reference, per bound pod |")
		fmt.Fprintln(w, "|---|---|---|---|")
	} else {
		fmt.Fprintln(w, "| resource | writes | per task |")
		fmt.Fprintln(w, "|---|---|---|")
	}
	for _, k := range append(slices.Clone(reportedResources), "other") {
		v := r.writes[k]
		ref, _ := r.get("sched.writes_per_pod." + k)
		switch {
		case sched && (v != 0 || ref != 0):
			fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f |\n", k, v, v/fin, ref)
		case !sched && v != 0:
			fmt.Fprintf(w, "| %s | %.0f | %.2f |\n", k, v, v/fin)
		}
	}
}
