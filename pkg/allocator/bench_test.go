package allocator

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

var benchSizes = []struct{ agents, frameworks int }{
	{1000, 100}, {1000, 1000}, {10000, 100}, {10000, 1000}, {20000, 100}, {20000, 1000},
}

func forSizes(b *testing.B, fn func(b *testing.B, agents, frameworks int)) {
	for _, s := range benchSizes {
		b.Run(fmt.Sprintf("agents=%d/frameworks=%d", s.agents, s.frameworks), func(b *testing.B) {
			fn(b, s.agents, s.frameworks)
		})
	}
}

// mesosCluster builds the cluster of Mesos' DeclineOffers benchmark: agents
// of 24 cpus, 4 GiB, 4 GiB disk and ports 31000-32000, each with 16 cpus,
// 2014 MiB, 1 GiB disk and 16 ports used by one framework.
func mesosCluster(tb testing.TB, agents, frameworks int) (*Allocator, []string) {
	a := New(Options{Seed: 1})
	ids := make([]string, frameworks)
	for i := range ids {
		ids[i] = fmt.Sprintf("ns/fw-%04d", i)
		must(tb, a.AddFramework(FrameworkInfo{ID: ids[i]}))
	}
	addMesosAgents(tb, a, ids, agents)
	return a, ids
}

var (
	mesosAgent = resources.MustParse("cpus:24;mem:4096;disk:4096;ports:[31000-32000]")
	mesosUsed  = func() resources.Resources {
		var ports []resources.Range
		for i := range uint32(16) {
			ports = append(ports, resources.Range{Begin: 31000 + 60*i, End: 31000 + 60*i})
		}
		pr, _ := resources.NewRanges(ports...)
		return resources.MustParse("cpus:16;mem:2014;disk:1024").WithPorts(pr)
	}()
)

func addMesosAgents(tb testing.TB, a *Allocator, ids []string, agents int) {
	for i := range agents {
		name := fmt.Sprintf("agent-%05d", i)
		must(tb, a.AddAgent(AgentInfo{Name: name, Hostname: name, Total: mesosAgent}))
		must(tb, a.AddAllocation(ids[i%len(ids)], DefaultRole, name, mesosUsed))
	}
}

// roundTimer records each round's duration to report the median round as
// well as the mean that ns/op gives. DeclineOffers' cycle is about half
// rounds that offer and half that offer nothing, so its whole-cycle median
// is the fastest round that offers (docs/benchmarks.md, session 10) and
// says little of either kind; the medians of each kind are reported apart
// as well.
type roundTimer struct {
	durs    []time.Duration
	offered []time.Duration // the rounds that made offers
	empty   []time.Duration // the rounds that made none
	offers  int
	cpu0    time.Duration
}

// cpuTime is the process's CPU time (user+system, all threads, GC
// included). The machine is shared, so wall time alone overstates rounds.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (rt *roundTimer) start() { rt.cpu0 = cpuTime() }

// add records a round that took d and made offers offers.
func (rt *roundTimer) add(d time.Duration, offers int) {
	rt.durs = append(rt.durs, d)
	rt.offers += offers
	if offers > 0 {
		rt.offered = append(rt.offered, d)
	} else {
		rt.empty = append(rt.empty, d)
	}
}

// median returns the median of ds in ms.
func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Nanoseconds()) / 1e6
}

func (rt *roundTimer) report(b *testing.B) {
	if len(rt.durs) == 0 {
		return
	}
	b.ReportMetric(median(rt.durs), "p50-ms/round")
	b.ReportMetric(float64(slices.Max(rt.durs).Nanoseconds())/1e6, "max-ms/round")
	b.ReportMetric(float64(rt.offers)/float64(len(rt.durs)), "offers/round")
	b.ReportMetric(float64((cpuTime()-rt.cpu0).Nanoseconds())/1e6/float64(len(rt.durs)), "cpu-ms/round")
	if len(rt.offered) > 0 && len(rt.empty) > 0 {
		b.ReportMetric(median(rt.offered), "p50-offering-ms/round")
		b.ReportMetric(median(rt.empty), "p50-empty-ms/round")
	}
}

// BenchmarkDeclineOffers mirrors Mesos' benchmark of the same name: every
// framework declines every offer with a long filter. One op is one round:
// returning the previous round's offers with their filters, then Allocate.
// After 2*frameworks rounds (Mesos runs that many), by which point every
// framework has declined every agent and rounds make no offers, all filters
// are revived outside the timer and the cycle starts again; run with
// -benchtime=2000x to cover one whole cycle at 1000 frameworks.
func BenchmarkDeclineOffers(b *testing.B) {
	forSizes(b, func(b *testing.B, agents, frameworks int) {
		a, ids := mesosCluster(b, agents, frameworks)
		now := t0
		var offers []Offer
		var recs []Recovery // the declines, reused
		var rt roundTimer
		b.ReportAllocs()
		b.ResetTimer()
		rt.start()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%(2*frameworks) == 0 {
				b.StopTimer()
				for _, id := range ids {
					must(b, a.ReviveFilters(id))
				}
				b.StartTimer()
			}
			start := time.Now()
			recs = recs[:0]
			for _, o := range offers {
				recs = append(recs, Recovery{FrameworkID: o.FrameworkID, Role: o.Role, Agent: o.Agent, Resources: o.Resources, Refuse: 1000 * time.Hour, Ref: o.Ref})
			}
			if err := a.RecoverAll(recs, now); err != nil {
				b.Fatal(err)
			}
			offers = a.AllocateAppend(now, offers[:0]) // recovered: reuse
			rt.add(time.Since(start), len(offers))
			now = now.Add(time.Second)
		}
		b.StopTimer()
		rt.report(b)
	})
}

