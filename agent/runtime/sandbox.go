package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxIDLen keeps cgroup and file names well below NAME_MAX.
const maxIDLen = 128

// validateName checks that s is safe as a single path component in the
// work, checkpoint and cgroup trees: task IDs and agent names become
// directory names, and must never walk out of their parent.
func validateName(what, s string) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > maxIDLen {
		return fmt.Errorf("%s %q is longer than %d characters", what, s, maxIDLen)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%s %q is not allowed (it would escape its directory)", what, s)
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
		if !ok {
			return fmt.Errorf("%s %q may only contain letters, digits, '-', '_' and '.' (found %q)", what, s, r)
		}
	}
	if s[0] == '.' || s[0] == '-' {
		return fmt.Errorf("%s %q must start with a letter, digit or '_'", what, s)
	}
	return nil
}

// within reports whether path is base or below it (both cleaned).
func within(base, path string) bool {
	rel, err := filepath.Rel(base, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// resolveWorkingDir returns the task's working directory: the sandbox by
// default, a relative path inside it (never outside), or an absolute host
// path as given.
func resolveWorkingDir(sandbox, wd string) (string, bool, error) {
	if wd == "" {
		return sandbox, false, nil
	}
	if filepath.IsAbs(wd) {
		return filepath.Clean(wd), false, nil
	}
	p := filepath.Join(sandbox, wd)
	if !within(sandbox, p) {
		return "", false, fmt.Errorf("working dir %q escapes the sandbox", wd)
	}
	return p, true, nil
}

// makeSandboxParent creates the directory of an agent's sandboxes with
// mode 0711: tasks pass through it to their own sandbox but cannot list
// it, so a tenant does not even learn the other tasks' sandbox names.
func makeSandboxParent(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return err
	}
	return os.Chmod(dir, 0o711) // made 0755 by earlier versions
}

// prepareSandbox creates the sandbox (and a relative working dir inside
// it, each directory on the way) owned by the task's user with mode 0700,
// so the task can write its files there and no other task's user can
// read them (the agent, root, serves them as logs).
func prepareSandbox(sandbox, workDir string, mkWorkDir bool, l *launchSpec) error {
	if err := os.MkdirAll(filepath.Dir(sandbox), 0o711); err != nil {
		return err
	}
	dirs := []string{sandbox}
	if mkWorkDir && workDir != sandbox {
		rel, err := filepath.Rel(sandbox, workDir)
		if err != nil || !within(sandbox, workDir) {
			return fmt.Errorf("working dir %q escapes the sandbox", workDir)
		}
		d := sandbox
		for _, part := range strings.Split(rel, string(filepath.Separator)) {
			d = filepath.Join(d, part)
			dirs = append(dirs, d)
		}
	}
	for _, d := range dirs {
		// An existing sandbox is a launch retried after a crash. Whatever
		// is found there must be a real directory: chmod and chown follow
		// symlinks, and one left by a task would hand it any host path.
		if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if fi, err := os.Lstat(d); err != nil {
			return err
		} else if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory (%s)", d, fi.Mode().Type())
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
		if l.SetUser {
			if err := os.Chown(d, int(l.UID), int(l.GID)); err != nil {
				return err
			}
		}
	}
	return nil
}

// GCResult lists what a GC pass removed.
type GCResult struct {
	Sandboxes []string
	Cgroups   []string
	// Tenants whose uid was released (Config.TaskUIDs).
	Tenants []string
}

// GC removes this agent's sandboxes of tasks that have no checkpoint any
// more (Forget was called) once their retention has passed since Forget,
// and stray empty cgroups left by launches that crashed half-way. It never
// looks outside this agent's own directories and cgroups, except to
// release the uids of tenants idle for longer than both the retention and
// minTenantIdle (Config.TaskUIDs).
func (r *Runtime) GC(retention time.Duration) (GCResult, error) {
	var res GCResult
	var errs []error
	known := map[string]bool{}
	if ents, err := os.ReadDir(r.ckptDir); err == nil {
		for _, e := range ents {
			known[e.Name()] = true
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return res, err
	}
	r.mu.Lock()
	for id := range r.tasks {
		known[id] = true
	}
	for id := range r.launching {
		known[id] = true
	}
	r.mu.Unlock()

	ents, err := os.ReadDir(r.sandboxDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	cutoff := time.Now().Add(-retention)
	for _, e := range ents {
		if !e.IsDir() || known[e.Name()] || validateName("task ID", e.Name()) != nil {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		p := filepath.Join(r.sandboxDir, e.Name())
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Sandboxes = append(res.Sandboxes, p)
	}

	// Cgroups of unknown tasks: only remove empty ones; a cgroup with
	// processes but no checkpoint would be a bug worth seeing, not hiding.
	for _, sub := range []string{taskCgroupDir, supervisorCgroupDir} {
		base := newCgroup(r.layout, filepath.Join(r.cgroupParent, sub))
		for _, dir := range base.Paths() {
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if !e.IsDir() || known[e.Name()] {
					continue
				}
				p := filepath.Join(dir, e.Name())
				if pids, err := readProcs(p); err != nil || len(pids) > 0 {
					continue
				}
				if err := removeCgroupDir(p); err == nil {
					res.Cgroups = append(res.Cgroups, p)
				}
			}
		}
	}
	if r.uids != nil {
		pruned, err := r.uids.Prune(time.Now().Add(-max(retention, minTenantIdle)), r.checkpointedUIDs)
		res.Tenants = pruned
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// minTenantIdle is how long a tenant keeps its uid after its last task on
// the host ended, at least: files its tasks left outside their sandboxes
// (in /tmp, say) stay its own for that long before the uid can be reused,
// which needs the range to wrap around first anyway.
const minTenantIdle = 7 * 24 * time.Hour

// checkpointedUIDs returns the uids of the tasks checkpointed by every
// agent sharing the CheckpointDir: the tasks that run, or whose end is not
// recorded in the API yet.
func (r *Runtime) checkpointedUIDs() map[uint32]bool {
	used := map[uint32]bool{}
	agents, _ := os.ReadDir(r.cfg.CheckpointDir)
	for _, a := range agents {
		if !a.IsDir() || validateName("agent name", a.Name()) != nil {
			continue
		}
		dir := filepath.Join(r.cfg.CheckpointDir, a.Name())
		tasks, _ := os.ReadDir(dir)
		for _, t := range tasks {
			if l, err := readLaunch(filepath.Join(dir, t.Name())); err == nil && l.SetUser {
				used[l.UID] = true
			}
		}
	}
	return used
}
