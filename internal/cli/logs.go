package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/sdk"
)

type logsOptions struct {
	namespace  string
	kubeconfig string
	stderr     bool
	follow     bool
	poll       time.Duration
}

func newLogsCommand() *cobra.Command {
	o := &logsOptions{poll: 500 * time.Millisecond}
	cmd := &cobra.Command{
		Use:   "logs TASK",
		Short: "Print a task's stdout (or stderr) from its sandbox",
		Long: `logs prints the stdout, or with --stderr the stderr, that a task wrote in its
sandbox (Task.status.sandbox). With -f it keeps printing new output until
the task ends.

The sandbox is read directly, so this works on the agent's own host (agora
local, or a shell on the node). Other hosts' sandboxes are not reachable yet:
see "Task logs" in docs/sdk.md.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("agora logs needs exactly one task name, got %d: agora logs TASK [-n NAMESPACE] [--stderr] [-f]", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogs(cmd.Context(), o, args[0], cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVarP(&o.namespace, "namespace", "n", "", "namespace of the task (default: the kubeconfig's)")
	cmd.Flags().StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	cmd.Flags().BoolVar(&o.stderr, "stderr", false, "print stderr instead of stdout")
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new output until the task ends")
	return cmd
}

func runLogs(ctx context.Context, o *logsOptions, name string, out io.Writer) error {
	rc, ns, err := sdk.LoadRESTConfig(o.kubeconfig)
	if err != nil {
		return err
	}
	if o.namespace != "" {
		ns = o.namespace
	}
	c, err := client.New(rc, client.Options{Scheme: sdk.Scheme()})
	if err != nil {
		return err
	}
	get := func() (*agorav1.Task, error) {
		t := &agorav1.Task{}
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, t)
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("agora logs: no task %q in namespace %q", name, ns)
		}
		return t, err
	}
	t, err := get()
	if err != nil {
		return err
	}
	path, err := logPath(t, o.stderr)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("agora logs: task %s ran on agent %s; its sandbox %s is not on this host. "+
			"Reading logs from other hosts is not supported yet: run agora logs on that node", name, t.Spec.AgentName, t.Status.Sandbox)
	}
	if err != nil {
		return fmt.Errorf("agora logs: %w", err)
	}
	defer f.Close()
	if !o.follow {
		_, err = io.Copy(out, f)
		return err
	}
	return follow(ctx, f, out, o.poll, func() (bool, error) {
		t, err := get()
		if err != nil {
			return false, err
		}
		return sdk.IsTerminal(t.Status.State), nil
	})
}

// logPath is the sandbox file to read, or an error saying why there is none.
func logPath(t *agorav1.Task, stderr bool) (string, error) {
	sb := t.Status.Sandbox
	switch {
	case sb == "":
		state := string(t.Status.State)
		if state == "" {
			state = "not bound yet"
		}
		return "", fmt.Errorf("agora logs: task %s has no sandbox yet (%s): it has not started", t.Name, state)
	case strings.Contains(sb, "://"):
		return "", fmt.Errorf("agora logs: task %s has no log files: its sandbox is %s (a simulated agent?)", t.Name, sb)
	case !filepath.IsAbs(sb):
		return "", fmt.Errorf("agora logs: task %s has an unexpected sandbox %q", t.Name, sb)
	}
	file := "stdout"
	if stderr {
		file = "stderr"
	}
	return filepath.Join(sb, file), nil
}

// follow copies what f has, then polls for more until ended reports the
// task ended (after one last copy) or ctx ends.
func follow(ctx context.Context, f io.Reader, out io.Writer, poll time.Duration, ended func() (bool, error)) error {
	for {
		if _, err := io.Copy(out, f); err != nil {
			return err
		}
		done, err := ended()
		if err != nil {
			return err
		}
		if done {
			_, err := io.Copy(out, f) // what it wrote before it ended
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}
