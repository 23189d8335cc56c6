package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fscommon"
	"golang.org/x/sys/unix"
)

// v1Cgroup is a cgroup in each v1 hierarchy (cpu and cpuacct may or may
// not share a mount; each controller just has its own directory). Named
// hierarchies are in dirs too, under "name=X" keys.
type v1Cgroup struct {
	dirs map[string]string
}

func (c *v1Cgroup) Paths() map[string]string { return c.dirs }

func (c *v1Cgroup) Create(l limits) error {
	res := l.resources()
	// The library knows controllers (and only name=systemd of the named
	// hierarchies, whose errors it ignores): named hierarchies are plain
	// directories, created here.
	ctrlDirs := map[string]string{}
	for k, d := range c.dirs {
		if isNamedHierarchy(k) {
			if err := os.MkdirAll(d, 0o755); err != nil {
				_ = c.Destroy()
				return fmt.Errorf("create cgroup in %s hierarchy: %w", k, err)
			}
			continue
		}
		ctrlDirs[k] = d
	}
	m, err := fs.NewManager(&cgroups.Cgroup{Resources: res}, ctrlDirs)
	if err != nil {
		_ = c.Destroy()
		return err
	}
	// Apply(-1) creates the directories without moving any process: the
	// task joins through the shim.
	if err := m.Apply(-1); err != nil {
		_ = c.Destroy()
		return fmt.Errorf("create cgroup: %w", err)
	}
	// Forbid swap beyond the hard limit where swap is accounted, so the
	// limit is hard on hosts with swap too.
	if res.Memory > 0 && fileExists(filepath.Join(c.dirs["memory"], "memory.memsw.limit_in_bytes")) {
		res.MemorySwap = res.Memory
	}
	if err := m.Set(res); err != nil {
		_ = c.Destroy()
		return fmt.Errorf("set cgroup limits: %w", err)
	}
	return nil
}

func (c *v1Cgroup) procsDir() string {
	if d := c.dirs["freezer"]; d != "" {
		return d
	}
	return c.dirs["memory"]
}

func (c *v1Cgroup) Procs() ([]int, error) { return readProcs(c.procsDir()) }

// KillAll freezes the cgroup first so that nothing can fork between
// listing and killing (a fork bomb would otherwise outrun us).
func (c *v1Cgroup) KillAll(timeout time.Duration) error {
	fz := c.dirs["freezer"]
	deadline := time.Now().Add(timeout)
	for {
		pids, err := c.Procs()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		frozen := false
		if fz != "" {
			frozen = (&fs.FreezerGroup{}).Set(fz, &cgroups.Resources{Freezer: cgroups.Frozen}) == nil
		}
		_, err = signalAll(c, unix.SIGKILL)
		if frozen {
			// SIGKILL is delivered once the tasks thaw.
			_ = (&fs.FreezerGroup{}).Set(fz, &cgroups.Resources{Freezer: cgroups.Thawed})
		}
		if err != nil {
			return err
		}
		if err := waitEmpty(c, 500*time.Millisecond); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s not empty after %s", c.procsDir(), timeout)
		}
	}
}

func (c *v1Cgroup) OOMKills() (uint64, bool, error) {
	dir := c.dirs["memory"]
	if dir == "" {
		return 0, false, nil
	}
	failcnt, err := fscommon.GetCgroupParamUint(dir, "memory.failcnt")
	if err != nil {
		return 0, false, err
	}
	// Kernels before 4.13 have no oom_kill line (0 here); callers then
	// fall back to failcnt.
	kills, err := fs.OOMKillCount(dir)
	return kills, failcnt > 0, err
}

func (c *v1Cgroup) Usage() Usage {
	var u Usage
	if d := c.dirs["cpuacct"]; d != "" {
		if ns, err := fscommon.GetCgroupParamUint(d, "cpuacct.usage"); err == nil {
			u.CPUSeconds = float64(ns) / 1e9
		}
	}
	if d := c.dirs["memory"]; d != "" {
		if b, err := fscommon.GetCgroupParamUint(d, "memory.max_usage_in_bytes"); err == nil {
			u.PeakMemBytes = int64(b)
		}
	}
	return u
}

func (c *v1Cgroup) Destroy() error {
	var errs []error
	for _, d := range c.dirs {
		if err := removeCgroupDir(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// isNamedHierarchy reports whether a dirs key is a named hierarchy
// ("name=systemd") rather than a controller.
func isNamedHierarchy(key string) bool { return strings.HasPrefix(key, "name=") }

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
