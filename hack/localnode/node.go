package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/agora-sched/agora/pkg/localcluster"
)

// kubeletCgroupRoot is the kubelet's cgroupRoot: kubepods lives below it.
const kubeletCgroupRoot = "agora-localnode"

// Options configure the node.
type Options struct {
	DataDir, RepoRoot, NodeName, PodCIDR, Bridge, Image string
	AgentWorkDir, AgentCgroupRoot                       string
	SkipImages                                          bool

	podNet *net.IPNet
}

func (o *Options) complete() error {
	var err error
	if o.DataDir, err = filepath.Abs(o.DataDir); err != nil {
		return err
	}
	if o.RepoRoot == "" {
		if o.RepoRoot, err = findRepoRoot(); err != nil {
			return err
		}
	}
	if o.RepoRoot, err = filepath.Abs(o.RepoRoot); err != nil {
		return err
	}
	if _, o.podNet, err = net.ParseCIDR(o.PodCIDR); err != nil {
		return fmt.Errorf("--pod-cidr: %w", err)
	}
	if len(o.Bridge) > 15 {
		return fmt.Errorf("--bridge %q: interface names have at most 15 characters", o.Bridge)
	}
	return nil
}

// findRepoRoot walks up from the working directory to Agora's go.mod.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/agora-sched/agora\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find Agora's repository root; pass --repo")
		}
		dir = parent
	}
}

// Node is a running single-node cluster.
type Node struct {
	o          *Options
	cluster    *localcluster.Cluster
	containerd *proc
	kubelet    *proc
	proxy      *serviceProxy
	binDir     string

	diedOnce sync.Once
	died     chan struct{}
	mu       sync.Mutex
	stopping bool
	err      error
}

// Kubeconfig is the admin kubeconfig.
func (n *Node) Kubeconfig() string { return n.cluster.Kubeconfig() }

// Died is closed when a component exits on its own.
func (n *Node) Died() <-chan struct{} { return n.died }

// Err says which component died.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.err
}

func (n *Node) watch(name string, done <-chan struct{}, why func() error) {
	<-done
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopping {
		return
	}
	n.err = fmt.Errorf("%s exited: %v", name, why())
	n.diedOnce.Do(func() { close(n.died) })
}

