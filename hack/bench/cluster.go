package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/agora-sched/agora/pkg/localcluster"
)

// repoRoot is the directory holding go.mod, searched from the working
// directory upwards (make runs the benchmark from the repository root).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory: run from the repository")
		}
		dir = parent
	}
}

// buildBinaries builds the master and agent into dir the way `make build`
// does, so the benchmark measures the shipped binaries.
func buildBinaries(ctx context.Context, root, dir string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", dir+string(filepath.Separator),
		"./cmd/agora-master", "./cmd/agora-agent")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// child is a process the benchmark runs and measures through /proc.
type child struct{ *localcluster.Proc }

// startChild runs bin with args and env additions in logDir, logging to
// logDir/<name>.log. It dies with the benchmark (Pdeathsig).
func startChild(name, bin string, args, env []string, logDir string) (*child, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p, err := localcluster.StartProc(cmd, name, logDir, true)
	if err != nil {
		return nil, err
	}
	return &child{p}, nil
}

func (c *child) pid() int { return c.Cmd.Process.Pid }

func (c *child) alive() bool { return !c.Exited() }

// stop sends SIGTERM, then SIGKILL after timeout, to the child's group.
func (c *child) stop(timeout time.Duration) { c.Terminate(timeout) }

// freeAddr returns 127.0.0.1:<a free port>.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
