package allocator

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

// TestAllocateAppend: AllocateAppend into a reused buffer with offers
// already in it makes the same decisions as Allocate, leaves the offers
// before it alone, and merges a framework's stage 1 and stage 2 offers on
// an agent (found by their index in the result) the same way.
func TestAllocateAppend(t *testing.T) {
	setup := func() *Allocator {
		a := New(Options{Seed: 5})
		must(t, a.SetRole(RoleInfo{Name: "q", Weight: 0.5, Guarantee: mustParse("cpus:5.5")}))
		must(t, a.AddFramework(FrameworkInfo{ID: "q", Roles: []string{"q"}}))
		for i := range 3 {
			must(t, a.AddFramework(FrameworkInfo{ID: fmt.Sprintf("f%d", i)}))
		}
		addAgents(t, a, 12, "cpus:4;mem:4Gi")
		return a
	}
	a, b := setup(), setup()
	prefix := Offer{FrameworkID: "x", Role: "y", Agent: "z", Resources: mustParse("cpus:1")}
	var want, buf []Offer
	now := t0
	for round := range 8 {
		// Every other round the previous offers are declined (no
		// filter) and come back; the rest stay allocated.
		if round%2 == 1 {
			for _, o := range want {
				must(t, a.Recover(o.FrameworkID, o.Role, o.Agent, o.Resources, 0, now))
				must(t, b.Recover(o.FrameworkID, o.Role, o.Agent, o.Resources, 0, now))
			}
		}
		want = a.Allocate(now)
		buf = append(buf[:0], prefix)
		buf = b.AllocateAppend(now, buf)
		if len(buf) == 0 || fmt.Sprint(buf[0]) != fmt.Sprint(prefix) {
			t.Fatalf("round %d: the offer before the round's was overwritten: %v", round, buf)
		}
		if got := buf[1:]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: AllocateAppend offered\n%v\nAllocate\n%v", round, got, want)
		}
		if err := checkBooks(b); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if a.Stats().LastRoundOffers != b.Stats().LastRoundOffers {
			t.Fatalf("round %d: last round's offers %d, want %d", round, b.Stats().LastRoundOffers, a.Stats().LastRoundOffers)
		}
		now = now.Add(time.Second)
	}
	// One framework, guaranteed part of the agent: stage 1 offers it
	// that part and stage 2 the rest, merged into one offer.
	c := New(Options{Seed: 1})
	must(t, c.SetRole(RoleInfo{Name: "q", Guarantee: mustParse("cpus:1.5")}))
	must(t, c.AddFramework(FrameworkInfo{ID: "q", Roles: []string{"q"}}))
	must(t, c.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:4;mem:4Gi")}))
	got := c.AllocateAppend(t0, []Offer{prefix, prefix})
	if len(got) != 3 || fmt.Sprint(got[:2]) != fmt.Sprint([]Offer{prefix, prefix}) ||
		got[2].FrameworkID != "q" || !got[2].Resources.Equal(mustParse("cpus:4;mem:4Gi")) {
		t.Fatalf("stage 1 and 2 offers not merged after dst's offers: %v", got)
	}

	// Nobody eligible: dst comes back as it was.
	for _, id := range []string{"q", "f0", "f1", "f2"} {
		must(t, b.Suppress(id))
	}
	dst := []Offer{prefix}
	if got := b.AllocateAppend(now, dst); len(got) != 1 || &got[0] != &dst[0] {
		t.Fatalf("no eligible framework: got %v, want dst unchanged", got)
	}
}

// TestRecoverAll: RecoverAll has the result of Recover one by one, going
// on past failures, whether it makes the calls in order (few of them) or
// grouped by agent (many): the same books, errors, and offers after.
func TestRecoverAll(t *testing.T) {
	for _, agents := range []int{30, 300} {
		t.Run(fmt.Sprintf("agents=%d", agents), func(t *testing.T) { testRecoverAll(t, agents) })
	}
}

