// Package cli holds the cobra commands of the agora command-line tool.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/agora-sched/agora/pkg/sdk"
)

// Execute runs the agora command and returns the process exit code.
func Execute() int {
	// The SDK's informers log through controller-runtime; route that to klog.
	ctrllog.SetLogger(klog.NewKlogr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := NewRootCommand()
	if err := root.ExecuteContext(ctx); err != nil {
		var ec exitCodeError
		if asExitCode(err, &ec) {
			return ec.code
		}
		fmt.Fprintln(os.Stderr, "Error:", err)
		if h := errorHint(err); h != "" {
			fmt.Fprintln(os.Stderr, h)
		}
		return 1
	}
	return 0
}

// errorHint says what to do about errors whose fix lies outside the
// command line that was given, or "".
func errorHint(err error) string {
	if errors.Is(err, sdk.ErrNoKubeconfig) {
		return "Pass --kubeconfig FILE or set KUBECONFIG; for agora local (make run) that is\n  export KUBECONFIG=$PWD/.agora-local/admin.kubeconfig"
	}
	return ""
}

// NewRootCommand builds the command tree.
func NewRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "agora",
		Short:         "Agora: Mesos' two-level scheduling on Kubernetes",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newLocalCommand())
	root.AddCommand(newRunCommand())
	root.AddCommand(newTopCommand())
	root.AddCommand(newLogsCommand())
	return root
}

// exitCodeError makes the process exit with a given code (agora run exits
// with its task's exit code).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func asExitCode(err error, target *exitCodeError) bool {
	ec, ok := err.(exitCodeError)
	if ok {
		*target = ec
	}
	return ok
}