// Start brings the node up and returns once the Node is Ready. On error
// the returned Node (possibly nil) is what to hand to Teardown.
func Start(ctx context.Context, o *Options) (*Node, error) {
	begin := time.Now()
	if os.Geteuid() != 0 {
		return nil, errors.New("must run as root (containerd, kubelet, cgroups, network)")
	}
	for _, b := range []string{"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/usr/lib/cni/portmap"} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("%s missing: apt-get install -y containerd runc containernetworking-plugins iptables conntrack ethtool", b)
		}
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return nil, err
	}
	if _, err := os.Stat(statePath(o)); err == nil {
		logf("a previous run was not torn down: tearing it down first")
		if err := Teardown(nil, o); err != nil {
			return nil, fmt.Errorf("tearing down the previous run: %w", err)
		}
	}
	if err := checkNoOverlap(o.podNet, o.Bridge); err != nil {
		return nil, err
	}
	ip, err := nodeIP()
	if err != nil {
		return nil, err
	}
	logDir := filepath.Join(o.DataDir, "logs")
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}

	logf("building the control-plane binaries if missing")
	binDir, err := localcluster.EnsureBins(ctx, o.RepoRoot, os.Stderr,
		"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet")
	if err != nil {
		return nil, err
	}
	var agoraTar, pauseTar string
	if !o.SkipImages {
		logf("building images")
		if agoraTar, pauseTar, err = buildImages(o, filepath.Join(o.DataDir, "images")); err != nil {
			return nil, err
		}
	}

	// From here on the host changes: record it first.
	state, err := recordHost(o)
	if err != nil {
		return nil, fmt.Errorf("recording the host state: %w", err)
	}
	logf("host state recorded: sysctls %v, / propagation %s", state.Sysctls, state.RootPropagation)
	n := &Node{o: o, binDir: binDir, died: make(chan struct{})}

	clusterDir := filepath.Join(o.DataDir, "cluster")
	pk, err := loadOrCreateCA(filepath.Join(clusterDir, "pki"), filepath.Join(o.DataDir, "pki"))
	if err != nil {
		return n, err
	}
	// The apiserver's client certificate for the kubelet (logs, exec,
	// port-forward); RBAC gives the user system:kubelet-api-admin below.
	kcCert, kcKey, err := pk.clientCert("apiserver-kubelet-client", "kube-apiserver-kubelet-client")
	if err != nil {
		return n, err
	}
	cl, err := localcluster.Start(ctx, localcluster.Options{
		BinDir: binDir, DataDir: clusterDir, WithScheduler: true, Log: logWriter{},
		ExtraAPIServerFlags: []string{
			"--kubelet-client-certificate=" + kcCert,
			"--kubelet-client-key=" + kcKey,
			"--kubelet-certificate-authority=" + pk.caPath,
			"--kubelet-preferred-address-types=InternalIP,Hostname",
			"--enable-admission-plugins=NodeRestriction",
		},
	})
	if err != nil {
		return n, err
	}
	n.cluster = cl
	go n.watch("control plane", cl.Done(), cl.Wait)
	cs, err := kubernetes.NewForConfig(cl.RESTConfig())
	if err != nil {
		return n, err
	}
	if err := bindKubeletAPIAdmin(ctx, cs); err != nil {
		return n, err
	}
	if err := checkServiceIP(ctx, cs); err != nil {
		return n, err
	}

	// Host plumbing: a shared / (the agent's hostPath of / uses
	// HostToContainer propagation, which containerd allows only from a
	// shared or slave mount), the service IP and its proxy, cgroup roots.
	if state.RootPropagation == "private" {
		if err := setPropagation("/", "shared"); err != nil {
			return n, fmt.Errorf("making / a shared mount: %w", err)
		}
	}
	if !state.ServiceIPOnLo {
		if err := run("ip", "addr", "add", serviceIP.String()+"/32", "dev", "lo"); err != nil {
			return n, err
		}
	}
	if n.proxy, err = startServiceProxy(strings.TrimPrefix(cl.Endpoint(), "https://")); err != nil {
		return n, fmt.Errorf("service proxy: %w", err)
	}
	if err := makeCgroupRoot(kubeletCgroupRoot); err != nil {
		return n, err
	}

	cd := newContainerdPaths(o.DataDir)
	if err := writeContainerdConfig(cd, o); err != nil {
		return n, err
	}
	logf("starting containerd (socket %s)", cd.socket)
	if n.containerd, err = startProc("containerd", logDir, "/usr/bin/containerd", "--config", cd.config); err != nil {
		return n, err
	}
	go n.watch("containerd", n.containerd.Done(), func() error { return n.containerd.WaitErr() })
	if err := waitCRI(ctx, cd.socket, n.containerd); err != nil {
		return n, err
	}
	if !o.SkipImages {
		for _, t := range []string{pauseTar, agoraTar} {
			if err := importImage(cd.socket, t); err != nil {
				return n, err
			}
		}
		logf("imported %s and %s into containerd (namespace k8s.io)", pauseImage, o.Image)
	}

	ports, err := freePorts(ip, 2)
	if err != nil {
		return n, err
	}
	k := &kubeletSetup{
		rootDir: filepath.Join(o.DataDir, "kubelet"), config: filepath.Join(o.DataDir, "kubelet-config.yaml"),
		kubeconfig: filepath.Join(o.DataDir, "kubelet.kubeconfig"), logDir: logDir,
		port: ports[0], healthzPort: ports[1], nodeIP: ip,
	}
	if err := writeKubeletFiles(o, k, pk, cl.Endpoint()); err != nil {
		return n, err
	}
	logf("starting kubelet for node %s at %s:%d", o.NodeName, ip, k.port)
	if n.kubelet, err = startProc("kubelet", logDir, filepath.Join(binDir, "kubelet"), kubeletArgs(o, k)...); err != nil {
		return n, err
	}
	go n.watch("kubelet", n.kubelet.Done(), func() error { return n.kubelet.WaitErr() })
	if err := waitNodeReady(ctx, cs, o.NodeName, n); err != nil {
		return n, err
	}
	logf("node %s Ready in %v (kubelet log %s)", o.NodeName, time.Since(begin).Round(time.Second), n.kubelet.LogPath)
	return n, nil
}