func testRecoverAll(t *testing.T, agents int) {
	setup := func() (*Allocator, []Offer) {
		a := New(Options{Seed: 7})
		for i := range 4 {
			must(t, a.AddFramework(FrameworkInfo{ID: fmt.Sprintf("f%d", i)}))
		}
		addAgents(t, a, agents, "cpus:4;mem:4Gi")
		offers := a.Allocate(t0)
		// f1 leaves the role: its client there goes once it holds
		// nothing, and calls for it after that fail.
		must(t, a.UpdateFramework(FrameworkInfo{ID: "f1", Roles: []string{"other"}}))
		return a, offers
	}
	// a recovers one by one, b with RecoverAll and b's own handles (a
	// handle is good only with the Allocator whose offer carried it).
	a, _ := setup()
	b, offers := setup()
	if len(offers) < 2*prefetchAhead+1 {
		t.Fatalf("only %d offers", len(offers))
	}
	now := t0.Add(time.Second)
	var rs []Recovery
	for i, o := range offers {
		r := Recovery{FrameworkID: o.FrameworkID, Role: o.Role, Agent: o.Agent, Resources: o.Resources}
		if i%2 == 0 {
			r.Refuse = time.Hour
			r.Ref = o.Ref // the others are looked up by name
		}
		if i%3 == 0 {
			// Part of it, then the rest in a later call.
			part := mustParse("cpus:1")
			rest, err := o.Resources.Subtract(part)
			must(t, err)
			r.Resources = part
			rs = append(rs, r)
			r.Resources = rest
		}
		rs = append(rs, r)
		if i%7 == 0 {
			rs = append(rs, r) // a second time: fails, nothing is left
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	rs = slices.Insert(rs, len(rs)/2, Recovery{FrameworkID: "f0", Role: DefaultRole, Agent: "nope", Resources: mustParse("cpus:1")})
	var errs []error
	for _, r := range rs {
		if err := a.Recover(r.FrameworkID, r.Role, r.Agent, r.Resources, r.Refuse, now); err != nil {
			errs = append(errs, err)
		}
	}
	want := errors.Join(errs...)
	got := b.RecoverAll(rs, now)
	if len(errs) < 2 || got == nil || got.Error() != want.Error() {
		t.Fatalf("RecoverAll returned %d errors, %v; Recover one by one %d:\n%v", len(strings.Split(fmt.Sprint(got), "\n")), got, len(errs), want)
	}
	for _, x := range []*Allocator{a, b} {
		if err := checkBooks(x); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(a.Stats()) != fmt.Sprint(b.Stats()) {
		t.Fatalf("stats differ: %v, want %v", b.Stats(), a.Stats())
	}
	for round := range 3 {
		now = now.Add(time.Minute)
		if w, g := fmt.Sprint(a.Allocate(now)), fmt.Sprint(b.Allocate(now)); w != g {
			t.Fatalf("round %d after RecoverAll: %s, want %s", round, g, w)
		}
	}
	if fmt.Sprint(a.Stats()) != fmt.Sprint(b.Stats()) {
		t.Fatalf("stats differ: %v, want %v", b.Stats(), a.Stats())
	}
}

// TestRecoverAllDroppedClient: RecoverAll looks each call's client up
// before it makes any call; a later call on a client that an earlier call
// of the batch dropped (it left the role and returned its last holding)
// fails as it would one by one, and the books stay whole.
func TestRecoverAllDroppedClient(t *testing.T) {
	one := mustParse("cpus:1")
	setup := func() (*Allocator, []string) {
		a := New(Options{Seed: 7})
		must(t, a.AddFramework(FrameworkInfo{ID: "f"}))
		must(t, a.AddFramework(FrameworkInfo{ID: "g"}))
		names := addAgents(t, a, 2*groupMin, "cpus:4;mem:4Gi")
		must(t, a.AddAllocation("f", DefaultRole, names[0], one))
		for _, n := range names {
			must(t, a.AddAllocation("g", DefaultRole, n, one))
		}
		must(t, a.UpdateFramework(FrameworkInfo{ID: "f", Roles: []string{"other"}}))
		return a, names
	}
	a, names := setup()
	var rs []Recovery
	for i, n := range names {
		if i == len(names)/2 {
			// On one agent, so kept in this order: the first empties
			// f's only holding and drops its client.
			for range 2 {
				rs = append(rs, Recovery{FrameworkID: "f", Role: DefaultRole, Agent: names[0], Resources: one})
			}
		}
		rs = append(rs, Recovery{FrameworkID: "g", Role: DefaultRole, Agent: n, Resources: one})
	}
	err := a.RecoverAll(rs, t0)
	if !errors.Is(err, ErrNotAllocated) || len(strings.Split(err.Error(), "\n")) != 1 {
		t.Fatalf("RecoverAll: %v, want one ErrNotAllocated (f's second call)", err)
	}
	b, _ := setup()
	var want error
	for _, r := range rs {
		if err := b.Recover(r.FrameworkID, r.Role, r.Agent, r.Resources, r.Refuse, t0); err != nil {
			want = err
		}
	}
	if want == nil || err.Error() != want.Error() {
		t.Fatalf("RecoverAll: %v; one by one: %v", err, want)
	}
	for _, x := range []*Allocator{a, b} {
		if err := checkBooks(x); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRecoverAllRefs: a Recovery that carries its offer's agent handle
// returns to that agent; a handle on an agent since removed, or one that
// names another agent than Agent, is ignored and the name decides.
func TestRecoverAllRefs(t *testing.T) {
	a := New(Options{Seed: 7})
	must(t, a.AddFramework(FrameworkInfo{ID: "f"}))
	addAgents(t, a, 2, "cpus:4;mem:4Gi")
	offers := a.Allocate(t0)
	if len(offers) != 2 || offers[0].Ref.String() != offers[0].Agent {
		t.Fatalf("offers %v: want two, each with its agent's handle", offers)
	}
	x, y := offers[0], offers[1]
	part := mustParse("cpus:1")
	// y's handle under x's name: x gets the cpu back, y keeps all of its.
	must(t, a.RecoverAll([]Recovery{{FrameworkID: "f", Role: DefaultRole, Agent: x.Agent, Resources: part, Ref: y.Ref}}, t0))
	// x's own handle: another cpu back on x.
	must(t, a.RecoverAll([]Recovery{{FrameworkID: "f", Role: DefaultRole, Agent: x.Agent, Resources: part, Ref: x.Ref}}, t0))
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
	got := a.Allocate(t0.Add(time.Second))
	if len(got) != 1 || got[0].Agent != x.Agent || got[0].Resources.Scalars[resources.CPUs] != 2000 {
		t.Fatalf("after returning 2 cpus of %s: offered %v, want those 2 cpus on it", x.Agent, got)
	}
	// A removed agent's handle: the name is looked up, and is unknown.
	must(t, a.RemoveAgent(y.Agent))
	err := a.RecoverAll([]Recovery{{FrameworkID: "f", Role: DefaultRole, Agent: y.Agent, Resources: part, Ref: y.Ref}}, t0)
	if !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("recovering on a removed agent through its handle: %v, want ErrUnknownAgent", err)
	}
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}
