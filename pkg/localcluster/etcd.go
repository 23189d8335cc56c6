package localcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

const etcdReadyTimeout = time.Minute

// startEtcd runs a single-member etcd on loopback with plain HTTP: nothing
// but the apiserver on this machine talks to it, as with envtest.
func (c *Cluster) startEtcd(ctx context.Context) error {
	p, err := startComponent(ctx, true, func() (*process, error) {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		args := []string{
			"--name=agora",
			"--data-dir=" + filepath.Join(c.opts.DataDir, "etcd"),
			"--listen-client-urls=" + client,
			"--advertise-client-urls=" + client,
			"--listen-peer-urls=" + peer,
			"--initial-advertise-peer-urls=" + peer,
			"--initial-cluster=agora=" + peer,
			// Ignored when the data dir already holds a member, so a
			// restart on the same DataDir keeps its data.
			"--initial-cluster-state=new",
		}
		c.logf("starting etcd (client %s)", client)
		p, err := startProcess("etcd", c.bin("etcd"), args, c.logDir)
		if err != nil {
			return nil, err
		}
		c.ports["etcd-client"], c.ports["etcd-peer"] = ports[0], ports[1]
		c.etcdURL = client
		return p, p.waitReady(ctx, etcdReadyTimeout, "healthy", func(ctx context.Context) error {
			return etcdHealthy(ctx, client)
		})
	})
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// etcdHealthy asks etcd's /health endpoint, which reports false until the
// member has a leader and can serve requests.
func etcdHealthy(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
		return fmt.Errorf("/health: %s %s", resp.Status, body)
	}
	return nil
}
