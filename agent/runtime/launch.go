package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// launchTimeout bounds the wait for the supervisor's handshake.
const launchTimeout = 30 * time.Second

// validateSpec rejects specs that cannot run, with errors that say why.
func validateSpec(s *TaskSpec) error {
	if err := validateName("task ID", s.ID); err != nil {
		return err
	}
	if err := validateCommand(&s.Command); err != nil {
		return fmt.Errorf("task %s: %w", s.ID, err)
	}
	if err := validateEnv(s.Env); err != nil {
		return fmt.Errorf("task %s: %w", s.ID, err)
	}
	res := s.Resources
	if res.MilliCPUs < 0 || res.MemBytes < 0 || res.Pids < 0 {
		return fmt.Errorf("task %s: resources must not be negative: %+v", s.ID, res)
	}
	if res.CFSQuota && res.MilliCPUs == 0 {
		return fmt.Errorf("task %s: a CFS quota needs MilliCPUs", s.ID)
	}
	if res.MemBytes > 0 && res.MemBytes < 4<<20 {
		return fmt.Errorf("task %s: memory limit %d bytes is below the 4 MiB minimum", s.ID, res.MemBytes)
	}
	for _, p := range s.Ports {
		if p == 0 || p > 65535 {
			return fmt.Errorf("task %s: port %d is out of range", s.ID, p)
		}
	}
	if s.KillGracePeriod < 0 {
		return fmt.Errorf("task %s: negative kill grace period", s.ID)
	}
	if err := validateHealthCheck(s.HealthCheck); err != nil {
		return fmt.Errorf("task %s: health check: %w", s.ID, err)
	}
	return nil
}

func validateCommand(c *Command) error {
	switch {
	case c.Shell != "" && len(c.Argv) > 0:
		return errors.New("command has both Shell and Argv; set one")
	case c.Shell == "" && len(c.Argv) == 0:
		return errors.New("command is empty")
	case len(c.Argv) > 0 && c.Argv[0] == "":
		return errors.New("command argv[0] is empty")
	}
	return nil
}

func (c *Command) argv() []string {
	if c.Shell != "" {
		return []string{"/bin/sh", "-c", c.Shell}
	}
	return c.Argv
}

// Launch starts a task and returns once its process runs (an EventRunning
// is also delivered). A returned error means nothing runs and nothing is
// left to Forget; the sandbox may remain for GC.
func (r *Runtime) Launch(ctx context.Context, spec TaskSpec) (*TaskInfo, error) {
	if err := validateSpec(&spec); err != nil {
		return nil, err
	}
	ckDir := filepath.Join(r.ckptDir, spec.ID)
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return nil, errors.New("runtime is closed")
	case r.tasks[spec.ID] != nil || r.launching[spec.ID]:
		r.mu.Unlock()
		return nil, fmt.Errorf("task %s already exists", spec.ID)
	}
	if _, err := os.Stat(ckDir); err == nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("task %s already has a checkpoint (Recover or Forget it first)", spec.ID)
	}
	r.launching[spec.ID] = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.launching, spec.ID)
		r.mu.Unlock()
	}()

	l, err := r.prepare(&spec, ckDir)
	if err != nil {
		return nil, err
	}
	t := &task{id: spec.ID, ckDir: ckDir, launch: l, cg: cgroupFromPaths(l.CgroupVersion, l.Cgroup), done: make(chan struct{})}
	cleanup := func() {
		_ = t.cg.KillAll(leftoverKillTimeout)
		_ = t.cg.Destroy()
		_ = cgroupFromPaths(l.CgroupVersion, l.SupervisorCgroup).Destroy()
		_ = os.RemoveAll(ckDir)
	}
	sup, hs, err := r.startSupervisor(ctx, l, ckDir)
	if err != nil {
		if sup != nil {
			_ = sup.Process.Kill()
			_ = sup.Wait()
		}
		cleanup()
		return nil, fmt.Errorf("launch task %s: %w", spec.ID, err)
	}
	t.supPID = sup.Process.Pid
	t.supTicks, _ = procStartTicks(t.supPID)
	t.pid = hs.PID
	t.startedAt = ticksToTime(hs.StartTicks)

	r.mu.Lock()
	r.tasks[spec.ID] = t
	r.mu.Unlock()
	info := &TaskInfo{ID: spec.ID, PID: t.pid, StartedAt: t.startedAt, Sandbox: l.Sandbox, Cgroups: l.Cgroup}
	r.events.Push(Event{Type: EventRunning, TaskID: spec.ID, Time: time.Now(), PID: t.pid, StartedAt: t.startedAt})
	r.startHealth(t)
	// The supervisor is our child until we die: its exit is how we learn
	// that the task ended. Waiting on a pidfd through the netpoller costs
	// no thread per task, unlike a blocking wait4.
	pidfd, perr := unix.PidfdOpen(t.supPID, unix.PIDFD_NONBLOCK)
	go func() {
		if perr == nil {
			f := os.NewFile(uintptr(pidfd), "pidfd")
			err := waitPidfd(f, r.stop)
			f.Close()
			if err != nil {
				// Closed: still reap the child, but report nothing.
				_ = sup.Wait()
				return
			}
		}
		_ = sup.Wait()
		r.finish(t)
	}()
	return info, nil
}

