package cli

import (
	"testing"

	"github.com/agora-sched/agora/agent/runtime"
)

// TestLocalTaskUIDRanges: the agents of `agora local` share one kernel, so
// their uid ranges must not overlap.
func TestLocalTaskUIDRanges(t *testing.T) {
	var prev *runtime.IDRange
	for i := 1; i <= 16; i++ {
		r, err := runtime.ParseIDRange(localTaskUIDRange(i))
		if err != nil || r == nil {
			t.Fatalf("agent %d: %q: %v", i, localTaskUIDRange(i), err)
		}
		if r.Last-r.First+1 != 65536 || prev != nil && r.First <= prev.Last {
			t.Errorf("agent %d: range %s after %s; want 65536 uids each, disjoint", i, r, prev)
		}
		prev = r
	}
}
