package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// logTailLines is how much of a component's log a startup error carries:
// enough to show the fatal line and what led to it.
const logTailLines = 20

// Proc is a child process whose output goes to a log file. The control
// plane's components, `agora local`'s children, the local node's daemons and
// the local test's binaries all start this way.
type Proc struct {
	Name    string
	LogPath string
	Cmd     *exec.Cmd

	// done is closed once the child has been reaped; err then holds the
	// result of cmd.Wait.
	done chan struct{}
	err  error
}

// StartProc starts cmd in logDir, appending its stdout and stderr to
// logDir/<name>.log, or truncating that first when fresh is set (so a
// failure's tail is this run's).
func StartProc(cmd *exec.Cmd, name, logDir string, fresh bool) (*Proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	flag := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if fresh {
		flag = os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	}
	f, err := os.OpenFile(logPath, flag, 0o644)
	if err != nil {
		return nil, err
	}
	// The command line heads the log so a failure can be reproduced by hand.
	fmt.Fprintf(f, "# %s %s\n", cmd.Args[0], strings.Join(cmd.Args[1:], " "))

	cmd.Dir = logDir // nothing the child writes lands in the caller's cwd
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group, so a stop signals everything the child may spawn
	// and a terminal's Ctrl-C reaches only us, letting us shut down in order.
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, LogPath: logPath, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Done is closed once the child has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WaitErr is cmd.Wait's result, once Done is closed.
func (p *Proc) WaitErr() error { return p.err }

// Pid is the child's process id, and its process group's.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited tells whether Done is closed.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Terminate sends SIGTERM to the child's process group, then SIGKILL after
// timeout, and returns once the child is reaped; it reports whether the
// SIGKILL was needed.
func (p *Proc) Terminate(timeout time.Duration) (killed bool) {
	if p.Exited() {
		return false
	}
	pgid := p.Pid() // Setpgid makes the child its group's leader
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return false
	case <-time.After(timeout):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
		return true
	}
}

// Tail returns the last n lines of the child's log.
func (p *Proc) Tail(n int) (string, error) {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "", err
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n"))), nil
}

// process is one control-plane component running as a child process.
type process struct {
	*Proc

	// stopping is set before we signal the child, so that its exit is not
	// reported as a crash.
	stopping atomic.Bool
}

// startProcess runs bin with args, logging to a fresh logDir/<name>.log.
func startProcess(name, bin string, args []string, logDir string) (*process, error) {
	p, err := StartProc(exec.Command(bin, args...), name, logDir, true)
	if err != nil {
		return nil, err
	}
	return &process{Proc: p}, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after timeout, and
// returns once the child is reaped and its group is empty.
func (p *process) stop(timeout time.Duration) {
	p.stopping.Store(true)
	pgid := p.Pid()
	p.Terminate(timeout)
	// None of the components fork, but if one ever leaves a child behind it
	// still holds the group id (Linux does not reuse it meanwhile): kill it.
	if syscall.Kill(-pgid, 0) == nil {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		for i := 0; i < 100 && syscall.Kill(-pgid, 0) == nil; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// exitError describes an exit we did not ask for.
func (p *process) exitError() error {
	return fmt.Errorf("%s exited: %v\n%s", p.Name, p.err, p.logTail())
}

// logTail formats the last lines of the component's log for an error.
func (p *process) logTail() string {
	tail, err := p.Tail(logTailLines)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.LogPath, err)
	}
	return fmt.Sprintf("last %d lines of %s:\n%s", strings.Count(tail, "\n")+1, p.LogPath, tail)
}

// portInUse tells whether the component died because a port we picked was
// taken between our probe and its bind, which is worth a retry.
func (p *process) portInUse() bool {
	data, _ := os.ReadFile(p.LogPath)
	return bytes.Contains(data, []byte("address already in use"))
}

// waitReady polls check until it succeeds, the process exits, ctx ends or
// timeout passes. Errors name the component and carry its log tail.
func (p *process) waitReady(parent context.Context, timeout time.Duration, what string, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		last = check(cctx)
		ccancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s failed to start: exited before %s: %v\n%s", p.Name, what, p.err, p.logTail())
		case <-ctx.Done():
			why := fmt.Sprintf("not %s after %v", what, timeout)
			if parent.Err() != nil {
				why = fmt.Sprintf("startup interrupted (%v) before %s", context.Cause(parent), what)
			}
			return fmt.Errorf("%s failed to start: %s (last check: %v)\n%s", p.Name, why, last, p.logTail())
		case <-tick.C:
		}
	}
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago. All listeners stay open until every port is chosen, so the kernel
// cannot hand out the same port twice; a component that still loses a race
// to another program is restarted with new ports (see startComponent).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// startComponent starts a component through start, which picks its ports
// and waits for readiness. When the component lost a port to another program
// between our probe and its bind, it is retried with new ports. A failed
// attempt's process is always stopped.
func startComponent(ctx context.Context, retryPortClash bool, start func() (*process, error)) (*process, error) {
	const attempts = 3
	for i := 1; ; i++ {
		p, err := start()
		if err == nil {
			return p, nil
		}
		retry := p != nil && retryPortClash && i < attempts && ctx.Err() == nil && p.portInUse()
		if p != nil {
			p.stop(5 * time.Second)
		}
		if !retry {
			return nil, err
		}
	}
}
