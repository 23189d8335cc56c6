package runtime

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IDRange is an inclusive range of user (and group) IDs.
type IDRange struct{ First, Last uint32 }

// DefaultTaskUIDs is the shipped --task-uid-range: one block of 65536 ids
// high above the ranges hosts commonly hand out: login users, /etc/subuid
// ranges for rootless containers (100000 up, 65536 per user),
// systemd-nspawn's container ranges (524288-1879048191) and OpenShift's
// per-namespace ranges (1000000000-1999999999); and below 2^31, which some
// tools mishandle.
var DefaultTaskUIDs = IDRange{First: 2000000000, Last: 2000065535}

func (r IDRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

func (r IDRange) size() uint64 { return uint64(r.Last) - uint64(r.First) + 1 }

func (r IDRange) contains(id uint32) bool { return id >= r.First && id <= r.Last }

// ParseIDRange parses "FIRST-LAST" (inclusive); "" means no range (nil).
func ParseIDRange(s string) (*IDRange, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, "-")
	first, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 32)
	last, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 32)
	if !ok || err1 != nil || err2 != nil {
		return nil, fmt.Errorf("%q: want FIRST-LAST, two decimal IDs, e.g. 2000000000-2000065535", s)
	}
	r := &IDRange{First: uint32(first), Last: uint32(last)}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("%q: %w", s, err)
	}
	return r, nil
}

// validate refuses root (0) and 4294967295 (-1, which setuid reads as
// "unchanged"), so a task can never end up with either.
func (r IDRange) validate() error {
	switch {
	case r.First > r.Last:
		return fmt.Errorf("empty range (%d > %d)", r.First, r.Last)
	case r.First == 0:
		return errors.New("it includes 0 (root)")
	case r.Last == math.MaxUint32:
		return errors.New("it includes 4294967295, which is not a valid ID")
	}
	return nil
}

// checkIDMap fails unless every ID of r is mapped in the agent's user
// namespace (for both uids and gids): in a user namespace that maps only
// part of the ID space (rootless containers), setuid to an unmapped ID
// fails, and better at start than at each launch.
func checkIDMap(r IDRange) error {
	for _, f := range []string{"/proc/self/uid_map", "/proc/self/gid_map"} {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue // no user namespaces in this kernel: everything is mapped
		} else if err != nil {
			return err
		}
		if !idMapCovers(string(data), r) {
			return fmt.Errorf("task ID range %s is not mapped in the agent's user namespace (%s: %s); choose a range inside it",
				r, f, strings.Join(strings.Fields(string(data)), " "))
		}
	}
	return nil
}

// idMapCovers reports whether one line of a uid_map/gid_map ("inside
// outside count") holds all of r.
func idMapCovers(idMap string, r IDRange) bool {
	sc := bufio.NewScanner(strings.NewReader(idMap))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 64)
		count, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil && uint64(r.First) >= inside && uint64(r.Last) < inside+count {
			return true
		}
	}
	return false
}

// The tenant ID table gives each tenant (framework) its own uid from the
// configured range, the same one on every launch and across agent
// restarts, and never one that another tenant holds. It lives beside the
// agents' checkpoint directories, not inside one, so that agents sharing
// a CheckpointDir share it (a lock serialises them):
//
//	<CheckpointDir>/.task-uids/lock        flock(2) of every reader and writer
//	<CheckpointDir>/.task-uids/next        the next uid to try
//	<CheckpointDir>/.task-uids/<hash>.json a tenant's entry; its mtime is
//	                                       when it last launched or ended a task
//
// (Agent names cannot start with a dot, so no agent's directory collides.)
// New uids are handed out in order and wrap around at the end of the
// range, so a uid pruned from the table is reused as late as possible.
const uidTableDir = ".task-uids"

// uidEntry is one tenant's file.
type uidEntry struct {
	Tenant string `json:"tenant"`
	UID    uint32 `json:"uid"`
}

type uidTable struct {
	dir  string
	rng  IDRange
	root string // RootFS: whose passwd and group to keep clear of
	mu   sync.Mutex
}

func openUIDTable(checkpointDir string, rng IDRange, root string) (*uidTable, error) {
	dir := filepath.Join(checkpointDir, uidTableDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("runtime: task uid table: %w", err)
	}
	return &uidTable{dir: dir, rng: rng, root: root}, nil
}

