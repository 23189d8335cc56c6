package allocator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

// The simulator drives an Allocator with random events and keeps its own
// model of the books to check the allocator against, after every step:
//   - no agent over-committed, and no resource offered twice: every offer
//     is subtracted from the model's free resources of its agent;
//   - quota limits: no offer takes a role above its limit, counting what
//     the role holds on the books (all agents but unreachable ones);
//   - the public accessors agree with the model, and the internal books
//     are consistent (checkBooks);
//   - fairness (when sim.fair): each offer goes to the eligible framework
//     (active, not suppressed, not filtered for that offer, GPU-aware where
//     needed, within its quota limit) with the lowest weighted share, in
//     Mesos' order (role share, then framework share; ties by fewer past
//     allocations, then name), and after a round no agent is left with
//     resources some eligible framework could be offered.
// fair runs use flat roles without guarantees or reservations, so the
// oracle stays simple; unfair runs add those and check safety only.

type chooser interface{ intn(n int) int }

type rngChooser struct{ r *rand.Rand }

func (c rngChooser) intn(n int) int { return c.r.IntN(n) }

// byteChooser reads choices from fuzz input; it ends the run when empty.
type byteChooser struct{ b []byte }

func (c *byteChooser) intn(n int) int {
	if len(c.b) == 0 {
		return 0
	}
	v := int(c.b[0])
	c.b = c.b[1:]
	return v % n
}

type simKey struct{ fw, role string }

type simHold struct {
	key   simKey
	agent string
	r     resources.Resources
}

type simFilter struct {
	key     simKey
	agent   string
	refused resources.Resources
	until   time.Time
}

type simAgent struct {
	total     resources.Resources
	reserved  map[string]resources.Resources
	reachable bool // not partitioned: its allocations are on the books
	withheld  bool // cordoned: not offered, out of the totals
}

func (ag *simAgent) offered() bool { return ag.reachable && !ag.withheld }

type simFw struct {
	roles      []string
	suppressed map[string]bool
	active     bool
	gpu        bool
}

type simRole struct {
	weight  float64
	limit   resources.Resources
	limited resources.KindSet
}

type sim struct {
	t       testing.TB
	a       *Allocator
	ch      chooser
	fair    bool
	opts    Options
	now     time.Time
	agents  map[string]*simAgent
	fws     map[string]*simFw
	roles   map[string]*simRole
	holds   []simHold
	filters []simFilter
	allocs  map[simKey]uint64
	rallocs map[string]uint64
	nextID  int
	rounds  int
}

var simRoles = []string{"*", "r0", "r1", "r2"}

var agentShapes = []string{
	"cpus:4;mem:4Gi;ports:[31000-31009]",
	"cpus:8;mem:2Gi;disk:10Gi",
	"cpus:1;mem:8Gi;ports:[1-3]",
	"cpus:2;mem:2Gi;gpus:2",
	"cpus:0.5;mem:64Mi",
}

func newSim(t testing.TB, ch chooser, fair bool) *sim {
	s := &sim{t: t, ch: ch, fair: fair, now: t0,
		agents: map[string]*simAgent{}, fws: map[string]*simFw{}, roles: map[string]*simRole{},
		allocs: map[simKey]uint64{}, rallocs: map[string]uint64{}}
	s.opts = Options{Seed: int64(ch.intn(1000)), ExcludeGPUsFromShares: ch.intn(2) == 0}
	s.a = New(s.opts)
	for _, r := range simRoles {
		s.setRole(r)
	}
	// RecoverAll groups even the sim's few calls by agent.
	saved := groupMin
	groupMin = 2
	t.Cleanup(func() { groupMin = saved })
	return s
}

func (s *sim) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("after %d rounds: "+format, append([]any{s.rounds}, args...)...)
}

func (s *sim) must(err error) {
	s.t.Helper()
	if err != nil {
		s.fatalf("%v", err)
	}
}

