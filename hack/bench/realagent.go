package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/kubernetes"

	"github.com/agora-sched/agora/pkg/localcluster"
)

// realAgentName is the node name of the one real agent a run adds.
const realAgentName = "bench-real"

// startRealAgent runs one real agora-agent on this host beside the
// simulated ones: real cgroups and processes, offering what a simulated
// agent offers, so that a real agent's RSS is measured in the same run as
// a simulated one's. It takes its share of the tasks like any agent. It
// needs root (cgroups, per-framework uids); without it the run goes on
// without, and says so.
func startRealAgent(ctx context.Context, cs kubernetes.Interface, c *config, kubeconfig, binDir, dir string) (*localcluster.Proc, string, error) {
	if os.Geteuid() != 0 {
		return nil, "no real agent: it needs root for its cgroups", nil
	}
	base := filepath.Join(dir, "real-agent")
	logAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	ch, err := startChild("real-agent", filepath.Join(binDir, "agora-agent"), []string{
		"--kubeconfig", kubeconfig, "--node-name", realAgentName, "--namespace", agentNamespace,
		"--work-dir", filepath.Join(base, "work"), "--checkpoint-dir", filepath.Join(base, "checkpoints"),
		"--cgroup-root", "agora-bench", "--resources", "cpus:8;mem:16Gi;disk:100Gi",
		"--renew-interval", c.leaseRenew.String(), "--log-bind-address", logAddr,
	}, nil, filepath.Join(dir, "logs"))
	if err != nil {
		return nil, "", err
	}
	if err := waitAgents(ctx, cs, c.agents+1, ch); err != nil {
		ch.Terminate(0)
		return nil, "", fmt.Errorf("real agent: %w", err)
	}
	return ch, "", nil
}
