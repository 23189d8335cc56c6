// Command agora-service keeps K instances of a command running on Agora,
// like Marathon, until interrupted; the instances keep running after it
// exits and are adopted when it starts again.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/agora-sched/agora/examples/service"
	"github.com/agora-sched/agora/pkg/sdk"
)

func main() {
	var (
		cfg       sdk.Config
		o         service.Options
		cpus, mem string
		role      string
	)
	flag.StringVar(&cfg.Kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	flag.StringVar(&cfg.Namespace, "namespace", "", "namespace of the framework (default: the kubeconfig's)")
	flag.StringVar(&cfg.Name, "framework", "agora-service", "framework name")
	flag.StringVar(&role, "role", "", "role to subscribe to (default *)")
	flag.IntVar(&o.Instances, "instances", 1, "instances to keep running")
	flag.StringVar(&cpus, "cpus", "0.1", "cpus per instance")
	flag.StringVar(&mem, "mem", "32Mi", "memory per instance")
	flag.IntVar(&o.Ports, "ports", 0, "ports per instance (passed as PORT0, PORT1, ...)")
	flag.StringVar(&o.SpreadBy, "spread-by", "hostname", "agent attribute to spread instances over")
	flag.IntVar(&o.MaxPerValue, "max-per-value", 0, "most instances per value of --spread-by (0: no cap, spread evenly)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: agora-service [flags] COMMAND\n\nKeeps --instances copies of the shell COMMAND running.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// The SDK's informers log through controller-runtime; send that to klog
	// (stderr) instead of a "logger was never set" warning.
	ctrllog.SetLogger(klog.NewKlogr())
	if err := checkArgs(flag.NArg(), o.Instances, o.Ports, o.MaxPerValue); err != nil {
		fmt.Fprintln(os.Stderr, "agora-service:", err)
		flag.Usage()
		os.Exit(2)
	}
	res, err := sdk.ParseResources(cpus, mem)
	if err != nil {
		fmt.Fprintln(os.Stderr, "agora-service:", err)
		os.Exit(2)
	}
	o.Resources = res
	o.Command = sdk.Shell(strings.Join(flag.Args(), " "))
	if role != "" {
		cfg.Roles = []string{role}
	}
	o.Out = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Run(ctx, cfg, o); err != nil {
		fmt.Fprintln(os.Stderr, "agora-service:", err)
		os.Exit(1)
	}
}

// checkArgs says what is wrong with the command line; the usage alone left
// the user to guess which argument it was about.
func checkArgs(args, instances, ports, maxPerValue int) error {
	switch {
	case args == 0:
		return errors.New("give the COMMAND to keep running")
	case instances < 0:
		return fmt.Errorf("--instances must not be negative, got %d", instances)
	case ports < 0:
		return fmt.Errorf("--ports must not be negative, got %d", ports)
	case maxPerValue < 0:
		return fmt.Errorf("--max-per-value must not be negative (0: no cap), got %d", maxPerValue)
	}
	return nil
}