func (s *sim) pick(names []string) string {
	slices.Sort(names)
	return names[s.ch.intn(len(names))]
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (s *sim) setRole(name string) {
	r := &simRole{weight: []float64{1, 1, 2, 0.5, 3}[s.ch.intn(5)]}
	info := RoleInfo{Name: name, Weight: r.weight}
	if s.ch.intn(3) == 0 {
		r.limit = resources.Scalars(int64(s.ch.intn(8))*1000, int64(s.ch.intn(8))*resources.GiB, 0, int64(s.ch.intn(3)))
		r.limited = resources.KindSet(s.ch.intn(16))
		info.Limit, info.Limited = r.limit, r.limited
	}
	if !s.fair && s.ch.intn(2) == 0 {
		info.Guarantee = resources.Scalars(int64(s.ch.intn(4))*1000, 0, 0, 0)
		if r.limited.Has(resources.CPUs) && info.Guarantee.Scalars[0] > r.limit.Scalars[0] {
			info.Guarantee.Scalars[0] = r.limit.Scalars[0]
		}
	}
	s.must(s.a.SetRole(info))
	s.roles[name] = r
}

// free is the model's unallocated resources on an agent.
func (s *sim) free(name string) resources.Resources {
	f := s.agents[name].total
	for _, h := range s.holds {
		if h.agent == name {
			var err error
			if f, err = f.Subtract(h.r); err != nil {
				s.fatalf("agent %s over-committed: %v", name, err)
			}
		}
	}
	return f
}

func (s *sim) step() {
	switch ev := s.ch.intn(16); {
	case ev == 0 && len(s.agents) < 12:
		name := fmt.Sprintf("agent-%d", s.nextID)
		s.nextID++
		ag := &simAgent{total: mustParse(agentShapes[s.ch.intn(len(agentShapes))]), reachable: true}
		info := AgentInfo{Name: name, Total: ag.total}
		if !s.fair && s.ch.intn(3) == 0 {
			ag.reserved = map[string]resources.Resources{"r0": resources.Scalars(ag.total.Scalars[0]/2, ag.total.Scalars[1]/4, 0, 0)}
			info.Reserved = ag.reserved
		}
		s.must(s.a.AddAgent(info))
		s.agents[name] = ag
	case ev == 1 && len(s.agents) > 0:
		name := s.pick(keys(s.agents))
		s.must(s.a.RemoveAgent(name))
		delete(s.agents, name)
		s.holds = slices.DeleteFunc(s.holds, func(h simHold) bool { return h.agent == name })
		s.filters = slices.DeleteFunc(s.filters, func(f simFilter) bool { return f.agent == name })
	case ev == 2 && len(s.agents) > 0:
		name := s.pick(keys(s.agents))
		ag := s.agents[name]
		if s.ch.intn(2) == 0 {
			ag.reachable = !ag.reachable
			s.must(s.a.SetAgentReachable(name, ag.reachable))
		} else {
			ag.withheld = !ag.withheld
			s.must(s.a.SetAgentWithheld(name, ag.withheld))
		}
	case ev == 3 && len(s.fws) < 8:
		id := fmt.Sprintf("ns/fw-%d", s.ch.intn(10))
		if _, ok := s.fws[id]; ok {
			return
		}
		fw := &simFw{suppressed: map[string]bool{}, active: true, gpu: s.ch.intn(3) == 0}
		for _, r := range simRoles {
			if s.ch.intn(2) == 0 {
				fw.roles = append(fw.roles, r)
			}
		}
		if len(fw.roles) == 0 {
			fw.roles = []string{simRoles[s.ch.intn(len(simRoles))]}
		}
		s.must(s.a.AddFramework(FrameworkInfo{ID: id, Roles: fw.roles, GPUAware: fw.gpu}))
		s.fws[id] = fw
		for _, r := range fw.roles {
			s.allocs[simKey{id, r}] = 0
		}
	case ev == 4 && len(s.fws) > 0:
		id := s.pick(keys(s.fws))
		s.must(s.a.RemoveFramework(id))
		delete(s.fws, id)
		s.holds = slices.DeleteFunc(s.holds, func(h simHold) bool { return h.key.fw == id })
		s.filters = slices.DeleteFunc(s.filters, func(f simFilter) bool { return f.key.fw == id })
	case ev == 5 && len(s.fws) > 0:
		id := s.pick(keys(s.fws))
		fw := s.fws[id]
		fw.active = !fw.active
		if fw.active {
			s.must(s.a.ActivateFramework(id))
		} else {
			s.must(s.a.DeactivateFramework(id))
		}
	case ev == 6 && len(s.fws) > 0:
		id := s.pick(keys(s.fws))
		fw := s.fws[id]
		r := fw.roles[s.ch.intn(len(fw.roles))]
		fw.suppressed[r] = !fw.suppressed[r]
		if fw.suppressed[r] {
			s.must(s.a.Suppress(id, r))
		} else {
			s.must(s.a.Unsuppress(id, r))
		}
	case ev == 7 && len(s.fws) > 0:
		id := s.pick(keys(s.fws))
		fw := s.fws[id]
		r := fw.roles[s.ch.intn(len(fw.roles))]
		s.must(s.a.ReviveFilters(id, r))
		s.filters = slices.DeleteFunc(s.filters, func(f simFilter) bool { return f.key == simKey{id, r} })
	case ev == 8:
		s.setRole(simRoles[s.ch.intn(len(simRoles))])
	case ev == 9:
		if len(s.holds) > 0 {
			s.recover()
		}
	case ev == 10:
		if len(s.holds) > 0 {
			s.recoverMany()
		}
	case ev == 11:
		s.now = s.now.Add(time.Duration(s.ch.intn(4)) * time.Second)
	case ev == 12:
		s.impossible()
	case ev == 13 && !s.fair && len(s.agents) > 0 && len(s.fws) > 0:
		// A failover rebuild: allocate whatever a role may use.
		name := s.pick(keys(s.agents))
		id := s.pick(keys(s.fws))
		fw := s.fws[id]
		role := fw.roles[s.ch.intn(len(fw.roles))]
		r := s.free(name).ScalarsOnly()
		r.Scalars[0] /= 3
		if err := s.a.AddAllocation(id, role, name, r); err == nil {
			if !r.IsEmpty() {
				s.holds = append(s.holds, simHold{simKey{id, role}, name, r})
			}
		} else if !errors.Is(err, ErrInsufficient) {
			s.fatalf("AddAllocation: %v", err)
		}
	default:
		s.allocate()
	}
	s.check()
}

func (s *sim) recover() {
	i := s.ch.intn(len(s.holds))
	r := s.recovery(s.holds[i])
	s.must(s.a.Recover(r.FrameworkID, r.Role, r.Agent, r.Resources, r.Refuse, s.now))
	s.returned(i, r)
}

// recoverMany returns several holdings, or parts of them, in one RecoverAll
// (grouped by agent: newSim lowers groupMin).
func (s *sim) recoverMany() {
	n := 1 + s.ch.intn(min(len(s.holds), 6))
	for j := range n { // the first n holdings, after swapping in random ones
		k := j + s.ch.intn(len(s.holds)-j)
		s.holds[j], s.holds[k] = s.holds[k], s.holds[j]
	}
	rs := make([]Recovery, n)
	for j, h := range s.holds[:n] {
		rs[j] = s.recovery(h)
	}
	s.must(s.a.RecoverAll(rs, s.now))
	for j := n - 1; j >= 0; j-- { // from the last, so that deletes keep j in place
		s.returned(j, rs[j])
	}
}

// recovery draws what to return of h: all of it or half its scalars (no
// ports), with or without a decline filter.
func (s *sim) recovery(h simHold) Recovery {
	r := h.r
	if s.ch.intn(2) == 0 {
		r = h.r.ScalarsOnly()
		for k := range r.Scalars {
			r.Scalars[k] /= 2
		}
	}
	refuse := time.Duration(s.ch.intn(3)) * 2 * time.Second
	return Recovery{FrameworkID: h.key.fw, Role: h.key.role, Agent: h.agent, Resources: r, Refuse: refuse}
}

// returned updates the model once r, drawn for holding i, was returned.
func (s *sim) returned(i int, r Recovery) {
	left, err := s.holds[i].r.Subtract(r.Resources)
	s.must(err)
	if left.IsEmpty() {
		s.holds = slices.Delete(s.holds, i, i+1)
	} else {
		s.holds[i].r = left
	}
	if r.Refuse > 0 && !r.Resources.IsEmpty() {
		s.filters = append(s.filters, simFilter{simKey{r.FrameworkID, r.Role}, r.Agent, r.Resources, s.now.Add(r.Refuse)})
	}
}

// impossible sends events that must be rejected without effect.
func (s *sim) impossible() {
	before := snapshotAll(s.a)
	var err error
	switch s.ch.intn(3) {
	case 0:
		err = s.a.Recover("ns/nobody", "*", "nowhere", mustParse("cpus:1"), 0, s.now)
	case 1:
		if len(s.holds) == 0 {
			return
		}
		h := s.holds[s.ch.intn(len(s.holds))]
		err = s.a.Recover(h.key.fw, h.key.role, h.agent, h.r.Add(mustParse("cpus:100")), 0, s.now)
		if !errors.Is(err, ErrNotAllocated) {
			s.fatalf("double free accepted: %v", err)
		}
	case 2:
		err = s.a.AddAllocation("ns/nobody", "*", "nowhere", resources.Scalars(-1, 0, 0, 0))
	}
	if err == nil {
		s.fatalf("impossible event accepted")
	}
	if after := snapshotAll(s.a); after != before {
		s.fatalf("rejected event changed the books:\n%s\n%s", before, after)
	}
}

func snapshotAll(a *Allocator) string {
	st := a.Stats()
	return fmt.Sprint(st, a.Shares(), a.RoleShares())
}

// share replicates the allocator's dominant share computation.
func (s *sim) share(alloc resources.Resources, total resources.Resources) float64 {
	var sh float64
	for k, t := range total.Scalars {
		if t <= 0 || (s.opts.ExcludeGPUsFromShares && resources.Kind(k) == resources.GPUs) {
			continue
		}
		if v := float64(alloc.Scalars[k]) / float64(t); v > sh {
			sh = v
		}
	}
	return sh
}

type candidate struct {
	key                simKey
	offer              resources.Resources
	roleShare, fwShare float64
}

// candidates lists who could be offered what on agent name now.
func (s *sim) candidates(name string) []candidate {
	ag := s.agents[name]
	if !ag.offered() {
		return nil
	}
	var total resources.Resources
	for _, a := range s.agents {
		if a.offered() {
			total = total.Add(a.total.ScalarsOnly())
		}
	}
	roleAlloc := map[string]resources.Resources{}
	keyAlloc := map[simKey]resources.Resources{}
	for _, h := range s.booked() {
		roleAlloc[h.key.role] = roleAlloc[h.key.role].Add(h.r.ScalarsOnly())
		keyAlloc[h.key] = keyAlloc[h.key].Add(h.r.ScalarsOnly())
	}
	free := s.free(name)
	var out []candidate
	for id, fw := range s.fws {
		if !fw.active || (ag.total.Scalars[resources.GPUs] > 0 && !fw.gpu) {
			continue
		}
		for _, role := range fw.roles {
			if fw.suppressed[role] {
				continue
			}
			o := free
			rl := s.roles[role]
			for k := range o.Scalars {
				if rl.limited.Has(resources.Kind(k)) {
					o.Scalars[k] = min(o.Scalars[k], max(rl.limit.Scalars[k]-roleAlloc[role].Scalars[k], 0))
				}
			}
			if !s.a.allocatable(&o.Scalars) {
				continue
			}
			key := simKey{id, role}
			blocked := false
			for _, f := range s.filters {
				if f.key == key && f.agent == name && s.now.Before(f.until) && f.refused.Contains(o) {
					blocked = true
				}
			}
			if !blocked {
				out = append(out, candidate{key, o, s.share(roleAlloc[role], total) / rl.weight, s.share(keyAlloc[key], total)})
			}
		}
	}
	return out
}

// booked returns the holdings on the frameworks' and roles' books: all but
// those on unreachable agents (they leave the books, as in Mesos; a
// withheld agent's stay).
func (s *sim) booked() []simHold {
	var out []simHold
	for _, h := range s.holds {
		if s.agents[h.agent].reachable {
			out = append(out, h)
		}
	}
	return out
}

func (s *sim) less(x, y candidate) bool {
	if x.roleShare != y.roleShare {
		return x.roleShare < y.roleShare
	}
	if s.rallocs[x.key.role] != s.rallocs[y.key.role] {
		return s.rallocs[x.key.role] < s.rallocs[y.key.role]
	}
	if x.key.role != y.key.role {
		return x.key.role < y.key.role
	}
	if x.fwShare != y.fwShare {
		return x.fwShare < y.fwShare
	}
	if s.allocs[x.key] != s.allocs[y.key] {
		return s.allocs[x.key] < s.allocs[y.key]
	}
	return x.key.fw < y.key.fw
}

func (s *sim) allocate() {
	s.rounds++
	offers := s.a.Allocate(s.now)
	seen := map[[2]string]bool{}
	for _, o := range offers {
		key := simKey{o.FrameworkID, o.Role}
		if seen[[2]string{o.FrameworkID + "\x00" + o.Role, o.Agent}] {
			s.fatalf("two offers for %v on %s in one round", key, o.Agent)
		}
		seen[[2]string{o.FrameworkID + "\x00" + o.Role, o.Agent}] = true
		if s.fair {
			cands := s.candidates(o.Agent)
			if len(cands) == 0 {
				s.fatalf("offer %+v but nobody is eligible", o)
			}
			best := cands[0]
			for _, c := range cands[1:] {
				if s.less(c, best) {
					best = c
				}
			}
			if best.key != key || !best.offer.Equal(o.Resources) {
				s.fatalf("offer %v %v on %s, want %v %v (candidates %+v)", key, o.Resources, o.Agent, best.key, best.offer, cands)
			}
		}
		// Offered resources must be free: nothing offered twice, no agent
		// over-committed.
		if !s.free(o.Agent).Contains(o.Resources) {
			s.fatalf("offer %+v exceeds the agent's free %v", o, s.free(o.Agent))
		}
		fw, ok := s.fws[o.FrameworkID]
		if !ok || !fw.active || fw.suppressed[o.Role] || !slices.Contains(fw.roles, o.Role) {
			s.fatalf("offer to an ineligible framework: %+v", o)
		}
		if s.agents[o.Agent].total.Scalars[resources.GPUs] > 0 && !fw.gpu {
			s.fatalf("GPU agent offered to a framework without the capability: %+v", o)
		}
		// Quota limit: the offer may not take the role above its limit.
		var after resources.Resources
		for _, h := range s.booked() {
			if h.key.role == o.Role {
				after = after.Add(h.r.ScalarsOnly())
			}
		}
		after = after.Add(o.Resources.ScalarsOnly())
		rl := s.roles[o.Role]
		for k := range after.Scalars {
			if rl.limited.Has(resources.Kind(k)) && o.Resources.Scalars[k] > 0 && after.Scalars[k] > rl.limit.Scalars[k] {
				s.fatalf("offer %+v takes role %s over its %v limit", o, o.Role, resources.Kind(k))
			}
		}
		s.holds = append(s.holds, simHold{key, o.Agent, o.Resources})
		s.allocs[key]++
		s.rallocs[o.Role]++
	}
	if s.fair {
		for name := range s.agents {
			if c := s.candidates(name); len(c) > 0 {
				s.fatalf("agent %s left with %v though %v is eligible", name, s.free(name), c[0].key)
			}
		}
	}
}

func (s *sim) check() {
	if err := checkBooks(s.a); err != nil {
		s.fatalf("books: %v", err)
	}
	for name, ag := range s.agents {
		free := s.free(name)
		got, err := s.a.AgentAvailable(name)
		s.must(err)
		if !got.Equal(free) {
			s.fatalf("agent %s: allocator says %v free, model %v", name, got, free)
		}
		for role, res := range ag.reserved {
			// Others may use only the unreserved part.
			var others resources.Resources
			for _, h := range s.holds {
				if h.agent == name && h.key.role != role {
					others = others.Add(h.r.ScalarsOnly())
				}
			}
			unres, _ := ag.total.ScalarsOnly().Subtract(res.ScalarsOnly())
			if !unres.Contains(others) {
				s.fatalf("agent %s: other roles hold %v of the %v not reserved for %s", name, others, unres, role)
			}
		}
	}
	for id := range s.fws {
		got, err := s.a.Allocated(id)
		s.must(err)
		want := map[string]resources.Resources{}
		for _, h := range s.booked() {
			if h.key.fw == id {
				want[h.key.role] = want[h.key.role].Add(h.r.ScalarsOnly())
			}
		}
		for role, r := range want {
			if r.IsEmpty() {
				delete(want, role)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			s.fatalf("framework %s: allocator says %v, model %v", id, got, want)
		}
	}
}

func TestPropertyRandomEvents(t *testing.T) {
	for _, fair := range []bool{true, false} {
		for seed := range uint64(40) {
			t.Run(fmt.Sprintf("fair=%v/seed=%d", fair, seed), func(t *testing.T) {
				s := newSim(t, rngChooser{rand.New(rand.NewPCG(seed, 99))}, fair)
				for range 400 {
					s.step()
				}
				if s.rounds == 0 {
					t.Fatal("no allocation rounds ran")
				}
			})
		}
	}
}

func FuzzAllocator(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 3, 15, 15, 9, 15})
	f.Add([]byte("\x01\x00\x00\x00\x00\x03\x01\x03\x02\x0f\x09\x01\x0f\x0b\x03\x0f\x06\x0f\x07\x0f"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fair := len(data) > 0 && data[0]%2 == 0
		ch := &byteChooser{b: data}
		s := newSim(t, ch, fair)
		for len(ch.b) > 0 {
			s.step()
		}
	})
}
