package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agora-sched/agora/pkg/localcluster"
)

// proc is a daemon we started (containerd, kubelet). Its log is appended
// to across restarts on the same data dir. It runs in its own process group
// (a Ctrl-C is ours to handle in order) and is killed with us if we die;
// `localnode down` finds what that leaves.
type proc struct{ *localcluster.Proc }

func startProc(name, logDir, bin string, args ...string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	p, err := localcluster.StartProc(cmd, name, logDir, false)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after timeout.
func (p *proc) stop(timeout time.Duration) {
	if p != nil && p.Terminate(timeout) {
		logf("%s did not stop in %v: SIGKILL", p.Name, timeout)
	}
}

// pidsReferencing lists processes whose command line mentions s (our data
// dir): that is how `down` finds only the processes this tool started,
// never anyone else's.
func pidsReferencing(s string) []int {
	self := os.Getpid()
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(cmdline), s) {
			out = append(out, pid)
		}
	}
	return out
}

// killAndWait signals pids and waits up to timeout for them to go.
func killAndWait(pids []int, sig syscall.Signal, timeout time.Duration) []int {
	for _, pid := range pids {
		_ = syscall.Kill(pid, sig)
	}
	deadline := time.Now().Add(timeout)
	for {
		var alive []int
		for _, pid := range pids {
			if processAlive(pid) {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processAlive is false for gone and zombie processes.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// cgroupPids lists the processes in a cgroup directory and all below it.
func cgroupPids(dir string) []int {
	var out []int
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return nil
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				out = append(out, pid)
			}
		}
		return nil
	})
	return out
}

// removeCgroupTree removes dir and the cgroups below it, deepest first.
func removeCgroupTree(dir string) error {
	var dirs []string
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	var last error
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
			last = err
		}
	}
	return last
}
