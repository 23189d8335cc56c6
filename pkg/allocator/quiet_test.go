package allocator

import (
	"testing"
	"time"
)

// quietNow reports whether the round would skip agent n unread at now.
func quietNow(a *Allocator, n string, now time.Time) bool {
	return a.isQuiet(a.agents.get(n).idx, nowNanos(now))
}

// Rounds skip an agent that had nothing to offer, and visit it again as
// soon as anything that could give it something to offer happens.
func TestQuietAgents(t *testing.T) {
	t.Run("a full agent until resources come back", func(t *testing.T) {
		a := oneAgent(t, "f")
		if quietNow(a, "n", t0) {
			t.Fatal("quiet before a round found it so")
		}
		o := a.Allocate(t0) // all of it, held: the round notes it quiet
		if !quietNow(a, "n", t0) {
			t.Fatal("an agent offered whole not noted quiet")
		}
		if got := a.Allocate(t0); len(got) != 0 || !quietNow(a, "n", t0) {
			t.Fatalf("full agent: offers %v, quiet %v; want none, quiet", got, quietNow(a, "n", t0))
		}
		must(t, a.Recover("f", "*", "n", mustParse("cpus:1"), 0, t0))
		if quietNow(a, "n", t0) {
			t.Fatal("still quiet after resources came back")
		}
		if got := a.Allocate(t0); len(got) != 1 || !got[0].Resources.Equal(mustParse("cpus:1")) {
			t.Fatalf("offers %v, want the cpu that came back (%v held)", got, o[0].Resources)
		}
	})
	t.Run("a full agent that grows", func(t *testing.T) {
		a := oneAgent(t, "f")
		a.Allocate(t0)
		a.Allocate(t0)
		if !quietNow(a, "n", t0) {
			t.Fatal("full agent not quiet")
		}
		must(t, a.UpdateAgent(AgentInfo{Name: "n", Total: mustParse("cpus:6;mem:4Gi;ports:[31000-31010]")}))
		if got := a.Allocate(t0); len(got) != 1 || !got[0].Resources.Equal(mustParse("cpus:2")) {
			t.Fatalf("offers %v, want the 2 cpus added", got)
		}
	})
	t.Run("a filtered agent until its filter expires", func(t *testing.T) {
		a := oneAgent(t, "f")
		o := a.Allocate(t0)
		must(t, a.Recover("f", "*", "n", o[0].Resources, 5*time.Second, t0))
		if got := a.Allocate(t0.Add(time.Second)); len(got) != 0 || !quietNow(a, "n", t0.Add(4*time.Second)) {
			t.Fatalf("filtered agent: offers %v; want none, and quiet", got)
		}
		if quietNow(a, "n", t0.Add(5*time.Second)) {
			t.Fatal("quiet past the filter's expiry")
		}
		if got := a.Allocate(t0.Add(5 * time.Second)); len(got) != 1 {
			t.Fatalf("offers %v after the filter expired, want one", got)
		}
	})
	t.Run("a filtered agent when filters are revived", func(t *testing.T) {
		a := oneAgent(t, "f")
		o := a.Allocate(t0)
		must(t, a.Recover("f", "*", "n", o[0].Resources, time.Hour, t0))
		a.Allocate(t0)
		must(t, a.ReviveFilters("f"))
		if got := a.Allocate(t0); len(got) != 1 {
			t.Fatalf("offers %v after revive, want one", got)
		}
	})
	t.Run("a filtered agent when a framework joins or unsuppresses", func(t *testing.T) {
		a := oneAgent(t, "f", "g")
		must(t, a.Suppress("g"))
		o := a.Allocate(t0)
		must(t, a.Recover("f", "*", "n", o[0].Resources, time.Hour, t0))
		a.Allocate(t0)
		if !quietNow(a, "n", t0) {
			t.Fatal("agent filtered for every eligible framework not quiet")
		}
		must(t, a.Unsuppress("g"))
		og := a.Allocate(t0)
		if len(og) != 1 || og[0].FrameworkID != "g" {
			t.Fatalf("offers %v, want one to g", og)
		}
		must(t, a.Recover("g", "*", "n", og[0].Resources, time.Hour, t0))
		a.Allocate(t0)
		must(t, a.AddFramework(FrameworkInfo{ID: "h"}))
		if got := a.Allocate(t0); len(got) != 1 || got[0].FrameworkID != "h" {
			t.Fatalf("offers %v, want one to the new framework h", got)
		}
	})
	t.Run("a removed agent's place", func(t *testing.T) {
		a := New(Options{Seed: 1})
		must(t, a.AddFramework(FrameworkInfo{ID: "f"}))
		names := addAgents(t, a, 3, "cpus:4;mem:4Gi")
		a.Allocate(t0)
		a.Allocate(t0) // all three full, quiet
		must(t, a.RemoveAgent(names[0]))
		// agent-002 moved into agent-000's place and keeps its mark: it
		// is still full.
		if !quietNow(a, names[2], t0) {
			t.Fatal("the agent moved by RemoveAgent lost its mark")
		}
		must(t, a.Recover("f", "*", names[2], mustParse("cpus:1"), 0, t0))
		if got := a.Allocate(t0); len(got) != 1 || got[0].Agent != names[2] {
			t.Fatalf("offers %v, want one on %s", got, names[2])
		}
	})
}
