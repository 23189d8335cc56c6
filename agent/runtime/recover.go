package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// startWait bounds how long Recover waits for a supervisor that was still
// starting its task when the previous agent died.
const startWait = 5 * time.Second

// Recover reads this agent's checkpoints after a restart and reports each
// task: Running tasks are reattached (their Exited event follows later,
// health checks and pending kills resume), Exited ones ended while no
// agent watched, Lost ones cannot be accounted for (host rebooted, or the
// supervisor vanished without a status). Nothing is removed: call Forget
// once the state is safely recorded elsewhere.
func (r *Runtime) Recover() ([]RecoveredTask, error) {
	ents, err := os.ReadDir(r.ckptDir)
	if err != nil {
		return nil, err
	}
	boot, _, err := bootInfo()
	if err != nil {
		return nil, err
	}
	var out []RecoveredTask
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || validateName("task ID", id) != nil {
			continue
		}
		r.mu.Lock()
		_, tracked := r.tasks[id]
		tracked = tracked || r.launching[id]
		r.mu.Unlock()
		if tracked {
			continue
		}
		out = append(out, r.recoverOne(id, boot))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (r *Runtime) recoverOne(id, boot string) RecoveredTask {
	ckDir := filepath.Join(r.ckptDir, id)
	rt := RecoveredTask{TaskInfo: TaskInfo{ID: id}}
	lost := func(reason, msg string) RecoveredTask {
		rt.State, rt.Message = StateLost, msg
		rt.Exit = &ExitStatus{ExitCode: -1, Reason: reason, Message: msg, FinishedAt: time.Now()}
		return rt
	}
	l, err := readLaunch(ckDir)
	if err != nil {
		return lost(ReasonSupervisorGone, fmt.Sprintf("unreadable checkpoint: %v", err))
	}
	rt.Name, rt.Sandbox, rt.Cgroups = l.Name, l.Sandbox, l.Cgroup
	cg := cgroupFromPaths(l.CgroupVersion, l.Cgroup)

	rec, err := readRecord(ckDir)
	if err != nil {
		return lost(ReasonSupervisorGone, fmt.Sprintf("unreadable checkpoint: %v", err))
	}
	if rec != nil && rec.BootID != boot {
		return lost(ReasonHostRebooted, "the host rebooted since the task started")
	}
	// A supervisor still starting its task: give it a moment.
	for deadline := time.Now().Add(startWait); rec != nil && rec.Exit == nil && rec.TaskPID == 0 &&
		sameProcess(rec.SupervisorPID, rec.SupervisorStartTicks) && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if rec, err = readRecord(ckDir); err != nil {
			return lost(ReasonSupervisorGone, err.Error())
		}
	}
	if rec == nil {
		r.killLeftovers(id, cg)
		return lost(ReasonSupervisorGone, "the launch did not complete before the agent stopped")
	}
	rt.PID, rt.StartedAt = rec.TaskPID, rec.StartedAt
	if rec.Exit == nil && rec.TaskPID != 0 && sameProcess(rec.SupervisorPID, rec.SupervisorStartTicks) {
		if r.reattach(l, rec, ckDir, cg) == nil {
			rt.State = StateRunning
			return rt
		}
		// The supervisor ended between the check and the reattach: its
		// record is complete now, read below.
		if rec, err = readRecord(ckDir); err != nil || rec == nil {
			return lost(ReasonSupervisorGone, fmt.Sprintf("checkpoint: %v", err))
		}
	}
	if rec.Exit == nil {
		// The supervisor may have written its status just before exiting.
		if again, err := readRecord(ckDir); err == nil && again != nil {
			rec = again
		}
	}
	if rec.Exit != nil {
		exit := finalStatus(*rec.Exit, readKill(ckDir))
		rt.State, rt.Exit = StateExited, &exit
		return rt
	}
	// Supervisor gone, no status: whatever it left must not run unwatched.
	r.killLeftovers(id, cg)
	return lost(ReasonSupervisorGone, "the task's supervisor ended without recording an exit status")
}

// killLeftovers ends the processes of a task nobody supervises any more.
func (r *Runtime) killLeftovers(id string, cg cgroup) {
	if err := cg.KillAll(leftoverKillTimeout); err != nil {
		r.cfg.Logf("task %s: kill unsupervised processes: %v", id, err)
	}
}

// reattach watches a live supervisor again through a pidfd, which pins the
// process: checked once after opening, it cannot be confused by pid reuse.
func (r *Runtime) reattach(l *launchSpec, rec *taskRecord, ckDir string, cg cgroup) error {
	fd, err := unix.PidfdOpen(rec.SupervisorPID, unix.PIDFD_NONBLOCK)
	if err != nil {
		return err
	}
	if !sameProcess(rec.SupervisorPID, rec.SupervisorStartTicks) {
		unix.Close(fd)
		return errors.New("supervisor gone")
	}
	pidfd := os.NewFile(uintptr(fd), "pidfd")
	t := &task{id: l.TaskID, ckDir: ckDir, launch: l, cg: cg, supPID: rec.SupervisorPID,
		supTicks: rec.SupervisorStartTicks, pid: rec.TaskPID, startedAt: rec.StartedAt, done: make(chan struct{})}
	r.mu.Lock()
	r.tasks[t.id] = t
	r.mu.Unlock()
	r.startHealth(t)
	if k := readKill(ckDir); k != nil {
		r.mu.Lock()
		t.killing = true
		r.mu.Unlock()
		go r.runKill(t, k)
	}
	go func() {
		defer pidfd.Close()
		if err := waitPidfd(pidfd, r.stop); err != nil {
			return // the Runtime was closed; the next one recovers again
		}
		r.finish(t)
	}()
	return nil
}

// waitPidfd blocks until the process exits, through the Go netpoller (a
// pidfd becomes readable when its process ends), or until stop closes.
func waitPidfd(pidfd *os.File, stop <-chan struct{}) error {
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
			_ = pidfd.SetReadDeadline(time.Now())
		case <-done:
		}
	}()
	return rc.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err == nil && n > 0
	})
}
