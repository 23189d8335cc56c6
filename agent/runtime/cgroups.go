package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"golang.org/x/sys/unix"
)

const (
	cfsPeriodUs   = 100_000 // 100ms, as Mesos
	minCFSQuotaUs = 1_000   // the kernel refuses less than 1ms
	minCPUShares  = 2       // the kernel's minimum
	sharesPerCPU  = 1024

	// The supervisor's allowance: it only waits and writes small files.
	supervisorMemBytes  = 16 << 20
	supervisorMilliCPUs = 50
	supervisorPids      = 64
)

// limits are Resources translated to cgroup values.
type limits struct {
	CPUShares  uint64 // 0 = unset
	CPUQuotaUs int64  // 0 = unset
	MemBytes   int64  // 0 = unset
	Pids       int64  // 0 = unset
}

func limitsFor(r Resources) limits {
	var l limits
	if r.MilliCPUs > 0 {
		l.CPUShares = max(uint64(r.MilliCPUs)*sharesPerCPU/1000, minCPUShares)
		if r.CFSQuota {
			l.CPUQuotaUs = max(r.MilliCPUs*cfsPeriodUs/1000, minCFSQuotaUs)
		}
	}
	l.MemBytes = r.MemBytes
	l.Pids = r.Pids
	return l
}

// resources converts limits into the library's terms.
func (l limits) resources() *cgroups.Resources {
	r := &cgroups.Resources{CpuShares: l.CPUShares}
	if l.CPUQuotaUs > 0 {
		r.CpuQuota = l.CPUQuotaUs
		r.CpuPeriod = cfsPeriodUs
	}
	if l.MemBytes > 0 {
		r.Memory = l.MemBytes
	}
	if l.Pids > 0 {
		p := l.Pids
		r.PidsLimit = &p
	}
	return r
}

// cgroup is one task's (or supervisor's) cgroup, across all hierarchies.
// Both the agent and the supervisor use it, the latter rebuilt from the
// checkpointed paths.
type cgroup interface {
	// Paths maps controller to directory (v2: the single key ""; v1 named
	// hierarchies under their "name=X" key).
	Paths() map[string]string
	// Create makes the directories and applies the limits.
	Create(l limits) error
	// Procs lists the processes in the cgroup.
	Procs() ([]int, error)
	// KillAll SIGKILLs every process and waits until the cgroup is empty.
	KillAll(timeout time.Duration) error
	// OOMKills returns the cgroup's OOM kill count, and whether the memory
	// limit was hit at all (failcnt, for kernels without the counter).
	OOMKills() (kills uint64, limitHit bool, err error)
	Usage() Usage
	// Destroy removes the (empty) cgroup directories.
	Destroy() error
}

// newCgroup returns the cgroup rel (relative to each hierarchy's mount).
func newCgroup(l *Layout, rel string) cgroup {
	if l.Version == 2 {
		return &v2Cgroup{mount: l.Unified, dir: filepath.Join(l.Unified, rel), avail: l.Controllers}
	}
	dirs := map[string]string{}
	for _, c := range append(append([]string{}, v1Required...), v1Optional...) {
		if m, ok := l.Controllers[c]; ok {
			dirs[c] = filepath.Join(m, rel)
		}
	}
	// Named hierarchies: membership only, like the optional controllers.
	for n, m := range l.Named {
		dirs[n] = filepath.Join(m, rel)
	}
	return &v1Cgroup{dirs: dirs}
}

// cgroupFromPaths rebuilds a cgroup from checkpointed paths.
func cgroupFromPaths(version int, paths map[string]string) cgroup {
	if version == 2 {
		dir := paths[""]
		return &v2Cgroup{dir: dir}
	}
	return &v1Cgroup{dirs: paths}
}

// signalAll sends sig to every process in the cgroup. Processes that
// vanish meanwhile are fine.
func signalAll(cg cgroup, sig unix.Signal) (int, error) {
	pids, err := cg.Procs()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err == nil {
			n++
		} else if !errors.Is(err, unix.ESRCH) {
			return n, fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	return n, nil
}

// waitEmpty polls until the cgroup has no process. Exited processes leave
// cgroup.procs when they die, before being reaped.
func waitEmpty(cg cgroup, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := cg.Procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup still has processes %v after %s", pids, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readProcs reads cgroup.procs; a removed cgroup has no processes.
func readProcs(dir string) ([]int, error) {
	pids, err := cgroups.GetPids(dir)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) {
		return nil, nil
	}
	return pids, err
}

// removeCgroupDir removes dir and any sub-cgroups; a missing dir is fine.
func removeCgroupDir(dir string) error {
	if dir == "" || !strings.HasPrefix(dir, "/") {
		return nil
	}
	return cgroups.RemovePath(dir)
}

// containsLinePrefix reports whether a line of s starts with prefix.
func containsLinePrefix(s, prefix string) bool {
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// Sub-cgroups of an agent's parent. Not "tasks": v1 cgroup directories
// already hold a "tasks" file.
const (
	taskCgroupDir       = "task"
	supervisorCgroupDir = "supervisor"
)
