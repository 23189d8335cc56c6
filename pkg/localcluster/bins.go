package localcluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// DefaultBins are the binaries FindBinDir makes sure of: everything Start
// can run.
var DefaultBins = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// FindBinDir returns the directory holding DefaultBins for the Kubernetes
// version the repository pins, building any that are missing with
// hack/build-bins.sh (10-20 minutes the first time on 2 cores). The script's
// progress goes to stderr; see EnsureBins to choose the writer.
func FindBinDir(repoRoot string) (string, error) {
	return EnsureBins(context.Background(), repoRoot, os.Stderr)
}

// EnsureBins is FindBinDir with a context, a progress writer and an explicit
// list of binaries (DefaultBins if none). Concurrent callers on one machine,
// such as several test packages under `go test ./...`, take turns through a
// lock file, so each binary is built once.
func EnsureBins(ctx context.Context, repoRoot string, progress io.Writer, bins ...string) (string, error) {
	if len(bins) == 0 {
		bins = DefaultBins
	}
	if progress == nil {
		progress = io.Discard
	}
	script := filepath.Join(repoRoot, "hack", "build-bins.sh")
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("localcluster: %w (is %q the repository root?)", err, repoRoot)
	}
	unlock, err := lockBuild(ctx, filepath.Join(repoRoot, "bin"), progress)
	if err != nil {
		return "", err
	}
	defer unlock()

	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, bins...)...)
	cmd.Dir = repoRoot
	cmd.Stdout = &stdout
	// Keep stderr too, so that a failure explains itself to callers that
	// discard progress.
	cmd.Stderr = io.MultiWriter(progress, &stderr)
	// Cancelling must stop the go build processes too, not only bash.
	cmd.SysProcAttr = childSysProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("localcluster: hack/build-bins.sh %s: %w\n%s", strings.Join(bins, " "), err, lastLines(stderr.String(), logTailLines))
	}
	// The script prints the directory as its last stdout line.
	out := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	dir := strings.TrimSpace(out[len(out)-1])
	for _, b := range bins {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("localcluster: hack/build-bins.sh did not produce %s: %w", b, err)
		}
	}
	return dir, nil
}

// lockBuild takes an exclusive lock on dir/.build-bins.lock, polling so
// that ctx can interrupt the wait.
func lockBuild(ctx context.Context, dir string, progress io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, ".build-bins.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for waited := false; ; waited = true {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing releases the lock
		}
		if err != syscall.EWOULDBLOCK {
			f.Close()
			return nil, fmt.Errorf("localcluster: locking %s: %w", f.Name(), err)
		}
		if !waited {
			fmt.Fprintln(progress, "localcluster: waiting for another build of the control-plane binaries")
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
