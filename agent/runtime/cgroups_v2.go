package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/cgroups/fscommon"
	"golang.org/x/sys/unix"
)

// v2Cgroup is a cgroup in the unified hierarchy.
type v2Cgroup struct {
	mount string            // hierarchy root; only needed by Create
	dir   string            // the cgroup
	avail map[string]string // controllers available at the root; only needed by Create
}

func (c *v2Cgroup) Paths() map[string]string { return map[string]string{"": c.dir} }

// needed lists the controllers the limits use.
func (l limits) v2Controllers() []string {
	var cs []string
	if l.CPUShares > 0 || l.CPUQuotaUs > 0 {
		cs = append(cs, "cpu")
	}
	if l.MemBytes > 0 {
		cs = append(cs, "memory")
	}
	if l.Pids > 0 {
		cs = append(cs, "pids")
	}
	return cs
}

func (c *v2Cgroup) Create(l limits) error {
	need := l.v2Controllers()
	for _, ctl := range need {
		if _, ok := c.avail[ctl]; !ok {
			return fmt.Errorf("cgroup v2 controller %q is not available at %s (the task's resources need it)", ctl, c.mount)
		}
	}
	rel, err := filepath.Rel(c.mount, c.dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below %s", c.dir, c.mount)
	}
	// Controllers must be enabled in every ancestor's subtree_control for
	// the leaf to get the interface files; the library's CreateCgroupPath
	// would insist on /sys/fs/cgroup, so do it here (tests use a fake root).
	enable := ""
	if len(need) > 0 {
		enable = "+" + strings.Join(need, " +")
	}
	cur := c.mount
	for _, part := range strings.Split(rel, "/") {
		if enable != "" {
			if err := cgroups.WriteFile(cur, "cgroup.subtree_control", enable); err != nil {
				return fmt.Errorf("enable controllers (%s) in %s: %w", enable, cur, err)
			}
		}
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	res := l.resources()
	res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(res.CpuShares)
	if res.Memory > 0 {
		res.MemorySwap = res.Memory // no swap beyond the hard limit
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: res}, c.dir)
	if err != nil {
		return err
	}
	if err := m.Set(res); err != nil {
		_ = c.Destroy()
		return fmt.Errorf("set cgroup limits: %w", err)
	}
	return nil
}

func (c *v2Cgroup) Procs() ([]int, error) { return readProcs(c.dir) }

// KillAll uses cgroup.kill (Linux 5.14+), which kills atomically even
// while the cgroup forks; older kernels freeze, kill and thaw.
func (c *v2Cgroup) KillAll(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pids, err := c.Procs()
		if err != nil || len(pids) == 0 {
			return err
		}
		if err := cgroups.WriteFile(c.dir, "cgroup.kill", "1"); err != nil {
			frozen := cgroups.WriteFile(c.dir, "cgroup.freeze", "1") == nil
			_, err = signalAll(c, unix.SIGKILL)
			if frozen {
				_ = cgroups.WriteFile(c.dir, "cgroup.freeze", "0")
			}
			if err != nil {
				return err
			}
		}
		if err := waitEmpty(c, 500*time.Millisecond); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s not empty after %s", c.dir, timeout)
		}
	}
}

func (c *v2Cgroup) OOMKills() (uint64, bool, error) {
	kills, err := fs2.OOMKillCount(c.dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil // no memory controller here
	}
	if err != nil {
		return 0, false, err
	}
	hits, err := fscommon.GetValueByKey(c.dir, "memory.events", "max")
	return kills, hits > 0, err
}

func (c *v2Cgroup) Usage() Usage {
	var u Usage
	// cpu.stat exists even without the cpu controller enabled.
	if us, err := fscommon.GetValueByKey(c.dir, "cpu.stat", "usage_usec"); err == nil {
		u.CPUSeconds = float64(us) / 1e6
	}
	if b, err := fscommon.GetCgroupParamUint(c.dir, "memory.peak"); err == nil {
		u.PeakMemBytes = int64(b)
	}
	return u
}

func (c *v2Cgroup) Destroy() error { return removeCgroupDir(c.dir) }

// openCgroupDir opens the v2 cgroup directory for clone3's
// CLONE_INTO_CGROUP (SysProcAttr.UseCgroupFD).
func openCgroupDir(dir string) (*os.File, error) {
	return os.OpenFile(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}
