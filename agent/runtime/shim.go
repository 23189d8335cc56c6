package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"syscall"

	"github.com/opencontainers/cgroups"
)

// shimConfig is the shim's first argument. On cgroup v1 there is no way to
// start a process inside a cgroup, so the shim (already running with the
// task's env and working dir) joins the task's cgroups, drops to the task's
// user and execs the task: the task's first instruction runs in its cgroup.
type shimConfig struct {
	Cgroups []string `json:"cgroups"`
	SetUser bool     `json:"setUser,omitempty"`
	UID     uint32   `json:"uid"`
	GID     uint32   `json:"gid"`
	Groups  []uint32 `json:"groups,omitempty"`
	// Chroot, when set, is the root the task runs in (Config.RootFS) and
	// Dir its working dir inside it: the shim starts outside the root.
	Chroot string `json:"chroot,omitempty"`
	Dir    string `json:"dir,omitempty"`
	// ExecFD is the close-on-exec pipe to the starter: closed by the exec,
	// or carrying the reason the task could not be started.
	ExecFD int `json:"execFD,omitempty"`
}

// shimArgv returns the argv that runs argv through the shim.
func shimArgv(self string, cfg shimConfig, argv []string) ([]string, error) {
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return append([]string{self, shimArg, string(data), "--"}, argv...), nil
}

func shimMain(args []string) int {
	var execPipe *os.File
	fail := func(code int, format string, a ...any) int {
		msg := fmt.Sprintf("agora: "+format+"\n", a...)
		// stderr is the task's stderr file: the user sees why it failed.
		fmt.Fprint(os.Stderr, msg)
		if execPipe != nil {
			_, _ = execPipe.WriteString(msg)
		}
		return code
	}
	if len(args) < 3 || args[1] != "--" {
		return fail(2, "usage: %s CONFIG -- ARGV...", shimArg)
	}
	var cfg shimConfig
	if err := json.Unmarshal([]byte(args[0]), &cfg); err != nil {
		return fail(2, "shim config: %v", err)
	}
	if cfg.ExecFD > 0 {
		syscall.CloseOnExec(cfg.ExecFD)
		execPipe = os.NewFile(uintptr(cfg.ExecFD), "exec-pipe")
	}
	argv := args[2:]
	for _, dir := range cfg.Cgroups {
		if err := cgroups.WriteCgroupProc(dir, os.Getpid()); err != nil {
			return fail(126, "join cgroup %s: %v", dir, err)
		}
	}
	if cfg.Chroot != "" {
		// After joining the cgroups (their files are outside the root),
		// before dropping the privilege chroot needs. The chdir also moves
		// the cwd into the root, which chroot alone leaves outside.
		if err := syscall.Chroot(cfg.Chroot); err != nil {
			return fail(126, "chroot %s: %v", cfg.Chroot, err)
		}
		dir := cfg.Dir
		if dir == "" {
			dir = "/"
		}
		if err := syscall.Chdir(dir); err != nil {
			return fail(126, "chdir %s inside %s: %v", dir, cfg.Chroot, err)
		}
	}
	if cfg.SetUser {
		groups := make([]int, len(cfg.Groups))
		for i, g := range cfg.Groups {
			groups[i] = int(g)
		}
		// Order matters: groups and gid need the privilege uid gives up.
		if err := syscall.Setgroups(groups); err != nil {
			return fail(126, "setgroups: %v", err)
		}
		if err := syscall.Setgid(int(cfg.GID)); err != nil {
			return fail(126, "setgid %d: %v", cfg.GID, err)
		}
		if err := syscall.Setuid(int(cfg.UID)); err != nil {
			return fail(126, "setuid %d: %v", cfg.UID, err)
		}
	}
	// The last privileged step is done: from here on, no setuid or
	// file-capability program the task runs gives it more than it has.
	// The bit belongs to the thread, and the new program inherits it from
	// the thread that execs it, so both happen on this one.
	goruntime.LockOSThread()
	if err := setNoNewPrivs(); err != nil {
		return fail(126, "%v", err)
	}
	// PATH is the task's (the shim runs in the task's environment), the
	// lookup happens inside the root, and the executable check uses the
	// task's credentials.
	path, err := exec.LookPath(argv[0])
	if err != nil && !errors.Is(err, exec.ErrDot) {
		return fail(127, "%v", err)
	}
	if errors.Is(err, exec.ErrDot) {
		path = argv[0]
	}
	err = syscall.Exec(path, argv, os.Environ())
	return fail(126, "exec %s: %v", path, err)
}
