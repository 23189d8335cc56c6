package localcluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

const schedulerReadyTimeout = time.Minute

// startScheduler runs kube-scheduler, for callers that create Pods and want
// them bound to a node (a real kubelet joining this control plane).
func (c *Cluster) startScheduler(ctx context.Context) error {
	p, err := startComponent(ctx, true, func() (*process, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		args := []string{
			"--kubeconfig=" + c.schedulerKubeconfig,
			"--authentication-kubeconfig=" + c.schedulerKubeconfig,
			"--authorization-kubeconfig=" + c.schedulerKubeconfig,
			"--bind-address=127.0.0.1",
			"--secure-port=" + strconv.Itoa(ports[0]),
			"--leader-elect=false",
		}
		c.logf("starting kube-scheduler")
		p, err := startProcess("kube-scheduler", c.bin("kube-scheduler"), args, c.logDir)
		if err != nil {
			return nil, err
		}
		c.ports["kube-scheduler"] = ports[0]
		url := fmt.Sprintf("https://127.0.0.1:%d/healthz", ports[0])
		// The scheduler serves with a self-signed certificate it makes at
		// start; /healthz needs no credentials.
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		defer client.CloseIdleConnections()
		return p, p.waitReady(ctx, schedulerReadyTimeout, "healthy (/healthz)", func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("/healthz: %s", resp.Status)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}
