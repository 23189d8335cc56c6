package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
)

// kubeletConfig is a KubeletConfiguration for this host. Notes:
//   - cgroupDriver cgroupfs and failCgroupV1 false: cgroup v1 hosts, no systemd.
//   - cgroupRoot: the pods' cgroups live under a root of our own, which
//     teardown removes, never under anyone else's.
//   - authentication by client certificate (the cluster CA) and bearer
//     tokens checked with the apiserver (webhook); authorization by
//     SubjectAccessReview: no anonymous access, and `kubectl logs` works
//     for the apiserver's kubelet client certificate.
//   - eviction and image GC thresholds low: a busy build disk must not
//     evict the pods under test or the pause image.
//   - podLogsDir and volumePluginDir under the data dir; /var/log/containers
//     is fixed in the kubelet and is removed at teardown if it is new.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %[1]s
port: %[2]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[3]d
tlsCertFile: %[4]q
tlsPrivateKeyFile: %[5]q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %[6]q
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupRoot: %[7]q
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://%[8]s
podLogsDir: %[9]q
volumePluginDir: %[10]q
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
  imagefs.inodesFree: 1%%
`

type kubeletSetup struct {
	rootDir, config, kubeconfig, logDir string
	port, healthzPort                   int
	nodeIP                              net.IP
}

func writeKubeletFiles(o *Options, k *kubeletSetup, pk *nodePKI, server string) error {
	if err := os.MkdirAll(k.rootDir, 0o750); err != nil {
		return err
	}
	// Client certificate: user system:node:<name> in group system:nodes,
	// what the Node authorizer expects of a kubelet.
	ccert, ckey, err := pk.clientCert("kubelet-client", "system:node:"+o.NodeName, "system:nodes")
	if err != nil {
		return err
	}
	scert, skey, err := pk.servingCert("kubelet-serving", []net.IP{k.nodeIP, net.IPv4(127, 0, 0, 1)}, []string{o.NodeName, "localhost"})
	if err != nil {
		return err
	}
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: kubelet
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: local
  context: {cluster: local, user: kubelet}
current-context: local
`, server, pk.caPath, ccert, ckey)
	if err := os.WriteFile(k.kubeconfig, []byte(kc), 0o600); err != nil {
		return err
	}
	cd := newContainerdPaths(o.DataDir)
	cfg := fmt.Sprintf(kubeletConfig, k.nodeIP, k.port, k.healthzPort, scert, skey, pk.caPath,
		"/"+kubeletCgroupRoot, cd.socket,
		filepath.Join(o.DataDir, "pod-logs"), filepath.Join(k.rootDir, "volume-plugins"))
	return os.WriteFile(k.config, []byte(cfg), 0o644)
}

func kubeletArgs(o *Options, k *kubeletSetup) []string {
	return []string{
		"--config=" + k.config,
		"--kubeconfig=" + k.kubeconfig,
		"--root-dir=" + k.rootDir,
		"--cert-dir=" + filepath.Join(k.rootDir, "pki"),
		"--hostname-override=" + o.NodeName,
		"--node-ip=" + k.nodeIP.String(),
		"--v=" + strconv.Itoa(1),
	}
}
