package allocator

import (
	"fmt"
	"testing"
	"time"

	"github.com/agora-sched/agora/pkg/resources"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustParse(s string) resources.Resources { return resources.MustParse(s) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkBooks verifies the allocator's internal bookkeeping from scratch.
func checkBooks(a *Allocator) error {
	if a.agents.n != len(a.agentList) {
		return fmt.Errorf("agent index holds %d agents, list %d", a.agents.n, len(a.agentList))
	}
	unreachable := 0
	for _, ag := range a.agentList {
		if !ag.reachable {
			unreachable++
		}
		if ag.reachable != (!ag.unreachable && !ag.withheld) {
			return fmt.Errorf("%v: reachable %v, unreachable %v, withheld %v", ag, ag.reachable, ag.unreachable, ag.withheld)
		}
		if ag.filtered != (len(ag.recs) > 0) {
			return fmt.Errorf("%v: filtered is %v with %d filter records", ag, ag.filtered, len(ag.recs))
		}
	}
	if unreachable != a.unreachable {
		return fmt.Errorf("%d agents unreachable, counted %d", unreachable, a.unreachable)
	}
	var allocated, total, freeUnres scalars
	perClient := map[*client]scalars{}
	perClientAgents := map[*client]int{}
	for i, ag := range a.agentList {
		if int(ag.idx) != i || a.agents.get(ag.name) != ag {
			return fmt.Errorf("%v: index broken", ag)
		}
		sum := ag.free()
		seen := map[*client]bool{}
		if n := int(ag.n); len(ag.moreBy) != max(n-inlineHeld, 0) || len(ag.moreS) != len(ag.moreBy) ||
			(ag.moreRanges != nil && len(ag.moreRanges) != n-inlinePorts) || (!ag.heldPorts && ag.moreRanges != nil) ||
			ag.freeHasPorts != (len(ag.freePorts) > 0) {
			return fmt.Errorf("%v: holding arrays out of step", ag)
		}
		if ag.hasReserved != (len(ag.reserved) > 0) {
			return fmt.Errorf("%v: hasReserved is %v", ag, ag.hasReserved)
		}
		for i := range int(ag.n) {
			c, r := a.slots[ag.key(i)].c, ag.holding(i)
			if c == nil {
				return fmt.Errorf("%v: holding of free slot %d", ag, ag.key(i))
			}
			if seen[c] {
				return fmt.Errorf("%v: two holdings for %v", ag, c)
			}
			seen[c] = true
			if r.IsEmpty() {
				return fmt.Errorf("%v: empty allocation kept for %v", ag, c)
			}
			if sum.Ports.Overlaps(r.Ports) {
				return fmt.Errorf("%v: ports of %v overlap others", ag, c)
			}
			sum = sum.Add(r)
			perClientAgents[c]++
			if ag.booked() { // an unreachable agent's allocations are off the books
				s := perClient[c]
				addS(&s, &r.Scalars)
				perClient[c] = s
				addS(&allocated, &r.Scalars)
			}
		}
		if !sum.Equal(ag.total) {
			return fmt.Errorf("%v: free+allocated = %v, total %v", ag, sum, ag.total)
		}
		if err := ag.free().Validate(); err != nil {
			return fmt.Errorf("%v: free invalid: %v", ag, err)
		}
		u := ag.unreserved()
		for k, v := range u.Scalars {
			if v < 0 {
				return fmt.Errorf("%v: unreserved %v negative: %v", ag, resources.Kind(k), u)
			}
		}
		for role := range ag.reserved {
			var ra scalars
			for i := range int(ag.n) {
				if a.slots[ag.key(i)].c.role.name == role {
					addS(&ra, ag.scalarsOf(i))
				}
			}
			if ra != ag.roleAlloc[role] {
				return fmt.Errorf("%v: role alloc of %q = %v, want %v", ag, role, ag.roleAlloc[role], ra)
			}
		}
		if ag.reachable {
			addS(&total, &ag.total.Scalars)
			addS(&freeUnres, &u.Scalars)
		}
	}
	if allocated != a.allocated || total != a.total || freeUnres != a.freeUnres {
		return fmt.Errorf("totals: allocated %v/%v total %v/%v freeUnres %v/%v", allocated, a.allocated, total, a.total, freeUnres, a.freeUnres)
	}
	filters := 0
	for _, fw := range a.frameworks {
		for role, c := range fw.clients {
			if c.role.name != role || c.fw != fw || a.slots[c.slot].c != c {
				return fmt.Errorf("%v: links broken", c)
			}
			if perClient[c] != c.alloc || perClientAgents[c] != c.nAgents {
				return fmt.Errorf("%v: alloc %v on %d agents, books say %v on %d", c, perClient[c], perClientAgents[c], c.alloc, c.nAgents)
			}
			if !c.subscribed && c.nAgents == 0 {
				return fmt.Errorf("%v: unsubscribed and empty but kept", c)
			}
			filters += c.nFilters
		}
	}
	if filters != a.filters {
		return fmt.Errorf("filters: %d counted on clients, %d in total", filters, a.filters)
	}
	live := 0
	for _, ag := range a.agentList {
		for _, r := range ag.recs {
			if s := a.slots[r.slot]; s.c != nil && s.gen == r.gen {
				live++
			}
		}
	}
	if live != a.filters {
		return fmt.Errorf("filters: %d live records, %d counted", live, a.filters)
	}
	var walk func(n *roleNode) (scalars, error)
	walk = func(n *roleNode) (scalars, error) {
		var sum scalars
		if n.self != nil {
			var own scalars
			for _, c := range n.self.clients {
				addS(&own, &c.alloc)
			}
			if own != n.self.alloc {
				return sum, fmt.Errorf("role %q: own alloc %v, clients hold %v", n.name, n.self.alloc, own)
			}
			sum = own
		}
		for _, ch := range n.children {
			if ch.parent != n || a.roles[ch.name] != ch {
				return sum, fmt.Errorf("role %q: tree links broken", ch.name)
			}
			s, err := walk(ch)
			if err != nil {
				return sum, err
			}
			addS(&sum, &s)
		}
		if n != a.root && sum != n.alloc {
			return sum, fmt.Errorf("role %q: alloc %v, subtree holds %v", n.name, n.alloc, sum)
		}
		return sum, nil
	}
	_, err := walk(a.root)
	return err
}

func addAgents(t testing.TB, a *Allocator, n int, total string) []string {
	t.Helper()
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("agent-%03d", i)
		must(t, a.AddAgent(AgentInfo{Name: names[i], Total: mustParse(total)}))
	}
	return names
}

// countBy tallies offers per framework.
func countBy(offers []Offer) map[string]int {
	m := map[string]int{}
	for _, o := range offers {
		m[o.FrameworkID]++
	}
	return m
}

func fmtAny(v any) string { return fmt.Sprintf("%+v", v) }
