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

// startChild runs bin with args and env additions in logDir, logging to
// logDir/<name>.log: a process the benchmark runs and measures through
// /proc. It dies with the benchmark (Pdeathsig).
func startChild(name, bin string, args, env []string, logDir string) (*localcluster.Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return localcluster.StartProc(cmd, name, logDir, true)
}

// freeAddr returns 127.0.0.1:<a free port>.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