// prepare resolves the spec into a launch spec and creates the sandbox,
// the cgroups and the checkpoint.
func (r *Runtime) prepare(spec *TaskSpec, ckDir string) (*launchSpec, error) {
	u, err := r.resolveUser(spec)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", spec.ID, err)
	}
	sandbox := filepath.Join(r.sandboxDir, spec.ID)
	wd, mkWD, err := resolveWorkingDir(sandbox, spec.WorkingDir)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", spec.ID, err)
	}
	grace := spec.KillGracePeriod
	if grace == 0 {
		grace = r.cfg.KillGracePeriod
	}
	taskRel := filepath.Join(r.cgroupParent, taskCgroupDir, spec.ID)
	supRel := filepath.Join(r.cgroupParent, supervisorCgroupDir, spec.ID)
	l := &launchSpec{
		TaskID: spec.ID, Name: spec.Name, AgentName: r.cfg.AgentName, Tenant: spec.Tenant,
		Argv: spec.Command.argv(), Env: buildEnv(spec, sandbox, u.Home), Dir: wd,
		SetUser: u.SetUser, User: u.Name, UID: u.UID, GID: u.GID, Groups: u.Groups,
		Sandbox: sandbox, RootFS: r.cfg.RootFS, CgroupVersion: r.layout.Version,
		Cgroup:           newCgroup(r.layout, taskRel).Paths(),
		SupervisorCgroup: newCgroup(r.layout, supRel).Paths(),
		SelfExe:          r.cfg.SelfExe, HealthCheck: spec.HealthCheck,
		KillGracePeriod: grace, CreatedAt: time.Now(),
	}
	if err := prepareSandbox(sandbox, wd, mkWD, l); err != nil {
		return nil, fmt.Errorf("task %s: sandbox: %w", spec.ID, err)
	}
	if !mkWD {
		// An absolute working dir is a path inside RootFS, if set.
		if st, err := statIn(l.RootFS, wd); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil, fmt.Errorf("task %s: working dir %q is not a directory%s", spec.ID, wd, inRootNote(l.RootFS))
		}
	}
	if _, err := lookPathIn(l.RootFS, l.Argv[0], envLookup(l.Env, "PATH"), wd); err != nil {
		return nil, fmt.Errorf("task %s: %w", spec.ID, err)
	}
	tcg := newCgroup(r.layout, taskRel)
	if err := tcg.Create(limitsFor(spec.Resources)); err != nil {
		return nil, fmt.Errorf("task %s: %w", spec.ID, err)
	}
	scg := newCgroup(r.layout, supRel)
	if err := scg.Create(r.supervisorLimits()); err != nil {
		_ = tcg.Destroy()
		return nil, fmt.Errorf("task %s: supervisor cgroup: %w", spec.ID, err)
	}
	fail := func(err error) (*launchSpec, error) {
		_ = tcg.Destroy()
		_ = scg.Destroy()
		_ = os.RemoveAll(ckDir)
		return nil, fmt.Errorf("task %s: checkpoint: %w", spec.ID, err)
	}
	if err := os.Mkdir(ckDir, 0o700); err != nil {
		return fail(err)
	}
	if err := syncDir(filepath.Dir(ckDir)); err != nil {
		return fail(err)
	}
	if err := writeJSONAtomic(filepath.Join(ckDir, launchFile), l); err != nil {
		return fail(err)
	}
	return l, nil
}

// supervisorLimits is the supervisors' small allowance. On v2, controllers
// the hierarchy lacks are skipped: the allowance protects the host from a
// runaway supervisor, the task does not depend on it.
func (r *Runtime) supervisorLimits() limits {
	l := limitsFor(Resources{MilliCPUs: supervisorMilliCPUs, MemBytes: supervisorMemBytes, Pids: supervisorPids})
	if r.layout.Version == 2 {
		if !r.layout.Has("cpu") {
			l.CPUShares = 0
		}
		if !r.layout.Has("memory") {
			l.MemBytes = 0
		}
		if !r.layout.Has("pids") {
			l.Pids = 0
		}
	}
	return l
}

// startSupervisor starts the supervisor in its own session and cgroup and
// waits for its handshake.
func (r *Runtime) startSupervisor(ctx context.Context, l *launchSpec, ckDir string) (*exec.Cmd, *handshake, error) {
	logf, err := os.OpenFile(filepath.Join(ckDir, supLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer pr.Close()
	cmd := &exec.Cmd{
		Path: r.cfg.SelfExe,
		Args: []string{r.cfg.SelfExe, supervisorArg, ckDir},
		// A lean Go runtime: the supervisor mostly sleeps in wait4.
		Env:        []string{"PATH=" + defaultPath, "GOMAXPROCS=1", "GOGC=50"},
		Dir:        "/",
		Stdout:     logf,
		Stderr:     logf,
		ExtraFiles: []*os.File{pw}, // fd 3 = handshakeFD
		// Setsid: no terminal or process-group signal of the agent's
		// reaches it, and it lives on when the agent dies.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if l.CgroupVersion == 2 {
		fd, err := openCgroupDir(l.SupervisorCgroup[""])
		if err != nil {
			pw.Close()
			return nil, nil, err
		}
		defer fd.Close()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(fd.Fd())
	}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("start supervisor: %w", err)
	}
	type result struct {
		h   handshake
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var h handshake
		line, err := bufio.NewReader(pr).ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &h)
		} else {
			err = fmt.Errorf("supervisor exited before the task started (see %s)", filepath.Join(ckDir, supLogFile))
		}
		ch <- result{h, err}
	}()
	timer := time.NewTimer(launchTimeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.err != nil {
			return cmd, nil, res.err
		}
		if res.h.Error != "" {
			_ = cmd.Wait()
			return nil, nil, errors.New(res.h.Error)
		}
		return cmd, &res.h, nil
	case <-ctx.Done():
		return cmd, nil, ctx.Err()
	case <-timer.C:
		return cmd, nil, fmt.Errorf("no word from the supervisor after %s", launchTimeout)
	}
}
