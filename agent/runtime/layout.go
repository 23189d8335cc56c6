package runtime

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/agora-sched/agora/internal/mountinfo"
)

// cgroupfsRoot is where Linux distributions mount cgroup hierarchies.
const cgroupfsRoot = "/sys/fs/cgroup"

// v1 controllers the runtime manages (limits, accounting, killing). The
// optional ones are joined, when mounted, only for membership: a task or
// supervisor left in the agent container's cgroup of any hierarchy would be
// counted (and killed, or block removal) with that container; devices is
// the one runc enumerates a container's processes through. Named
// hierarchies (Layout.Named) are joined for membership too.
var (
	v1Required = []string{"cpu", "cpuacct", "memory", "pids", "freezer"}
	v1Optional = []string{"devices", "cpuset", "blkio", "perf_event", "net_cls", "net_prio", "hugetlb", "rdma", "misc"}
)

// Layout is the host's cgroup layout as the runtime uses it.
type Layout struct {
	// Version is 2 only when /sys/fs/cgroup itself is a cgroup2 mount.
	// Hybrid hosts (v1 controllers plus a v2 hierarchy mounted elsewhere,
	// often holding no useful controller) are version 1.
	Version int
	// Unified is the cgroup2 mount point: the hierarchy on v2, the
	// side hierarchy on hybrid v1 hosts ("" if none).
	Unified string
	// Controllers maps controller name to its mount point. On v2 it holds
	// the controllers listed in the root's cgroup.controllers.
	Controllers map[string]string
	// MountRoots maps v1 controllers (and named hierarchies) whose mount
	// shows a sub-tree (a container without cgroup namespace) to that
	// sub-tree's root.
	MountRoots map[string]string
	// Named maps the v1 named hierarchies (mounted with name=X and no
	// controller, such as name=systemd) to their mount points, keyed
	// "name=X" as /proc/<pid>/cgroup shows them. They carry no limits, but
	// a process left in the agent container's cgroup of one is found (and
	// killed) with that container, so supervisors and tasks get their own
	// cgroups there too. Empty on v2.
	Named map[string]string
}

func (l *Layout) String() string {
	if l == nil {
		return "<no cgroup layout>"
	}
	var b strings.Builder
	if l.Version == 2 {
		fmt.Fprintf(&b, "cgroup v2 at %s, controllers: %s", l.Unified, strings.Join(l.controllerNames(), " "))
		return b.String()
	}
	b.WriteString("cgroup v1:")
	for _, c := range l.controllerNames() {
		fmt.Fprintf(&b, " %s=%s", c, l.Controllers[c])
		if r := l.MountRoots[c]; r != "" {
			fmt.Fprintf(&b, "(root %s)", r)
		}
	}
	for _, n := range sortedKeys(l.Named) {
		fmt.Fprintf(&b, " %s=%s", n, l.Named[n])
		if r := l.MountRoots[n]; r != "" {
			fmt.Fprintf(&b, "(root %s)", r)
		}
	}
	if l.Unified != "" {
		fmt.Fprintf(&b, "; v2 side hierarchy at %s (not used)", l.Unified)
	}
	return b.String()
}

// checkHostView refuses a layout whose mounts show only a sub-tree of a
// hierarchy (a container given its own cgroup view): the runtime's cgroups
// would land inside the container's, and die with it.
func (l *Layout) checkHostView() error {
	for c, root := range l.MountRoots {
		if c == "" || slices.Contains(v1Required, c) {
			return fmt.Errorf("cgroup %q is mounted from %s, not the hierarchy's root: mount the host's %s (hostPath) into the agent", c, root, cgroupfsRoot)
		}
	}
	return nil
}

func (l *Layout) controllerNames() []string { return sortedKeys(l.Controllers) }

func sortedKeys(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Has reports whether a controller is available.
func (l *Layout) Has(controller string) bool {
	_, ok := l.Controllers[controller]
	return ok
}

// DetectLayout reads /proc/self/mountinfo to find the cgroup layout.
func DetectLayout() (*Layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseLayout(f, os.ReadFile)
}

// parseLayout is DetectLayout with its inputs injected, for tests.
func parseLayout(r io.Reader, readFile func(string) ([]byte, error)) (*Layout, error) {
	l := &Layout{Controllers: map[string]string{}, MountRoots: map[string]string{}, Named: map[string]string{}}
	known := map[string]bool{}
	for _, c := range []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices",
		"blkio", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"} {
		known[c] = true
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// Format: id parent major:minor root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 6 || len(fields) < sep+4 {
			continue
		}
		root, mnt := mountinfo.Unescape(fields[3]), mountinfo.Unescape(fields[4])
		fstype, superOpts := fields[sep+1], fields[sep+3]
		switch fstype {
		case "cgroup2":
			if mnt == cgroupfsRoot {
				l.Version = 2
				l.Unified = mnt
				if root != "/" {
					l.MountRoots[""] = root
				}
			} else if l.Unified == "" {
				l.Unified = mnt
			}
		case "cgroup":
			opts := strings.Split(superOpts, ",")
			record := func(m map[string]string, key string) {
				// A hierarchy mounted twice (bind mounts) keeps the mount
				// under /sys/fs/cgroup, else the first.
				if prev, ok := m[key]; ok && strings.HasPrefix(prev, cgroupfsRoot+"/") {
					return
				}
				m[key] = mnt
				if root != "/" {
					l.MountRoots[key] = root
				} else {
					delete(l.MountRoots, key)
				}
			}
			hasController := false
			for _, opt := range opts {
				if known[opt] {
					hasController = true
					record(l.Controllers, opt)
				}
			}
			// A name= hierarchy that also holds a controller is already
			// handled through the controller's directory.
			for _, opt := range opts {
				if strings.HasPrefix(opt, "name=") && len(opt) > len("name=") && !hasController {
					record(l.Named, opt)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if l.Version == 2 {
		data, err := readFile(filepath.Join(l.Unified, "cgroup.controllers"))
		if err != nil {
			return nil, fmt.Errorf("cgroup v2: %w", err)
		}
		l.Controllers = map[string]string{}
		l.Named = map[string]string{}
		for c := range l.MountRoots {
			if c != "" {
				delete(l.MountRoots, c)
			}
		}
		for _, c := range strings.Fields(string(bytes.TrimSpace(data))) {
			l.Controllers[c] = l.Unified
		}
		return l, nil
	}
	l.Version = 1
	var missing []string
	for _, c := range v1Required {
		if !l.Has(c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("cgroup v1: controllers %s are not mounted (%s is not cgroup2 either); found: %s",
			strings.Join(missing, ", "), cgroupfsRoot, l)
	}
	return l, nil
}
