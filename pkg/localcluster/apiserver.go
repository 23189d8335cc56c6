package localcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
)

// The first start on a cold 2-core machine spends most of this installing
// the bootstrap RBAC policy and priority classes.
const apiserverReadyTimeout = 3 * time.Minute

// serviceAccountIssuer is the in-cluster issuer URL, as in kubeadm clusters.
const serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

func (c *Cluster) startAPIServer(ctx context.Context) error {
	pickPort := c.opts.APIServerPort == 0
	p, err := startComponent(ctx, pickPort, func() (*process, error) {
		port := c.opts.APIServerPort
		if pickPort {
			ports, err := freePorts(1)
			if err != nil {
				return nil, err
			}
			port = ports[0]
		}
		endpoint := "https://127.0.0.1:" + strconv.Itoa(port)
		if err := c.writeKubeconfigs(endpoint); err != nil {
			return nil, fmt.Errorf("writing kubeconfigs: %w", err)
		}
		args := []string{
			"--etcd-servers=" + c.etcdURL,
			"--secure-port=" + strconv.Itoa(port),
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			// The lease reconciler refuses a loopback address for the
			// "kubernetes" Service's endpoints; no pod could use it anyway.
			// A real node needs a routable --advertise-address and
			// --endpoint-reconciler-type=lease in ExtraAPIServerFlags.
			"--endpoint-reconciler-type=none",
			// Never used with the certificates below, but its default is
			// under /var/run; keep everything under DataDir.
			"--cert-dir=" + filepath.Join(c.opts.DataDir, "apiserver-certs"),
			"--tls-cert-file=" + c.pki.apiserver.certPath,
			"--tls-private-key-file=" + c.pki.apiserver.keyPath,
			"--client-ca-file=" + c.pki.ca.certPath,
			"--service-cluster-ip-range=" + serviceCIDR,
			"--service-account-issuer=" + serviceAccountIssuer,
			"--service-account-key-file=" + c.pki.saPubPath,
			"--service-account-signing-key-file=" + c.pki.saKeyPath,
			"--authorization-mode=Node,RBAC",
			"--allow-privileged=true",
			// Flow control only queues requests under overload; locally it
			// costs CPU and makes throughput measurements harder to read.
			"--enable-priority-and-fairness=false",
			"--profiling=false",
		}
		// Appended last: for repeated flags the last value wins.
		args = append(args, c.opts.ExtraAPIServerFlags...)
		c.logf("starting kube-apiserver on %s", endpoint)
		p, err := startProcess("kube-apiserver", c.bin("kube-apiserver"), args, c.logDir)
		if err != nil {
			return nil, err
		}
		c.ports["kube-apiserver"] = port
		c.endpoint = endpoint
		cs, err := kubernetes.NewForConfig(c.restConfig)
		if err != nil {
			return p, err
		}
		return p, p.waitReady(ctx, apiserverReadyTimeout, "ready (/readyz)", func(ctx context.Context) error {
			// /readyz turns ok only after every post-start hook (RBAC
			// bootstrap included) has finished.
			_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err
		})
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}