// benchTask is a running task of BenchmarkChurn: indices into the
// framework and agent names. Each round picks random tasks out of ~24×N of
// them; as two strings (32 bytes, 15 MB at 20000 agents) that pick was a
// cache miss of its own on top of the allocator's, about 15% of a round.
// Recover gets the very same strings as before (the ones the allocator was
// given), so the allocator's work is unchanged. Two uint16s (4 bytes, 1.9
// MB at 20000 agents; benchSizes stay below 65536 of each) halve what the
// two int32s took: that pick is still a cache and TLB miss of the driver's
// own, and its read was about 15% of a round's CPU at 20000 agents.
type benchTask struct {
	fw, agent uint16
}

// nameIndex returns the number a benchmark name ends with ("agent-042" is
// 42, "ns/fw-0007" is 7): the index of an offer's agent or framework,
// without a map lookup (a cache miss per offer) in the driver.
func nameIndex(name string) int32 {
	var n, mul int32 = 0, 1
	for i := len(name) - 1; i >= 0 && '0' <= name[i] && name[i] <= '9'; i-- {
		n += int32(name[i]-'0') * mul
		mul *= 10
	}
	return n
}

// BenchmarkChurn: frameworks accept every offer and run it as tasks of
// 1 cpu and 128 MiB (agents of 24 cpus and 3 GiB fit 24). Each round a
// random tenth of the tasks finish and are recovered, then Allocate runs
// and its offers become tasks.
func BenchmarkChurn(b *testing.B) {
	task := resources.MustParse("cpus:1;mem:128Mi")
	forSizes(b, func(b *testing.B, agents, frameworks int) {
		a := New(Options{Seed: 1})
		fwNames := make([]string, frameworks)
		for i := range frameworks {
			fwNames[i] = fmt.Sprintf("ns/fw-%04d", i)
			must(b, a.AddFramework(FrameworkInfo{ID: fwNames[i]}))
		}
		agentNames := addAgents(b, a, agents, "cpus:24;mem:3Gi")
		rng := rand.New(rand.NewPCG(1, 2))
		var tasks []benchTask
		refs := make([]AgentRef, agents) // by agent index, from the offers
		accept := func(offers []Offer) {
			for _, o := range offers {
				tk := benchTask{uint16(nameIndex(o.FrameworkID)), uint16(nameIndex(o.Agent))}
				refs[tk.agent] = o.Ref
				for range o.Resources.Scalars[resources.CPUs] / 1000 {
					tasks = append(tasks, tk)
				}
			}
		}
		for {
			offers := a.Allocate(t0)
			if len(offers) == 0 {
				break
			}
			accept(offers)
		}
		var done []benchTask // the round's finished tasks
		var recs []Recovery  // the finished tasks, reused
		var offers []Offer   // reused: accept is done with a round's offers
		var rt roundTimer
		b.ReportAllocs()
		b.ResetTimer()
		rt.start()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			// The round's finished tasks are drawn (and removed)
			// before any is recovered: a tight loop of random
			// reads that do not depend on each other, fetched
			// together, instead of one miss of the driver's own
			// between every two Recover calls.
			done = done[:0]
			for range len(tasks) / 10 {
				j := rng.IntN(len(tasks))
				done = append(done, tasks[j])
				tasks[j] = tasks[len(tasks)-1]
				tasks = tasks[:len(tasks)-1]
			}
			recs = recs[:0]
			for _, tk := range done {
				recs = append(recs, Recovery{FrameworkID: fwNames[tk.fw], Role: DefaultRole, Agent: agentNames[tk.agent], Resources: task, Ref: refs[tk.agent]})
			}
			if err := a.RecoverAll(recs, t0); err != nil {
				b.Fatal(err)
			}
			offers = a.AllocateAppend(t0, offers[:0])
			accept(offers)
			rt.add(time.Since(start), len(offers))
		}
		b.StopTimer()
		rt.report(b)
	})
}

// BenchmarkSuppressOffers: frameworks decline their offers without a filter
// and suppress; each round a rotating tenth of them unsuppress (new work
// arrived). One op is one round: the declines, suppressions and
// unsuppressions, then Allocate.
func BenchmarkSuppressOffers(b *testing.B) {
	forSizes(b, func(b *testing.B, agents, frameworks int) {
		a, ids := mesosCluster(b, agents, frameworks)
		var offers []Offer
		var rt roundTimer
		b.ReportAllocs()
		b.ResetTimer()
		rt.start()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			for _, o := range offers {
				must(b, a.Recover(o.FrameworkID, o.Role, o.Agent, o.Resources, 0, t0))
				must(b, a.Suppress(o.FrameworkID))
			}
			for j := i % 10; j < len(ids); j += 10 {
				must(b, a.Unsuppress(ids[j]))
			}
			offers = a.Allocate(t0)
			rt.add(time.Since(start), len(offers))
		}
		b.StopTimer()
		rt.report(b)
	})
}

// BenchmarkAddAgents: one op builds the Mesos-shaped cluster from scratch:
// the frameworks, then every agent with its tasks (AddAgent and
// AddAllocation), as a new master does after failover.
func BenchmarkAddAgents(b *testing.B) {
	forSizes(b, func(b *testing.B, agents, frameworks int) {
		b.ReportAllocs()
		for b.Loop() {
			mesosCluster(b, agents, frameworks)
		}
	})
}