// locked runs fn holding the table's lock, against this process's other
// goroutines (the mutex) and other agents on the host (the flock).
func (t *uidTable) locked(fn func() error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(t.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close() // releases the flock
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	return fn()
}

// entryPath names a tenant's file by a hash: tenant names are the
// agent's to choose and need not be safe file names.
func (t *uidTable) entryPath(tenant string) string {
	sum := sha256.Sum256([]byte(tenant))
	return filepath.Join(t.dir, hex.EncodeToString(sum[:16])+".json")
}

// UID returns the tenant's uid, allocating one on its first task, and
// marks the tenant as in use now.
func (t *uidTable) UID(tenant string) (uint32, error) {
	var uid uint32
	err := t.locked(func() error {
		p := t.entryPath(tenant)
		var e uidEntry
		err := readJSON(p, &e)
		if err == nil && e.Tenant == tenant && t.rng.contains(e.UID) {
			uid = e.UID
			now := time.Now()
			return os.Chtimes(p, now, now)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err // written atomically: not torn, so leave it to a human
		}
		if err == nil && e.Tenant != tenant {
			// Two tenants with one hash: refuse rather than share a uid.
			return fmt.Errorf("tenants %q and %q collide in %s", tenant, e.Tenant, p)
		}
		// New, or its uid is outside a range changed since.
		uid, err = t.allocate(tenant, p)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("task uid of %q: %w", tenant, err)
	}
	return uid, nil
}

// allocate picks the first free uid from next on, records it for tenant
// and advances next. Free means: no other tenant's, and not a uid or gid
// that the host's passwd or group files name or a live process holds
// (another tenant's uid is never free; the others keep the range clear
// of whatever else the host runs in it).
func (t *uidTable) allocate(tenant, path string) (uint32, error) {
	taken, err := t.entryUIDs()
	if err != nil {
		return 0, err
	}
	hostIDs(t.root, taken)
	next := t.readNext()
	n := t.rng.size()
	if limit := uint64(len(taken)) + 1; limit < n {
		n = limit // among len(taken)+1 ids, one is free
	}
	for i := uint64(0); i < n; i++ {
		cand := uint32(uint64(t.rng.First) + (uint64(next-t.rng.First)+i)%t.rng.size())
		if taken[cand] {
			continue
		}
		if err := writeJSONAtomic(path, uidEntry{Tenant: tenant, UID: cand}); err != nil {
			return 0, err
		}
		after := cand + 1
		if cand == t.rng.Last {
			after = t.rng.First
		}
		return cand, writeJSONAtomic(filepath.Join(t.dir, "next"), after)
	}
	return 0, fmt.Errorf("every uid of the range %s is taken (by tenants, users, groups or processes of this host): widen the range", t.rng)
}

// readNext returns the uid to try first; the range's first if unknown.
func (t *uidTable) readNext() uint32 {
	var n uint32
	if err := readJSON(filepath.Join(t.dir, "next"), &n); err != nil || !t.rng.contains(n) {
		return t.rng.First
	}
	return n
}

// entries calls fn with every tenant entry and its file.
func (t *uidTable) entries(fn func(path string, e uidEntry, info os.FileInfo) error) error {
	ents, err := os.ReadDir(t.dir)
	if err != nil {
		return err
	}
	for _, d := range ents {
		if !strings.HasSuffix(d.Name(), ".json") || strings.HasPrefix(d.Name(), ".") {
			continue
		}
		p := filepath.Join(t.dir, d.Name())
		var e uidEntry
		info, err := d.Info()
		if err != nil || readJSON(p, &e) != nil {
			continue // removed meanwhile, or a torn write from before a crash
		}
		if err := fn(p, e, info); err != nil {
			return err
		}
	}
	return nil
}

func (t *uidTable) entryUIDs() (map[uint32]bool, error) {
	taken := map[uint32]bool{}
	err := t.entries(func(_ string, e uidEntry, _ os.FileInfo) error {
		taken[e.UID] = true
		return nil
	})
	return taken, err
}

// Touch marks the tenant as in use now (a task of it ended), so that
// Prune keeps its uid at least as long as the task's sandbox.
func (t *uidTable) Touch(tenant string) {
	_ = t.locked(func() error {
		now := time.Now()
		return os.Chtimes(t.entryPath(tenant), now, now)
	})
}

// Prune forgets tenants idle since before cutoff whose uid no checkpoint
// names (inUse returns those, read under the lock so a launch cannot slip
// in between). Their uids become free again, to be reused once the range
// has wrapped around.
func (t *uidTable) Prune(cutoff time.Time, inUse func() map[uint32]bool) ([]string, error) {
	var pruned []string
	err := t.locked(func() error {
		used := inUse()
		return t.entries(func(p string, e uidEntry, info os.FileInfo) error {
			if used[e.UID] || info.ModTime().After(cutoff) {
				return nil
			}
			if err := os.Remove(p); err != nil {
				return err
			}
			pruned = append(pruned, e.Tenant)
			return nil
		})
	})
	return pruned, err
}

// hostIDs adds to ids every uid and gid that root's /etc/passwd and
// /etc/group name, and every uid and gid a live process holds (real,
// effective, saved and filesystem IDs, from /proc/<pid>/status).
func hostIDs(root string, ids map[uint32]bool) {
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		_ = readColonFile(root, f, func(fields []string) bool {
			if len(fields) > 2 {
				if n, err := strconv.ParseUint(fields[2], 10, 32); err == nil {
					ids[uint32(n)] = true
				}
			}
			return false
		})
	}
	procs, _ := os.ReadDir("/proc")
	for _, d := range procs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		for _, line := range strings.Split(string(data), "\n") {
			rest, ok := strings.CutPrefix(line, "Uid:")
			if !ok {
				rest, ok = strings.CutPrefix(line, "Gid:")
			}
			if !ok {
				continue
			}
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.ParseUint(f, 10, 32); err == nil {
					ids[uint32(n)] = true
				}
			}
		}
	}
}
