package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerd's own directories, all under <data-dir>/containerd.
type containerdPaths struct {
	dir, root, state, runcRoot, socket, config, cniConf, cniIPAM string
}

func newContainerdPaths(dataDir string) containerdPaths {
	d := filepath.Join(dataDir, "containerd")
	return containerdPaths{
		dir:      d,
		root:     filepath.Join(d, "root"),
		state:    filepath.Join(d, "state"),
		runcRoot: filepath.Join(d, "runc"),
		socket:   filepath.Join(d, "c.sock"), // unix socket paths are limited to 107 bytes
		config:   filepath.Join(d, "config.toml"),
		cniConf:  filepath.Join(dataDir, "cni", "net.d"),
		cniIPAM:  filepath.Join(dataDir, "cni", "ipam"),
	}
}

// containerdConfig is containerd 1.6's config (version 2). Notes:
//   - restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and runc
//     fails every start when asked to lower a process's oom_score_adj.
//   - netns_mounts_under_state_dir keeps pod network namespaces out of
//     /run/netns.
//   - The opt plugin would create /opt/containerd; nothing needs it.
//   - runc's root (its container state) goes under the data dir too.
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[5]q
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = %[6]q
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[7]q
    max_conf_num = 1
`

// cniConflist: a bridge with host-local addresses, loopback, and portmap
// for hostPorts. No masquerading: pods only need the host (the apiserver
// proxy on the service IP), and it would add iptables rules per pod.
func cniConflist(bridge, podCIDR, ipamDir string) ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "0.4.0",
		"name":       "agora-localnode",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false, "hairpinMode": true,
				"ipam": map[string]any{
					"type": "host-local", "dataDir": ipamDir,
					"ranges": []any{[]any{map[string]any{"subnet": podCIDR}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

func writeContainerdConfig(p containerdPaths, o *Options) error {
	for _, d := range []string{p.dir, p.cniConf, p.cniIPAM} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(containerdConfig, p.root, p.state, p.socket, p.socket+".ttrpc", pauseImage, p.runcRoot, p.cniConf)
	if err := os.WriteFile(p.config, []byte(cfg), 0o644); err != nil {
		return err
	}
	conf, err := cniConflist(o.Bridge, o.PodCIDR, p.cniIPAM)
	if err != nil {
		return err
	}
	// The loopback plugin is run by containerd itself for every sandbox.
	return os.WriteFile(filepath.Join(p.cniConf, "10-agora-localnode.conflist"), conf, 0o644)
}

func dialCRI(ctx context.Context, socket string) (cri.RuntimeServiceClient, func(), error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return cri.NewRuntimeServiceClient(conn), func() { conn.Close() }, nil
}

// waitCRI waits until containerd's CRI answers Status with the runtime ready.
func waitCRI(ctx context.Context, socket string, d *proc) error {
	rs, closeConn, err := dialCRI(ctx, socket)
	if err != nil {
		return err
	}
	defer closeConn()
	deadline := time.Now().Add(time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := rs.Status(cctx, &cri.StatusRequest{})
		cancel()
		if err == nil && st.Status != nil {
			for _, c := range st.Status.Conditions {
				if c.Type == cri.RuntimeReady && c.Status {
					return nil
				}
			}
		}
		if d != nil && d.Exited() {
			return fmt.Errorf("containerd exited: %v (see %s)", d.WaitErr(), d.LogPath)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd's CRI not ready after 1m: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeAllPods stops and removes every pod sandbox through the CRI, which
// kills their containers and runs CNI DEL (releasing addresses and any
// portmap rules) the way the kubelet would.
func removeAllPods(ctx context.Context, socket string) error {
	rs, closeConn, err := dialCRI(ctx, socket)
	if err != nil {
		return err
	}
	defer closeConn()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pods, err := rs.ListPodSandbox(cctx, &cri.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("CRI ListPodSandbox: %w", err)
	}
	var last error
	for _, p := range pods.Items {
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		if _, err := rs.StopPodSandbox(sctx, &cri.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			last = fmt.Errorf("stopping pod %s/%s: %w", p.Metadata.GetNamespace(), p.Metadata.GetName(), err)
		}
		if _, err := rs.RemovePodSandbox(sctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			last = fmt.Errorf("removing pod %s/%s: %w", p.Metadata.GetNamespace(), p.Metadata.GetName(), err)
		}
		scancel()
	}
	logf("removed %d pod sandboxes through the CRI", len(pods.Items))
	return last
}
