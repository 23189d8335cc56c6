// Command localnode runs a real single-node Kubernetes on this host: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler (through
// pkg/localcluster), containerd (the Debian package, with its own config,
// root, state and socket under the data dir) and kubelet, with Agora's image
// and a pause image built as OCI tarballs from static Go binaries and
// imported into containerd. It restores the host when it stops.
//
//	localnode up   --data-dir DIR           bring the node up; tear down on SIGINT/SIGTERM
//	localnode run  --data-dir DIR -- CMD..  bring it up, run CMD, tear down, exit with CMD's code
//	localnode down --data-dir DIR           tear down what a killed run left behind
//
// CMD gets KUBECONFIG (admin), AGORA_E2E_NODE (the node name),
// AGORA_E2E_IMAGE (Agora's image reference), AGORA_E2E_KUBECTL and
// AGORA_E2E_WORK_DIR (the agent's work dir on the host). See docs/e2e.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet("localnode "+cmd, flag.ExitOnError)
	var o Options
	fs.StringVar(&o.DataDir, "data-dir", "", "directory for all state (required; short: unix socket paths live in it)")
	fs.StringVar(&o.RepoRoot, "repo", "", "Agora repository root (default: found from the working directory)")
	fs.StringVar(&o.NodeName, "node-name", "agora-e2e", "name of the Node")
	fs.StringVar(&o.PodCIDR, "pod-cidr", "10.88.0.0/16", "pod network (must not overlap the host's addresses or routes)")
	fs.StringVar(&o.Bridge, "bridge", "agora-e2e0", "name of the CNI bridge")
	fs.StringVar(&o.Image, "image", "agora.local/agora:e2e", "reference of Agora's image built from ./cmd/...")
	fs.StringVar(&o.AgentWorkDir, "agent-work-dir", "/var/lib/agora", "the agent DaemonSet's work dir on the host (removed at teardown if this run created it)")
	fs.StringVar(&o.AgentCgroupRoot, "agent-cgroup-root", "agora", "the agent's --cgroup-root; <root>/<node> is removed at teardown")
	fs.BoolVar(&o.SkipImages, "skip-images", false, "do not build and import the images")
	_ = fs.Parse(os.Args[2:])
	if o.DataDir == "" {
		fmt.Fprintln(os.Stderr, "localnode: --data-dir is required")
		os.Exit(2)
	}
	if err := o.complete(); err != nil {
		fmt.Fprintln(os.Stderr, "localnode:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "up":
		os.Exit(up(ctx, &o, nil))
	case "run":
		if fs.NArg() == 0 {
			fmt.Fprintln(os.Stderr, "localnode run: no command given")
			os.Exit(2)
		}
		os.Exit(up(ctx, &o, fs.Args()))
	case "down":
		if err := Teardown(nil, &o); err != nil {
			logf("teardown: %v", err)
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: localnode up|run|down --data-dir DIR [flags] [-- CMD...]")
	os.Exit(2)
}

// up brings the node up, then waits for a signal (cmd nil) or runs cmd,
// and always tears down. It returns the process exit code.
func up(ctx context.Context, o *Options, cmd []string) int {
	n, err := Start(ctx, o)
	if err != nil {
		logf("bring-up failed: %v", err)
		if terr := Teardown(n, o); terr != nil {
			logf("teardown: %v", terr)
		}
		return 1
	}
	code := 0
	if cmd == nil {
		logf("node %s is up; KUBECONFIG=%s; Ctrl-C tears it down", o.NodeName, n.Kubeconfig())
		select {
		case <-ctx.Done():
		case <-n.Died():
			logf("a component died: %v", n.Err())
			code = 1
		}
	} else {
		code = runCommand(ctx, n, o, cmd)
	}
	if err := Teardown(n, o); err != nil {
		logf("teardown: %v", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func runCommand(ctx context.Context, n *Node, o *Options, argv []string) int {
	logf("running %s", strings.Join(argv, " "))
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	c.Env = append(os.Environ(),
		"KUBECONFIG="+n.Kubeconfig(),
		"AGORA_E2E_NODE="+o.NodeName,
		"AGORA_E2E_IMAGE="+o.Image,
		"AGORA_E2E_KUBECTL="+filepath.Join(n.binDir, "kubectl"),
		"AGORA_E2E_WORK_DIR="+o.AgentWorkDir,
	)
	// Own process group: a Ctrl-C is ours to forward, after which we still
	// tear down.
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		logf("%v", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		logf("interrupted: stopping the command")
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			err = <-done
		}
	case <-n.Died():
		logf("a component died while the command ran: %v", n.Err())
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		<-done
		return 1
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		logf("command succeeded")
		return 0
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		logf("command failed: %v", err)
		return ee.ExitCode()
	default:
		logf("command failed: %v", err)
		return 1
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s localnode: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
