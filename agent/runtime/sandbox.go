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

// prepareSandbox creates the sandbox (and a relative working dir inside
// it) owned by the task's user, so the task can write its files there.
func prepareSandbox(sandbox, workDir string, mkWorkDir bool, l *launchSpec) error {
	if err := os.MkdirAll(filepath.Dir(sandbox), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(sandbox, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	dirs := []string{sandbox}
	if mkWorkDir && workDir != sandbox {
		if err := os.MkdirAll(workDir, 0o750); err != nil {
			return err
		}
		dirs = append(dirs, workDir)
	}
	if l.SetUser {
		for _, d := range dirs {
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
}

// GC removes this agent's sandboxes of tasks that have no checkpoint any
// more (Forget was called) once their retention has passed since Forget,
// and stray empty cgroups left by launches that crashed half-way. It never
// looks outside this agent's own directories and cgroups.
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
	return res, errors.Join(errs...)
}
