package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// taskProc is a task (or health check) process about to start.
type taskProc struct {
	*exec.Cmd
	cgroupFD *os.File // v2: the cgroup to clone into
	execR    *os.File // v1: read end of the shim's exec pipe
	execW    *os.File // v1: its write end, the shim's fd 3
}

// taskCommand builds the command that runs argv as the task (or one of its
// health checks) inside the task's cgroup from its first instruction: on
// v2 cloned straight into the cgroup, on v1 through the shim. The caller
// sets Stdin/Stdout/Stderr, then calls Start.
func taskCommand(l *launchSpec, argv []string) (*taskProc, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	cmd := &exec.Cmd{Env: l.Env, Dir: l.Dir}
	// Its own process group keeps terminal-style group signals aimed at
	// the supervisor away from the task.
	attr := &syscall.SysProcAttr{Setpgid: true}
	cmd.SysProcAttr = attr
	if l.CgroupVersion == 2 {
		path, err := lookPathIn(l.RootFS, argv[0], envLookup(l.Env, "PATH"), l.Dir)
		if err != nil {
			return nil, err
		}
		// The child chroots, then drops privileges, then changes to Dir
		// (now resolved inside the root) and execs path, also inside it.
		attr.Chroot = l.RootFS
		fd, err := openCgroupDir(l.Cgroup[""])
		if err != nil {
			return nil, fmt.Errorf("open task cgroup: %w", err)
		}
		cmd.Path, cmd.Args = path, argv
		attr.UseCgroupFD, attr.CgroupFD = true, int(fd.Fd())
		if l.SetUser {
			attr.Credential = &syscall.Credential{Uid: l.UID, Gid: l.GID, Groups: l.Groups}
		}
		return &taskProc{Cmd: cmd, cgroupFD: fd}, nil
	}
	// v1: check the executable exists now for a clear launch error; the
	// shim looks it up again as the task's user.
	if _, err := lookPathIn(l.RootFS, argv[0], envLookup(l.Env, "PATH"), l.Dir); err != nil {
		return nil, err
	}
	dirs := make([]string, 0, len(l.Cgroup))
	for _, d := range l.Cgroup {
		dirs = append(dirs, d)
	}
	cfg := shimConfig{Cgroups: dirs, SetUser: l.SetUser, UID: l.UID, GID: l.GID, Groups: l.Groups, ExecFD: 3}
	if l.RootFS != "" {
		// The shim (the agent binary) starts outside the root, where the
		// working dir may not exist; it chroots and changes dir itself.
		cfg.Chroot, cfg.Dir = l.RootFS, l.Dir
		cmd.Dir = "/"
	}
	args, err := shimArgv(l.SelfExe, cfg, argv)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Path, cmd.Args = l.SelfExe, args
	cmd.ExtraFiles = []*os.File{w}
	return &taskProc{Cmd: cmd, execR: r, execW: w}, nil
}

// Start starts the process and, on v1, waits until the shim has joined the
// cgroups and exec'd the task: only then may the task be reported running
// (a kill aimed at the cgroup would otherwise miss it). The exec pipe is
// close-on-exec in the shim, so EOF means exec succeeded; anything read is
// the shim's error.
func (p *taskProc) Start() error {
	var err error
	if p.execR == nil {
		err = startNoNewPrivs(p.Cmd)
	} else {
		err = p.Cmd.Start() // the shim sets no_new_privs itself
	}
	if p.cgroupFD != nil {
		p.cgroupFD.Close()
	}
	if p.execW != nil {
		p.execW.Close()
	}
	if p.execR == nil {
		return err
	}
	defer p.execR.Close()
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(p.execR)
	if len(msg) > 0 {
		_ = p.Cmd.Wait()
		return errors.New(strings.TrimSpace(string(msg)))
	}
	return nil
}

// setNoNewPrivs sets no_new_privs on the calling thread: an exec from it,
// and every process it starts, can no longer gain privileges (setuid,
// setgid and file-capability programs run without them).
func setNoNewPrivs() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// startNoNewPrivs starts cmd with no_new_privs set. On v2 no shim runs
// between the clone and the task's exec, so the child inherits the bit
// from the thread that clones it. The bit cannot be cleared, so that
// thread never goes back to the scheduler: it ends with its goroutine.
func startNoNewPrivs(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread() // never unlocked, see above
		if err := setNoNewPrivs(); err != nil {
			errc <- err
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// lookPathIn finds file like exec.LookPath, but in the task's PATH rather
// than the supervisor's, and inside root ("" for the agent's filesystem).
// The path returned is as seen inside root.
func lookPathIn(root, file, pathEnv, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := checkExecutable(root, p); err != nil {
			return "", fmt.Errorf("command %q%s: %w", file, inRootNote(root), err)
		}
		return file, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue // relative PATH entries would depend on the cwd
		}
		p := filepath.Join(d, file)
		if checkExecutable(root, p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q%s", file, pathEnv, inRootNote(root))
}

func checkExecutable(root, p string) error {
	if root == "" {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", p)
		}
		return nil
	}
	st, err := statIn(root, p)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR || st.Mode&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}
