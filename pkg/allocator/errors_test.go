package allocator

import (
	"errors"
	"strings"
	"testing"

	"github.com/agora-sched/agora/pkg/resources"
)

// TestImpossibleEvents checks that every impossible event is rejected with
// a typed error and leaves the books exactly as they were.
func TestImpossibleEvents(t *testing.T) {
	setup := func(t *testing.T) *Allocator {
		a := New(Options{Seed: 1})
		must(t, a.AddFramework(FrameworkInfo{ID: "f", Roles: []string{"r"}}))
		must(t, a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:4;mem:4Gi;ports:[1-10]"),
			Reserved: map[string]resources.Resources{"r": mustParse("cpus:1")}}))
		must(t, a.AddAllocation("f", "r", "n", mustParse("cpus:2;mem:1Gi;ports:[1-2]")))
		return a
	}
	neg := resources.Scalars(-1000, 0, 0, 0)
	tests := []struct {
		name string
		ev   func(a *Allocator) error
		want error
		msg  string
	}{
		{"recover on unknown agent", func(a *Allocator) error { return a.Recover("f", "r", "nope", mustParse("cpus:1"), 0, t0) }, ErrUnknownAgent, `agent "nope"`},
		{"recover for unknown framework", func(a *Allocator) error { return a.Recover("g", "r", "n", mustParse("cpus:1"), 0, t0) }, ErrUnknownFramework, `framework "g"`},
		{"double free", func(a *Allocator) error {
			must(t, a.Recover("f", "r", "n", mustParse("cpus:2;mem:1Gi;ports:[1-2]"), 0, t0))
			return a.Recover("f", "r", "n", mustParse("cpus:2"), 0, t0)
		}, ErrNotAllocated, "cannot return"},
		{"recover more than held", func(a *Allocator) error { return a.Recover("f", "r", "n", mustParse("cpus:3"), 0, t0) }, ErrNotAllocated, `holds "cpus:2;mem:1Gi;ports:[1-2]"`},
		{"recover ports not held", func(a *Allocator) error { return a.Recover("f", "r", "n", mustParse("ports:[5-5]"), 0, t0) }, ErrNotAllocated, ""},
		{"recover in another role", func(a *Allocator) error { return a.Recover("f", "other", "n", mustParse("cpus:1"), 0, t0) }, ErrNotAllocated, `role "other"`},
		{"negative resources", func(a *Allocator) error { return a.Recover("f", "r", "n", neg, 0, t0) }, ErrInvalid, "negative"},
		{"negative allocation", func(a *Allocator) error { return a.AddAllocation("f", "r", "n", neg) }, ErrInvalid, "negative"},
		{"allocation beyond the agent", func(a *Allocator) error { return a.AddAllocation("f", "r", "n", mustParse("cpus:3")) }, ErrInsufficient, "does not fit"},
		{"allocation of reserved resources to another role", func(a *Allocator) error { return a.AddAllocation("f", "x", "n", mustParse("cpus:2.5")) }, ErrInsufficient, `role "x"`},
		{"allocation of used ports", func(a *Allocator) error { return a.AddAllocation("f", "r", "n", mustParse("ports:[2-3]")) }, ErrInsufficient, ""},
		{"allocation for unknown framework", func(a *Allocator) error { return a.AddAllocation("g", "r", "n", mustParse("cpus:1")) }, ErrUnknownFramework, ""},
		{"allocation in a bad role", func(a *Allocator) error { return a.AddAllocation("f", "a//b", "n", mustParse("cpus:1")) }, ErrInvalid, "empty path segment"},
		{"duplicate agent", func(a *Allocator) error { return a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:1")}) }, ErrExists, ""},
		{"agent with negative total", func(a *Allocator) error { return a.AddAgent(AgentInfo{Name: "m", Total: neg}) }, ErrInvalid, "negative"},
		{"agent without name", func(a *Allocator) error { return a.AddAgent(AgentInfo{Total: mustParse("cpus:1")}) }, ErrInvalid, "empty"},
		{"reservations beyond the total", func(a *Allocator) error {
			return a.AddAgent(AgentInfo{Name: "m", Total: mustParse("cpus:1"), Reserved: map[string]resources.Resources{"r": mustParse("cpus:2")}})
		}, ErrInvalid, "do not fit"},
		{"overlapping reserved ports", func(a *Allocator) error {
			return a.AddAgent(AgentInfo{Name: "m", Total: mustParse("ports:[1-10]"), Reserved: map[string]resources.Resources{"a": mustParse("ports:[1-5]"), "b": mustParse("ports:[5-6]")}})
		}, ErrInvalid, "overlap"},
		{"update shrinking below use", func(a *Allocator) error {
			return a.UpdateAgent(AgentInfo{Name: "n", Total: mustParse("cpus:1;mem:4Gi;ports:[1-10]")})
		}, ErrInsufficient, "does not hold"},
		{"update unknown agent", func(a *Allocator) error { return a.UpdateAgent(AgentInfo{Name: "m", Total: mustParse("cpus:1")}) }, ErrUnknownAgent, ""},
		{"remove unknown agent", func(a *Allocator) error { return a.RemoveAgent("m") }, ErrUnknownAgent, ""},
		{"reachability of unknown agent", func(a *Allocator) error { return a.SetAgentReachable("m", false) }, ErrUnknownAgent, ""},
		{"withholding unknown agent", func(a *Allocator) error { return a.SetAgentWithheld("m", true) }, ErrUnknownAgent, ""},
		{"duplicate framework", func(a *Allocator) error { return a.AddFramework(FrameworkInfo{ID: "f"}) }, ErrExists, ""},
		{"framework without ID", func(a *Allocator) error { return a.AddFramework(FrameworkInfo{}) }, ErrInvalid, "empty"},
		{"framework with role twice", func(a *Allocator) error { return a.AddFramework(FrameworkInfo{ID: "g", Roles: []string{"a", "a"}}) }, ErrInvalid, "twice"},
		{"suppressing a role it lacks", func(a *Allocator) error {
			return a.AddFramework(FrameworkInfo{ID: "g", Roles: []string{"a"}, SuppressedRoles: []string{"b"}})
		}, ErrInvalid, "not one of its roles"},
		{"bad role names", func(a *Allocator) error { return a.AddFramework(FrameworkInfo{ID: "g", Roles: []string{"a/*"}}) }, ErrInvalid, "'*'"},
		{"remove unknown framework", func(a *Allocator) error { return a.RemoveFramework("g") }, ErrUnknownFramework, ""},
		{"update unknown framework", func(a *Allocator) error { return a.UpdateFramework(FrameworkInfo{ID: "g"}) }, ErrUnknownFramework, ""},
		{"activate unknown framework", func(a *Allocator) error { return a.ActivateFramework("g") }, ErrUnknownFramework, ""},
		{"suppress a role not subscribed", func(a *Allocator) error { return a.Suppress("f", "zzz") }, ErrUnknownRole, `"zzz"`},
		{"unsuppress unknown framework", func(a *Allocator) error { return a.Unsuppress("g") }, ErrUnknownFramework, ""},
		{"revive a role not subscribed", func(a *Allocator) error { return a.ReviveFilters("f", "zzz") }, ErrUnknownRole, ""},
		{"filter for a role not subscribed", func(a *Allocator) error { return a.AddFilter("f", "zzz", "n", mustParse("cpus:1"), t0) }, ErrUnknownRole, ""},
		{"filter on unknown agent", func(a *Allocator) error { return a.AddFilter("f", "r", "m", mustParse("cpus:1"), t0) }, ErrUnknownAgent, ""},
		{"guarantee above limit", func(a *Allocator) error {
			return a.SetRole(RoleInfo{Name: "q", Guarantee: mustParse("cpus:2"), Limit: mustParse("cpus:1"), Limited: resources.AllScalars})
		}, ErrInvalid, "above its limit"},
		{"negative weight", func(a *Allocator) error { return a.SetRole(RoleInfo{Name: "q", Weight: -1}) }, ErrInvalid, "positive"},
		{"role named with whitespace", func(a *Allocator) error { return a.SetRole(RoleInfo{Name: "a b"}) }, ErrInvalid, "whitespace"},
		{"remove unconfigured role", func(a *Allocator) error { return a.RemoveRole("r") }, ErrUnknownRole, ""},
		{"status of unknown framework", func(a *Allocator) error { _, err := a.Allocated("g"); return err }, ErrUnknownFramework, ""},
		{"status of unknown agent", func(a *Allocator) error { _, err := a.AgentAvailable("m"); return err }, ErrUnknownAgent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := setup(t)
			before := snapshot(a)
			err := tc.ev(a)
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want *Error matching %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", err, tc.msg)
			}
			if tc.name != "double free" {
				if after := snapshot(a); after != before {
					t.Errorf("books changed by a rejected event:\n before %s\n after  %s", before, after)
				}
			}
			if err := checkBooks(a); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// snapshot renders what the public accessors say.
func snapshot(a *Allocator) string {
	var b strings.Builder
	st := a.Stats()
	st.Rounds = 0
	b.WriteString(strings.ReplaceAll(strings.TrimSpace(fmtAny(st)), "\n", " "))
	for _, name := range []string{"n"} {
		av, _ := a.AgentAvailable(name)
		b.WriteString(" avail=" + av.String())
	}
	al, _ := a.Allocated("f")
	b.WriteString(" f=" + fmtAny(al))
	on, _ := a.AllocatedOn("f", "r", "n")
	b.WriteString(" on=" + on.String())
	return b.String()
}

func TestNonCanonicalPortsRejected(t *testing.T) {
	a := New(Options{Seed: 1})
	must(t, a.AddFramework(FrameworkInfo{ID: "f"}))
	must(t, a.AddAgent(AgentInfo{Name: "n", Total: mustParse("cpus:1;ports:[1-10]")}))
	o := a.Allocate(t0)
	bad := o[0].Resources.WithPorts(resources.Ranges{{Begin: 1, End: 5}, {Begin: 3, End: 4}})
	if err := a.Recover("f", "*", "n", bad, 0, t0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("non-canonical ports accepted: %v", err)
	}
	must(t, a.Recover("f", "*", "n", o[0].Resources, 0, t0))
	if err := checkBooks(a); err != nil {
		t.Fatal(err)
	}
}
