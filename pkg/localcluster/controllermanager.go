package localcluster

import (
	"context"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

const controllerManagerReadyTimeout = 2 * time.Minute

// startControllerManager runs kube-controller-manager, which provides what
// envtest lacks: garbage collection, namespace deletion, service accounts and
// their tokens, and the workload controllers.
func (c *Cluster) startControllerManager(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(c.restConfig)
	if err != nil {
		return err
	}
	p, err := startComponent(ctx, true, func() (*process, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		args := []string{
			"--kubeconfig=" + c.kcmKubeconfig,
			// Delegated authn/authz guard its own /metrics and debug
			// endpoints; /healthz stays open.
			"--authentication-kubeconfig=" + c.kcmKubeconfig,
			"--authorization-kubeconfig=" + c.kcmKubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--service-account-private-key-file=" + c.pki.saKeyPath,
			"--root-ca-file=" + c.pki.ca.certPath,
			// Lets CSRs (e.g. a real kubelet's client certificate) be signed.
			"--cluster-signing-cert-file=" + c.pki.ca.certPath,
			"--cluster-signing-key-file=" + c.pki.ca.keyPath,
			// Each controller acts as its own service account, so RBAC
			// denials name the controller that lacks a permission.
			"--use-service-account-credentials=true",
			"--service-cluster-ip-range=" + serviceCIDR,
			"--leader-elect=false",
			// Every controller enabled by default; node IPAM and cloud
			// controllers stay off without a pod CIDR or cloud provider.
			"--controllers=*",
		}
		c.logf("starting kube-controller-manager")
		p, err := startProcess("kube-controller-manager", c.bin("kube-controller-manager"), args, c.logDir)
		if err != nil {
			return nil, err
		}
		c.ports["kube-controller-manager"] = ports[0]
		// The service-account controller creates "default" in every
		// namespace: its appearance proves the manager is up and authorized.
		return p, p.waitReady(ctx, controllerManagerReadyTimeout, `running (ServiceAccount default/default created)`,
			func(ctx context.Context) error {
				_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
				return err
			})
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}
