package runtime

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// taskCommand builds the command that runs argv as the task (or one of its
// health checks) inside the task's cgroup from its first instruction: on
// v2 cloned straight into the cgroup, on v1 through the shim. The caller
// sets Stdin/Stdout/Stderr and must call the returned cleanup after Start.
func taskCommand(l *launchSpec, argv []string) (*exec.Cmd, func(), error) {
	if len(argv) == 0 {
		return nil, nil, errors.New("empty command")
	}
	cmd := &exec.Cmd{Env: l.Env, Dir: l.Dir}
	// Its own process group keeps terminal-style group signals aimed at
	// the supervisor away from the task.
	attr := &syscall.SysProcAttr{Setpgid: true}
	cmd.SysProcAttr = attr
	if l.CgroupVersion == 2 {
		path, err := lookPathIn(argv[0], envLookup(l.Env, "PATH"), l.Dir)
		if err != nil {
			return nil, nil, err
		}
		fd, err := openCgroupDir(l.Cgroup[""])
		if err != nil {
			return nil, nil, fmt.Errorf("open task cgroup: %w", err)
		}
		cmd.Path, cmd.Args = path, argv
		attr.UseCgroupFD, attr.CgroupFD = true, int(fd.Fd())
		if l.SetUser {
			attr.Credential = &syscall.Credential{Uid: l.UID, Gid: l.GID, Groups: l.Groups}
		}
		return cmd, func() { fd.Close() }, nil
	}
	// v1: check the executable exists now for a clear launch error; the
	// shim looks it up again as the task's user.
	if _, err := lookPathIn(argv[0], envLookup(l.Env, "PATH"), l.Dir); err != nil {
		return nil, nil, err
	}
	dirs := make([]string, 0, len(l.Cgroup))
	for _, d := range l.Cgroup {
		dirs = append(dirs, d)
	}
	args, err := shimArgv(l.SelfExe, shimConfig{Cgroups: dirs, SetUser: l.SetUser, UID: l.UID, GID: l.GID, Groups: l.Groups}, argv)
	if err != nil {
		return nil, nil, err
	}
	cmd.Path, cmd.Args = l.SelfExe, args
	return cmd, func() {}, nil
}

// lookPathIn finds file like exec.LookPath, but in the task's PATH rather
// than the supervisor's.
func lookPathIn(file, pathEnv, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("command %q: %w", file, err)
		}
		return file, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue // relative PATH entries would depend on the cwd
		}
		p := filepath.Join(d, file)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q", file, pathEnv)
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
