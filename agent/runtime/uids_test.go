package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testUIDBase is far from any uid a test host uses.
const testUIDBase = 3000000000

func TestParseIDRange(t *testing.T) {
	for in, want := range map[string]*IDRange{
		"":                      nil,
		"2000000000-2000065535": {2000000000, 2000065535},
		" 5-5 ":                 {5, 5},
	} {
		got, err := ParseIDRange(in)
		if err != nil || (got == nil) != (want == nil) || got != nil && *got != *want {
			t.Errorf("ParseIDRange(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"100":              "want FIRST-LAST",
		"a-b":              "want FIRST-LAST",
		"-5":               "want FIRST-LAST",
		"10-5":             "empty range",
		"0-100":            "0 (root)",
		"1-4294967295":     "4294967295",
		"1-4294967296":     "want FIRST-LAST",
		"100-200-300":      "want FIRST-LAST",
		"2000000000-":      "want FIRST-LAST",
		"-1-2000000000000": "want FIRST-LAST",
	} {
		if _, err := ParseIDRange(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseIDRange(%q) error = %v, want it to mention %q", in, err, msg)
		}
	}
}

func TestIDMapCovers(t *testing.T) {
	full := "         0          0 4294967295\n"
	rootless := "0 1000 1\n1 100000 65536\n"
	r := IDRange{2000000000, 2000065535}
	if !idMapCovers(full, r) {
		t.Error("the initial namespace's map does not cover the range")
	}
	if idMapCovers(rootless, r) {
		t.Error("a rootless map covers a range it does not map")
	}
	if !idMapCovers(rootless, IDRange{1000, 65536}) || idMapCovers(rootless, IDRange{1000, 65537}) {
		t.Error("the edge of a mapped extent is wrong")
	}
}

func TestParseAllowedUsers(t *testing.T) {
	if p, err := ParseAllowedUsers(" "); p != nil || err != nil {
		t.Errorf("empty list: policy %v, err %v; want none", p != nil, err)
	}
	p, err := ParseAllowedUsers("spark, hadoop,root")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"spark", "hadoop", "root"} {
		if err := p(u); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	if err := p("nobody"); err == nil || !strings.Contains(err.Error(), "hadoop,root,spark") {
		t.Errorf("nobody: %v, want a refusal listing the allowed users", err)
	}
	for in, msg := range map[string]string{
		"a,,b":                  "empty name",
		"a,":                    "empty name",
		"Spark":                 `"Spark" is not a user name`,
		"1000":                  `"1000" is not a user name`,
		"*":                     `"*" is not a user name`,
		"a b":                   `"a b" is not a user name`,
		strings.Repeat("x", 33): "is not a user name",
	} {
		if _, err := ParseAllowedUsers(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseAllowedUsers(%q) error = %v, want it to mention %q", in, err, msg)
		}
	}
}

// TestUIDTable: tenants get distinct uids in order, keep them when the
// table is opened again, agree between concurrent users of one directory,
// and run out with a clear error.
func TestUIDTable(t *testing.T) {
	dir := t.TempDir()
	rng := IDRange{testUIDBase, testUIDBase + 39}
	tb, err := openUIDTable(dir, rng, "")
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]uint32{}
	seen := map[uint32]string{}
	for i := range 5 {
		tenant := fmt.Sprintf("ns-%d/fw", i)
		uid, err := tb.UID(tenant)
		if err != nil {
			t.Fatal(err)
		}
		if !rng.contains(uid) || seen[uid] != "" {
			t.Fatalf("%s got uid %d (out of %s, or also %q's)", tenant, uid, rng, seen[uid])
		}
		first[tenant], seen[uid] = uid, tenant
	}
	// Two more "agents" on the same directory, concurrently, with old
	// and new tenants: everyone agrees, nobody shares.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		other, err := openUIDTable(dir, rng, "")
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				tenant := fmt.Sprintf("ns-%d/fw", i)
				uid, err := other.UID(tenant)
				mu.Lock()
				switch {
				case err != nil:
					t.Error(err)
				case first[tenant] != 0 && first[tenant] != uid:
					t.Errorf("%s: uid %d, earlier %d", tenant, uid, first[tenant])
				case seen[uid] != "" && seen[uid] != tenant:
					t.Errorf("%s and %s share uid %d", tenant, seen[uid], uid)
				default:
					first[tenant], seen[uid] = uid, tenant
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(first) != 10 || len(seen) != 10 {
		t.Fatalf("%d tenants with %d uids, want 10 and 10", len(first), len(seen))
	}

	small := IDRange{testUIDBase + 100, testUIDBase + 102}
	st, err := openUIDTable(t.TempDir(), small, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := st.UID(fmt.Sprint("t", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.UID("one-too-many"); err == nil || !strings.Contains(err.Error(), "widen the range") {
		t.Errorf("exhausted range: %v", err)
	}
}

// TestUIDTablePrune: idle tenants whose uid no checkpoint names are
// forgotten; their uids come back only after the range wrapped around.
func TestUIDTablePrune(t *testing.T) {
	rng := IDRange{testUIDBase + 200, testUIDBase + 203}
	tb, err := openUIDTable(t.TempDir(), rng, "")
	if err != nil {
		t.Fatal(err)
	}
	uid := map[string]uint32{}
	for _, tenant := range []string{"idle", "running", "recent"} {
		if uid[tenant], err = tb.UID(tenant); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-48 * time.Hour)
	for _, tenant := range []string{"idle", "running"} {
		if err := os.Chtimes(tb.entryPath(tenant), old, old); err != nil {
			t.Fatal(err)
		}
	}
	pruned, err := tb.Prune(time.Now().Add(-24*time.Hour), func() map[uint32]bool {
		return map[uint32]bool{uid["running"]: true}
	})
	if err != nil || len(pruned) != 1 || pruned[0] != "idle" {
		t.Fatalf("pruned %v, %v; want [idle]", pruned, err)
	}
	// The next new tenant takes the range's last uid, the one after
	// wraps around to the freed one.
	if u, _ := tb.UID("new-1"); u != rng.Last {
		t.Errorf("new-1 got %d, want the unused %d", u, rng.Last)
	}
	if u, _ := tb.UID("new-2"); u != uid["idle"] {
		t.Errorf("new-2 got %d, want the freed %d", u, uid["idle"])
	}
	if u, _ := tb.UID("running"); u != uid["running"] {
		t.Errorf("running tenant moved from %d to %d", uid["running"], u)
	}
}

// TestUIDTableSkipsHostIDs: a uid a live process holds is never handed
// to a tenant.
func TestUIDTableSkipsHostIDs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a process as another uid")
	}
	busy := uint32(testUIDBase + 300)
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: busy, Gid: busy}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	tb, err := openUIDTable(t.TempDir(), IDRange{busy, busy + 1}, "")
	if err != nil {
		t.Fatal(err)
	}
	if u, err := tb.UID("x"); err != nil || u != busy+1 {
		t.Errorf("got %d, %v; want %d (%d belongs to a live process)", u, err, busy+1, busy)
	}
	if _, err := os.Stat(filepath.Join(tb.dir, "lock")); err != nil {
		t.Error(err)
	}
}
