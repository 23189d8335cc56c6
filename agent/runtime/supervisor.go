package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/cgroups"
)

// handshakeFD is the pipe on which the supervisor tells the agent that the
// task started (or why not). It is the only channel to the agent and is
// closed right after: the task's output goes to files, never to pipes the
// agent holds, so the task never blocks on a dead agent.
const handshakeFD = 3

// handshake is the supervisor's one message to the agent.
type handshake struct {
	PID        int    `json:"pid,omitempty"`
	StartTicks uint64 `json:"startTicks,omitempty"`
	Error      string `json:"error,omitempty"`
}

// leftoverKillTimeout bounds killing what the task left behind.
const leftoverKillTimeout = 10 * time.Second

// superviseMain is the supervisor: the task's parent. It starts the task,
// records its pids and start time, waits for it, and checkpoints how it
// ended. It runs in its own session and cgroup, so neither the agent's
// death nor the agent container's teardown takes it down.
func superviseMain(ckDir string) int {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix(fmt.Sprintf("supervisor[%d] ", os.Getpid()))
	// fd 3 must not leak into the task.
	syscall.CloseOnExec(handshakeFD)
	hs := os.NewFile(handshakeFD, "handshake")
	// Catch (not ignore: ignored dispositions would be inherited by the
	// task) signals that could stray here from a terminal or a group kill.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	go func() {
		for s := range sigs {
			log.Printf("ignoring %v", s)
		}
	}()

	l, err := readLaunch(ckDir)
	if err != nil {
		return superviseFail(hs, ckDir, nil, fmt.Errorf("read launch spec: %w", err))
	}
	if l.CgroupVersion == 1 {
		// v2 supervisors are cloned into their cgroup; v1 ones join now.
		for _, dir := range l.SupervisorCgroup {
			if err := cgroups.WriteCgroupProc(dir, os.Getpid()); err != nil {
				log.Printf("join supervisor cgroup %s: %v", dir, err)
			}
		}
	}
	boot, _, err := bootInfo()
	if err != nil {
		return superviseFail(hs, ckDir, nil, err)
	}
	ticks, err := procStartTicks(os.Getpid())
	if err != nil {
		return superviseFail(hs, ckDir, nil, err)
	}
	rec := &taskRecord{BootID: boot, SupervisorPID: os.Getpid(), SupervisorStartTicks: ticks}
	// Recorded before the task starts so that Recover can tell "supervisor
	// still starting" from "launch never happened".
	if err := writeJSONAtomic(filepath.Join(ckDir, recordFile), rec); err != nil {
		return superviseFail(hs, ckDir, nil, err)
	}

	cmd, err := startTask(l)
	if err != nil {
		return superviseFail(hs, ckDir, rec, err)
	}
	rec.TaskPID = cmd.Process.Pid
	// The child is not reaped before Wait, so /proc/<pid>/stat exists.
	rec.TaskStartTicks, _ = procStartTicks(rec.TaskPID)
	rec.StartedAt = ticksToTime(rec.TaskStartTicks)
	if err := writeJSONAtomic(filepath.Join(ckDir, recordFile), rec); err != nil {
		// Without a checkpoint nobody could ever learn how the task ends.
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		return superviseFail(hs, ckDir, nil, fmt.Errorf("checkpoint: %w", err))
	}
	sendHandshake(hs, handshake{PID: rec.TaskPID, StartTicks: rec.TaskStartTicks})
	log.Printf("task %s started: pid %d", l.TaskID, rec.TaskPID)

	werr := cmd.Wait()
	exit := exitFromState(cmd.ProcessState, werr)
	cg := cgroupFromPaths(l.CgroupVersion, l.Cgroup)
	// Whatever the task left running dies with it, as a Mesos container.
	if err := cg.KillAll(leftoverKillTimeout); err != nil {
		log.Printf("kill leftovers: %v", err)
	}
	kills, limitHit, err := cg.OOMKills()
	if err != nil {
		log.Printf("read oom counters: %v", err)
	}
	// With the kernel's counter an OOM kill is certain; without it, an
	// unrequested SIGKILL after hitting the limit is the OOM killer's.
	sigkill := exit.Signal == int(syscall.SIGKILL)
	if kills > 0 || (limitHit && sigkill && readKill(ckDir) == nil && kills == 0 && !hasOOMCounter(l)) {
		exit.OOM = true
		exit.Reason = ReasonMemoryLimit
		exit.Message = "OOM-killed at the task's memory limit"
	}
	exit.Usage = cg.Usage()
	exit.FinishedAt = time.Now()
	rec.Exit = &exit
	if err := writeJSONAtomic(filepath.Join(ckDir, recordFile), rec); err != nil {
		log.Printf("checkpoint exit status: %v", err)
		return 1
	}
	log.Printf("task %s ended: code %d signal %d oom %v", l.TaskID, exit.ExitCode, exit.Signal, exit.OOM)
	return 0
}

// startTask starts the task with its output in the sandbox's files.
func startTask(l *launchSpec) (*exec.Cmd, error) {
	p, err := taskCommand(l, l.Argv)
	if err != nil {
		return nil, err
	}
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, name := range []string{"stdout", "stderr"} {
		// O_NOFOLLOW: the supervisor is root, and a symlink in a sandbox
		// that existed already must not make it write elsewhere.
		f, err := os.OpenFile(filepath.Join(l.Sandbox, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o640)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		if l.SetUser {
			if err := f.Chown(int(l.UID), int(l.GID)); err != nil {
				return nil, err
			}
		}
	}
	p.Stdout, p.Stderr = files[0], files[1]
	if err := p.Start(); err != nil {
		return nil, err
	}
	return p.Cmd, nil
}

func exitFromState(ps *os.ProcessState, werr error) ExitStatus {
	if ps == nil {
		return ExitStatus{ExitCode: -1, Message: fmt.Sprintf("wait: %v", werr)}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return ExitStatus{ExitCode: -1, Signal: int(ws.Signal()), Message: "terminated by " + ws.Signal().String()}
	}
	return ExitStatus{ExitCode: ps.ExitCode()}
}

// hasOOMCounter reports whether the kernel counts OOM kills per cgroup
// (memory.events on v2; the oom_kill line of memory.oom_control on v1,
// Linux 4.13+).
func hasOOMCounter(l *launchSpec) bool {
	if l.CgroupVersion == 2 {
		return fileExists(filepath.Join(l.Cgroup[""], "memory.events"))
	}
	s, err := cgroups.ReadFile(l.Cgroup["memory"], "memory.oom_control")
	return err == nil && containsLinePrefix(s, "oom_kill ")
}

// superviseFail records a task that never ran, tells the agent, and exits.
func superviseFail(hs *os.File, ckDir string, rec *taskRecord, err error) int {
	log.Printf("launch failed: %v", err)
	if rec != nil {
		rec.Exit = &ExitStatus{ExitCode: -1, Reason: ReasonLaunchFailed, Message: err.Error(), FinishedAt: time.Now()}
		if werr := writeJSONAtomic(filepath.Join(ckDir, recordFile), rec); werr != nil {
			log.Printf("checkpoint: %v", werr)
		}
	}
	sendHandshake(hs, handshake{Error: err.Error()})
	return 1
}

func sendHandshake(hs *os.File, h handshake) {
	data, _ := json.Marshal(h)
	// A dead agent makes this fail with EPIPE; the checkpoint has it all.
	if _, err := hs.Write(append(data, '\n')); err != nil && !errors.Is(err, syscall.EPIPE) {
		log.Printf("handshake: %v", err)
	}
	hs.Close()
}