type logWriter struct{}

func (logWriter) Write(b []byte) (int, error) {
	logf("%s", strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func freePorts(ip net.IP, count int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range count {
		l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

func bindKubeletAPIAdmin(ctx context.Context, cs kubernetes.Interface) error {
	crb := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "agora-localnode:kube-apiserver-kubelet-client"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "system:kubelet-api-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "kube-apiserver-kubelet-client"}},
	}
	_, err := cs.RbacV1().ClusterRoleBindings().Create(ctx, crb, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

func checkServiceIP(ctx context.Context, cs kubernetes.Interface) error {
	deadline := time.Now().Add(time.Minute)
	for {
		svc, err := cs.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
		if err == nil {
			if svc.Spec.ClusterIP != serviceIP.String() {
				return fmt.Errorf("the kubernetes Service has ClusterIP %s; localnode proxies %s", svc.Spec.ClusterIP, serviceIP)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the kubernetes Service: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// makeCgroupRoot creates /<name> in every hierarchy (the kubelet refuses a
// cgroupRoot that does not exist), with cpuset's cpus and mems copied from
// the root so that children can hold tasks.
func makeCgroupRoot(name string) error {
	for _, h := range cgroupHierarchies() {
		d := filepath.Join(h, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if b, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if cur, _ := os.ReadFile(filepath.Join(d, f)); strings.TrimSpace(string(cur)) == "" {
					if err := os.WriteFile(filepath.Join(d, f), b, 0o644); err != nil {
						return fmt.Errorf("%s: %w", filepath.Join(d, f), err)
					}
				}
			}
		}
	}
	return nil
}

func waitNodeReady(ctx context.Context, cs kubernetes.Interface, name string, n *Node) error {
	deadline := time.Now().Add(3 * time.Minute)
	last := "not registered"
	for {
		node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					if c.Status == corev1.ConditionTrue {
						return nil
					}
					last = c.Reason + ": " + c.Message
				}
			}
		}
		select {
		case <-n.died:
			return n.Err()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not Ready after 3m: %s (see %s)", name, last, n.kubelet.LogPath)
		}
	}
}

// Teardown stops everything and restores the host from the recorded state.
// n may be nil (`localnode down`, or a failed start): processes are then
// found by their command lines, which all name the data dir. It is
// idempotent and reports whatever is left over.
func Teardown(n *Node, o *Options) error {
	begin := time.Now()
	state, err := loadHostState(o)
	if errors.Is(err, os.ErrNotExist) {
		if n == nil || n.cluster == nil {
			logf("nothing recorded in %s: nothing to tear down", o.DataDir)
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("host state: %w", err)
	}
	logf("tearing down")
	if n != nil {
		n.mu.Lock()
		n.stopping = true
		n.mu.Unlock()
	}
	var errs []error
	note := func(what string, err error) {
		if err != nil {
			logf("teardown: %s: %v", what, err)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	cd := newContainerdPaths(o.DataDir)
	kubeletRoot := filepath.Join(o.DataDir, "kubelet")

	// 1. The kubelet first, so that it restarts nothing.
	if n != nil {
		n.kubelet.stop(20 * time.Second)
	}
	if left := killAndWait(pidsReferencing(kubeletRoot), 9, 10*time.Second); len(left) > 0 {
		note("kubelet", fmt.Errorf("processes %v survive SIGKILL", left))
	}

	// 2. Every pod through the CRI (containers killed, CNI DEL run). After a
	// crash containerd is started again for this.
	var d *proc
	if n != nil {
		d = n.containerd
	}
	if _, err := os.Stat(cd.config); err == nil {
		if d == nil || d.Exited() {
			if len(pidsReferencing(cd.config)) == 0 {
				logf("starting containerd to remove the pods")
				if d, err = startProc("containerd", filepath.Join(o.DataDir, "logs"), "/usr/bin/containerd", "--config", cd.config); err != nil {
					note("containerd", err)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := waitCRI(ctx, cd.socket, d); err != nil {
			note("containerd CRI", err)
		} else {
			note("removing pods", removeAllPods(ctx, cd.socket))
		}
		cancel()
	}

	// 3. Whatever still runs in our cgroups: pods the CRI missed, and the
	// agent's task supervisors and tasks (outside the pods' cgroups).
	var groups []string
	for _, h := range cgroupHierarchies() {
		groups = append(groups, filepath.Join(h, kubeletCgroupRoot), filepath.Join(h, o.AgentCgroupRoot, o.NodeName))
	}
	for range 3 {
		var pids []int
		for _, g := range groups {
			pids = append(pids, cgroupPids(g)...)
		}
		if len(pids) == 0 {
			break
		}
		logf("killing %d leftover processes in the node's cgroups", len(pids))
		killAndWait(pids, 9, 5*time.Second)
	}

	// 4. containerd and its shims (their command lines name our socket).
	if d != nil {
		d.stop(20 * time.Second)
	}
	if left := killAndWait(pidsReferencing(cd.dir), 15, 10*time.Second); len(left) > 0 {
		killAndWait(left, 9, 5*time.Second)
	}

	// 5. Mounts under the data dir: container rootfs, shm, network
	// namespaces, the kubelet's volumes.
	mounts, err := mountsUnder(o.DataDir)
	note("mountinfo", err)
	for _, m := range mounts {
		note("unmount "+m, unmount(m))
	}
	if len(mounts) > 0 {
		logf("unmounted %d mounts under the data dir", len(mounts))
	}

	// 6. Cgroups: the kubelet's root, the agent's node, and the agent root
	// if this run created it.
	for _, h := range cgroupHierarchies() {
		note("cgroup", removeCgroupTree(filepath.Join(h, kubeletCgroupRoot)))
		note("cgroup", removeCgroupTree(filepath.Join(h, o.AgentCgroupRoot, o.NodeName)))
		if state != nil && !state.AgentCgroupRootExisted[h] {
			_ = os.Remove(filepath.Join(h, o.AgentCgroupRoot)) // only if empty
		}
	}

	// 7. Network: the bridge, the service IP and its proxy, iptables.
	if _, err := net.InterfaceByName(o.Bridge); err == nil {
		note("deleting bridge", run("ip", "link", "del", o.Bridge))
	}
	if n != nil {
		n.proxy.close()
	}
	if state != nil && !state.ServiceIPOnLo && hasAddr("lo", serviceIP) {
		note("service IP", run("ip", "addr", "del", serviceIP.String()+"/32", "dev", "lo"))
	}
	if state != nil {
		for cmd, before := range state.Iptables {
			note(cmd, restoreIptables(cmd, before))
		}
		for _, t := range newNftTables(state.NftTables) {
			note("nft table "+t, run("nft", append([]string{"delete", "table"}, strings.Fields(t)...)...))
		}
	}

	// 8. The control plane.
	if n != nil && n.cluster != nil {
		_ = n.cluster.Stop()
	}
	clusterDir := filepath.Join(o.DataDir, "cluster")
	if left := killAndWait(pidsReferencing(clusterDir), 15, 15*time.Second); len(left) > 0 {
		killAndWait(left, 9, 5*time.Second)
	}

	// 9. Sysctls, the propagation of /, and paths this run created.
	if state != nil {
		for k, v := range state.Sysctls {
			if cur, err := readSysctl(k); err == nil && cur != v {
				logf("restoring %s from %s to %s", k, cur, v)
				note(k, writeSysctl(k, v))
			}
		}
		if prop, err := mountPropagation("/"); err == nil && prop != state.RootPropagation {
			note("propagation of /", setPropagation("/", state.RootPropagation))
		}
	}
	// The agent's sandboxes and checkpoints of this node; its work dir
	// itself only if this run created it and nobody else uses it now.
	for _, p := range []string{filepath.Join(o.AgentWorkDir, o.NodeName), filepath.Join(o.AgentWorkDir, "checkpoints", o.NodeName)} {
		note("remove "+p, os.RemoveAll(p))
	}
	if state != nil {
		for _, p := range state.Absent {
			if _, err := os.Lstat(p); err != nil {
				continue
			}
			logf("removing %s (created by this run)", p)
			if p == o.AgentWorkDir {
				// The agent's table of per-framework task uids (agent/runtime).
				note("remove task uid table", os.RemoveAll(filepath.Join(p, "checkpoints", ".task-uids")))
				_ = os.Remove(filepath.Join(p, "checkpoints"))
				// The agent's log server keeps its self-signed certificate here.
				note("remove .log-server", os.RemoveAll(filepath.Join(p, ".log-server")))
				note("remove "+p, os.Remove(p))
				continue
			}
			note("remove "+p, os.RemoveAll(p))
		}
	}

	// 10. State under the data dir, keeping the logs.
	for _, p := range []string{cd.dir, kubeletRoot, filepath.Join(o.DataDir, "pod-logs"), filepath.Join(o.DataDir, "cni"), filepath.Join(o.DataDir, "pki"), filepath.Join(o.DataDir, "images")} {
		note("remove "+p, os.RemoveAll(p))
	}
	if ents, err := os.ReadDir(clusterDir); err == nil {
		for _, e := range ents {
			if e.Name() != "logs" {
				note("remove cluster state", os.RemoveAll(filepath.Join(clusterDir, e.Name())))
			}
		}
	}

	// 11. Check: nothing of ours may be left.
	leftovers := verifyClean(o, state)
	for _, l := range leftovers {
		logf("LEFTOVER: %s", l)
	}
	if len(leftovers) > 0 {
		errs = append(errs, fmt.Errorf("%d leftovers", len(leftovers)))
	}
	if len(errs) == 0 {
		note("state file", os.Remove(statePath(o)))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logf("teardown complete in %v: no processes, mounts, cgroups, bridge, iptables rules or sysctl changes left", time.Since(begin).Round(100*time.Millisecond))
	return nil
}

func verifyClean(o *Options, state *HostState) []string {
	var out []string
	if pids := pidsReferencing(o.DataDir); len(pids) > 0 {
		out = append(out, fmt.Sprintf("processes %v", pids))
	}
	if m, _ := mountsUnder(o.DataDir); len(m) > 0 {
		out = append(out, fmt.Sprintf("mounts %v", m))
	}
	for _, h := range cgroupHierarchies() {
		for _, g := range []string{filepath.Join(h, kubeletCgroupRoot), filepath.Join(h, o.AgentCgroupRoot, o.NodeName)} {
			if _, err := os.Stat(g); err == nil {
				out = append(out, "cgroup "+g)
			}
		}
	}
	if _, err := net.InterfaceByName(o.Bridge); err == nil {
		out = append(out, "interface "+o.Bridge)
	}
	if state == nil {
		return out
	}
	if !state.ServiceIPOnLo && hasAddr("lo", serviceIP) {
		out = append(out, "address "+serviceIP.String()+" on lo")
	}
	for k, v := range state.Sysctls {
		if cur, err := readSysctl(k); err == nil && cur != v {
			out = append(out, fmt.Sprintf("sysctl %s=%s (was %s)", k, cur, v))
		}
	}
	for cmd, before := range state.Iptables {
		if extra := iptablesExtra(cmd, before); len(extra) > 0 {
			out = append(out, fmt.Sprintf("%s: %v", cmd, extra))
		}
	}
	for _, t := range newNftTables(state.NftTables) {
		out = append(out, "nftables table "+t)
	}
	if prop, err := mountPropagation("/"); err == nil && prop != state.RootPropagation {
		out = append(out, "propagation of / is "+prop+", was "+state.RootPropagation)
	}
	for _, p := range state.Absent {
		if _, err := os.Lstat(p); err == nil {
			out = append(out, "path "+p)
		}
	}
	return out
}

// unmount detaches a mount (lazily: a pod's leftover users must not block it).
func unmount(path string) error {
	err := syscall.Unmount(path, syscall.MNT_DETACH)
	if err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
