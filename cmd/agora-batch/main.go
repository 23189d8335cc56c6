// Command agora-batch runs shell commands as Agora tasks, like mesos-execute
// for many commands, prints a summary and exits nonzero if any failed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/agora-sched/agora/examples/batch"
	"github.com/agora-sched/agora/pkg/sdk"
)

func main() {
	var (
		cfg        sdk.Config
		o          batch.Options
		cpus, mem  string
		role       string
		repeat     int
		noTeardown bool
	)
	flag.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	flag.StringVar(&cfg.Namespace, "namespace", "", "namespace of the framework (default: the kubeconfig's)")
	flag.StringVar(&cfg.Name, "framework", "", "framework name (default: agora-batch-<random>, torn down at the end)")
	flag.StringVar(&role, "role", "", "role to subscribe to (default *)")
	flag.StringVar(&cpus, "cpus", "0.1", "cpus per task")
	flag.StringVar(&mem, "mem", "32Mi", "memory per task")
	flag.IntVar(&repeat, "repeat", 1, "run each command this many times")
	flag.IntVar(&o.Retries, "retries", 2, "relaunches of a task whose offer went away before it started")
	flag.BoolVar(&o.Keep, "keep", false, "keep the ended Task objects")
	flag.BoolVar(&noTeardown, "no-teardown", false, "keep the framework registered at the end")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: agora-batch [flags] COMMAND...\n\nRuns each shell COMMAND as a task and prints a summary.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// The SDK's informers log through controller-runtime; send that to klog
	// (stderr) instead of a "logger was never set" warning.
	ctrllog.SetLogger(klog.NewKlogr())
	if err := checkArgs(flag.NArg(), repeat, o.Retries); err != nil {
		fmt.Fprintln(os.Stderr, "agora-batch:", err)
		flag.Usage()
		os.Exit(2)
	}
	res, err := sdk.ParseResources(cpus, mem)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora-batch:", err)
		os.Exit(2)
	}
	o.Resources = res
	for range repeat {
		o.Commands = append(o.Commands, flag.Args()...)
	}
	if role != "" {
		cfg.Roles = []string{role}
	}
	// A framework named for this run alone is torn down when it ends.
	o.Teardown = cfg.Name == "" && !noTeardown
	if cfg.Name == "" {
		cfg.Name = "agora-batch-" + batch.RandomID()
	}
	o.Out = os.Stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	summary, err := batch.Run(ctx, cfg, o)
	summary.Print(os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora-batch:", err)
		os.Exit(1)
	}
	if summary.Failed() > 0 {
		os.Exit(1)
	}
}

// checkArgs says what is wrong with the command line; the usage alone left
// the user to guess which argument it was about.
func checkArgs(commands, repeat, retries int) error {
	switch {
	case commands == 0:
		return errors.New("give at least one COMMAND to run")
	case repeat < 1:
		return fmt.Errorf("--repeat must be 1 or more, got %d", repeat)
	case retries < 0:
		return fmt.Errorf("--retries must not be negative, got %d", retries)
	}
	return nil
}
