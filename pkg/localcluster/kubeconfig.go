package localcluster

import (
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const contextName = "agora-local"

// writeKubeconfig writes a kubeconfig for server authenticating with the
// client certificate kp. Credentials are embedded so the file still works
// when copied elsewhere.
func writeKubeconfig(path, server string, caPEM []byte, kp keyPair) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[contextName] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM, ClientKeyData: kp.keyPEM}
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: contextName}
	cfg.CurrentContext = contextName
	return clientcmd.WriteToFile(*cfg, path)
}

// writeKubeconfigs writes the admin, controller-manager and scheduler kubeconfigs
// for an apiserver at server. The admin one is DataDir/admin.kubeconfig, the
// place users look; the components' are internal and live beside their keys.
func (c *Cluster) writeKubeconfigs(server string) error {
	c.adminKubeconfig = filepath.Join(c.opts.DataDir, "admin.kubeconfig")
	c.kcmKubeconfig = filepath.Join(c.pki.dir, "kube-controller-manager.kubeconfig")
	c.schedulerKubeconfig = filepath.Join(c.pki.dir, "kube-scheduler.kubeconfig")
	for path, kp := range map[string]keyPair{
		c.adminKubeconfig:     c.pki.admin,
		c.kcmKubeconfig:       c.pki.controllerManager,
		c.schedulerKubeconfig: c.pki.scheduler,
	} {
		if err := writeKubeconfig(path, server, c.pki.ca.certPEM, kp); err != nil {
			return err
		}
	}
	c.restConfig = &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.pki.ca.certPEM,
			CertData: c.pki.admin.certPEM,
			KeyData:  c.pki.admin.keyPEM,
		},
	}
	return nil
}
