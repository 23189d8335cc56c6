package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
)

// writeVerbs are the apiserver_request_total verbs that change state.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "DELETE": true, "APPLY": true, "DELETECOLLECTION": true}

// reportedResources are split out in the report; the rest add up as "other".
var reportedResources = []string{"tasks", "offers", "assignments", "leases", "frameworks", "agents", "events", "pods", "nodes", "bindings", "configmaps"}

// writeCounts are cumulative apiserver writes by resource.
type writeCounts map[string]float64

func (w writeCounts) total() float64 {
	var t float64
	for _, v := range w {
		t += v
	}
	return t
}

// sub is w - before, per resource.
func (w writeCounts) sub(before writeCounts) writeCounts {
	out := writeCounts{}
	for k, v := range w {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// split folds resources not in reportedResources into "other".
func (w writeCounts) split() writeCounts {
	out := writeCounts{}
	for k, v := range w {
		if slices.Contains(reportedResources, k) {
			out[k] += v
		} else {
			out["other"] += v
		}
	}
	return out
}

// scrapeWrites reads apiserver_request_total from the apiserver's /metrics:
// counted by the server, so client retries and every component are in it.
func scrapeWrites(ctx context.Context, cs kubernetes.Interface) (writeCounts, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("scraping apiserver /metrics: %w", err)
	}
	return parseWrites(raw), nil
}

func parseWrites(raw []byte) writeCounts {
	out := writeCounts{}
	eachSample(raw, []string{"apiserver_request_total"}, func(_ string, labels map[string]string, v float64) {
		if !writeVerbs[labels["verb"]] {
			return
		}
		res := labels["resource"]
		if labels["subresource"] == "binding" {
			res = "bindings" // kube-scheduler's pods/binding
		}
		out[res] += v
	})
	return out
}

// eachSample calls fn with the labels and value of every sample in a
// Prometheus text exposition whose metric is one of names.
func eachSample(raw []byte, names []string, fn func(name string, labels map[string]string, v float64)) {
	for line := range strings.SplitSeq(string(raw), "\n") {
		name, rest, ok := strings.Cut(line, "{")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		end := strings.LastIndexByte(rest, '}')
		if end < 0 {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest[end+1:]), 64)
		if err != nil {
			continue
		}
		fn(name, parseLabels(rest[:end]), v)
	}
}

// parseLabels parses `a="x",b="y"`; label values here hold no quotes.
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok {
			m[k] = strings.Trim(v, `"`)
		}
	}
	return m
}

// controlPlanePids finds the control plane's processes by their command
// lines, which name the run's data directory.
func controlPlanePids(dataDir string) map[string]int {
	out := map[string]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(raw, []byte(dataDir)) {
			continue
		}
		argv0, _, _ := bytes.Cut(raw, []byte{0})
		name := filepath.Base(string(argv0))
		switch name {
		case "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler":
			out[name] = pid
		}
	}
	return out
}

// coresSince is the CPU cores every named process used on average since
// cpu0 (cpuOf then), over elapsed.
func coresSince(pids map[string]int, cpu0 map[string]float64, elapsed time.Duration) map[string]float64 {
	out := map[string]float64{}
	for name, v := range cpuOf(pids) {
		out[name] = (v - cpu0[name]) / elapsed.Seconds()
	}
	return out
}

// cpuOf reads the CPU seconds of every named process.
func cpuOf(pids map[string]int) map[string]float64 {
	out := map[string]float64{}
	for name, pid := range pids {
		if st, err := readProc(pid); err == nil {
			out[name] = st.cpuSeconds
		}
	}
	return out
}

// serverLatency is the apiserver's mean latency per verb and resource.
type serverLatency map[string][2]float64 // "VERB resource" -> sum seconds, count

func scrapeLatency(ctx context.Context, cs kubernetes.Interface) serverLatency {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil
	}
	return parseLatency(raw)
}

func parseLatency(raw []byte) serverLatency {
	out := serverLatency{}
	eachSample(raw, []string{"apiserver_request_duration_seconds_sum", "apiserver_request_duration_seconds_count"},
		func(name string, l map[string]string, v float64) {
			i := 0
			if name == "apiserver_request_duration_seconds_count" {
				i = 1
			}
			res := l["resource"]
			if l["subresource"] != "" {
				res += "/" + l["subresource"]
			}
			k := l["verb"] + " " + res
			x := out[k]
			x[i] += v
			out[k] = x
		})
	return out
}

// summary of the requests made between before and l on Agora's resources.
func (l serverLatency) summary(before serverLatency) string {
	var keys []string
	for k, v := range l {
		if v[1]-before[k][1] >= 1 && (strings.HasSuffix(k, " tasks") || strings.Contains(k, " tasks/") ||
			strings.Contains(k, " offers") || strings.HasSuffix(k, " leases")) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		n := l[k][1] - before[k][1]
		parts = append(parts, fmt.Sprintf("%s %.0f x %.0f ms", k, n, 1000*(l[k][0]-before[k][0])/n))
	}
	return strings.Join(parts, "; ")
}

// writeSample is a scrape at a moment.
type writeSample struct {
	at time.Time
	w  writeCounts
}

// samplePeriod is how often a writeSampler scrapes. Each scrape costs the
// apiserver tens of milliseconds of CPU (its /metrics is megabytes), so
// kube-scheduler's phase is sampled as often as Agora's; the ceiling is
// not, and stays the apiserver's best.
const samplePeriod = 2 * time.Second

// writeSampler scrapes periodically, so that the writes of any window of
// the run (e.g. while tasks are queued) can be read afterwards.
type writeSampler struct {
	mu      sync.Mutex
	samples []writeSample
}

func (s *writeSampler) run(ctx context.Context, cs kubernetes.Interface, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.sample(ctx, cs)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *writeSampler) sample(ctx context.Context, cs kubernetes.Interface) {
	w, err := scrapeWrites(ctx, cs)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.samples = append(s.samples, writeSample{at: time.Now(), w: w})
	s.mu.Unlock()
}

// window returns the samples nearest to [from, to] inside it (the first at
// or after from, the last at or before to).
func (s *writeSampler) window(from, to time.Time) (a, b writeSample, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := -1
	j := -1
	for k, x := range s.samples {
		if i < 0 && !x.at.Before(from) {
			i = k
		}
		if !x.at.After(to) {
			j = k
		}
	}
	if i < 0 || j <= i {
		return a, b, false
	}
	return s.samples[i], s.samples[j], true
}

// procStats are what /proc says of a child: CPU seconds used and memory.
type procStats struct {
	cpuSeconds  float64
	rssBytes    int64 // VmRSS
	hwmBytes    int64 // VmHWM: peak resident set
	threadCount int
}

// clockTicks is USER_HZ: 100 on every Linux architecture Go supports.
const clockTicks = 100

func readProc(pid int) (procStats, error) {
	var st procStats
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// The command name may hold spaces: fields start after the last ')'.
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return st, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(f[11], 64) // field 14 of stat
	stime, _ := strconv.ParseFloat(f[12], 64) // field 15
	st.cpuSeconds = (utime + stime) / clockTicks
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		switch k {
		case "VmRSS":
			st.rssBytes = n << 10
		case "VmHWM":
			st.hwmBytes = n << 10
		case "Threads":
			st.threadCount = int(n)
		}
	}
	return st, nil
}

// latencies collects durations and reports percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.d)
}

// pct is the p-th percentile (nearest rank), 0 when empty.
func (l *latencies) pct(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
