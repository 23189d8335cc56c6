package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/agora-sched/agora/pkg/install"
	"github.com/agora-sched/agora/pkg/localcluster"
)

type localOptions struct {
	agents    int
	demo      bool
	dataDir   string
	simulated bool
	binDir    string
	port      int
}

func newLocalCommand() *cobra.Command {
	o := &localOptions{}
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run Agora on this machine: a local control plane, the master, agents and optionally a demo",
		Long: `local starts etcd, kube-apiserver and kube-controller-manager built from
source, installs Agora's CRDs, and runs the master and agents on this host.
It writes a kubeconfig and stays up until Ctrl-C, then stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLocal(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().IntVar(&o.agents, "agents", 1, "number of agents to run on this host")
	cmd.Flags().BoolVar(&o.demo, "demo", false, "also run two example frameworks sharing the cluster")
	cmd.Flags().BoolVar(&o.simulated, "simulated", false, "run simulated agents (no cgroups, no root needed) instead of real ones")
	cmd.Flags().StringVar(&o.dataDir, "data-dir", ".agora-local", "directory for the control plane's data, certificates, kubeconfig and logs")
	cmd.Flags().StringVar(&o.binDir, "bin-dir", "", "directory with etcd, kube-apiserver and kube-controller-manager (default: build them with hack/build-bins.sh from the repository)")
	cmd.Flags().IntVar(&o.port, "port", 0, "kube-apiserver port on 127.0.0.1 (0 picks a free one)")
	return cmd
}

func runLocal(ctx context.Context, o *localOptions, out, progress io.Writer) error {
	if o.agents < 0 {
		return fmt.Errorf("--agents must be 0 or more, got %d", o.agents)
	}
	if o.port < 0 || o.port > 65535 {
		return fmt.Errorf("--port must be between 1 and 65535, or 0 to pick a free one; got %d", o.port)
	}
	step := func(format string, args ...any) { fmt.Fprintf(progress, "agora local: "+format+"\n", args...) }
	binDir := o.binDir
	if binDir == "" {
		root, err := findRepoRoot()
		if err != nil {
			return err
		}
		step("building the control plane if needed (the first time takes 10-15 minutes)...")
		if binDir, err = localcluster.EnsureBins(ctx, root, progress, "etcd", "kube-apiserver", "kube-controller-manager", "kubectl"); err != nil {
			return err
		}
	}
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	step("starting etcd, kube-apiserver and kube-controller-manager...")
	cluster, err := localcluster.Start(ctx, localcluster.Options{BinDir: binDir, DataDir: dataDir, APIServerPort: o.port, Log: prefixWriter(progress, "agora local: ")})
	if errors.Is(err, localcluster.ErrDataDirInUse) {
		return fmt.Errorf("%w\nanother agora local (or make run) is using it: stop that one with Ctrl-C, or give this one another --data-dir", err)
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			step("stopping the control plane: %v", err)
		}
	}()
	cfg := cluster.RESTConfig()
	crds, err := install.CRDs(ctx, cfg)
	if err != nil {
		return err
	}
	// The tenant onboarding of docs/install.md binds frameworks to it.
	if err := install.FrameworkRole(ctx, cfg); err != nil {
		return err
	}
	step("installed %d CRDs and ClusterRole %s", len(crds), install.FrameworkRoleName)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := ensureNamespace(ctx, cs, "agora-system"); err != nil {
		return err
	}
	comps, err := startLocalComponents(ctx, o, cluster, dataDir, step)
	if err != nil {
		return err
	}
	defer func() { step("stopping..."); comps.stop(step) }()
	exited := comps.watch()
	if err := waitLocalReady(ctx, cluster.RESTConfig(), o, step, exited, filepath.Join(dataDir, "logs")); err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C while starting: a normal stop
		}
		return err
	}

	kubectl := filepath.Join(binDir, "kubectl")
	fmt.Fprintf(out, "\nAgora is ready: %d agent(s)%s.\n\n  export KUBECONFIG=%s\n  %s get crd\n  %s get agora -A\n  %s explain task.spec.resources\n  bin/agora top\n\nPress Ctrl-C to stop.\n",
		o.agents, demoNote(o.demo), cluster.Kubeconfig(), kubectl, kubectl, kubectl)
	select {
	case <-ctx.Done():
		return nil
	case <-cluster.Done():
		return errors.New("the control plane stopped unexpectedly; see the logs under " + filepath.Join(dataDir, "logs"))
	case err := <-exited:
		return err
	}
}

func ensureNamespace(ctx context.Context, cs kubernetes.Interface, name string) error {
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}

// findRepoRoot walks up from the working directory to the checkout that
// holds hack/build-bins.sh.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "build-bins.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside an Agora checkout: pass --bin-dir with the control-plane binaries, or run from the repository")
		}
		dir = parent
	}
}

type prefixedWriter struct {
	w      io.Writer
	prefix string
}

func (p prefixedWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "%s%s", p.prefix, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func prefixWriter(w io.Writer, prefix string) io.Writer { return prefixedWriter{w: w, prefix: prefix} }

func demoNote(demo bool) string {
	if demo {
		return " and the demo frameworks web and analytics in namespace demo"
	}
	return ""
}
