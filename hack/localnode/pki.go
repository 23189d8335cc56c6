package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/agora-sched/agora/internal/pki"
)

// The node's certificates come from the control plane's CA. pkg/localcluster
// reuses a CA it finds in <cluster dir>/pki (ca.crt, ca.key: PEM, ECDSA "EC
// PRIVATE KEY"), so we create it there first and issue from it, before the
// apiserver needs the kubelet client certificate on its command line.
type nodePKI struct {
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPath string
	dir    string
}

func loadOrCreateCA(clusterPKIDir, nodeDir string) (*nodePKI, error) {
	for _, d := range []string{clusterPKIDir, nodeDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	p := &nodePKI{caPath: filepath.Join(clusterPKIDir, "ca.crt"), dir: nodeDir}
	keyPath := filepath.Join(clusterPKIDir, "ca.key")
	if cert, key, err := pki.LoadPair(p.caPath, keyPath); err == nil && time.Until(cert.NotAfter) > 60*24*time.Hour {
		p.caCert, p.caKey = cert, key
		return p, nil
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "agora-localnode-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, key, err := pki.Sign(tmpl, 5*365*24*time.Hour, nil, nil)
	if err != nil {
		return nil, err
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	p.caKey = key
	return p, writePair(p.caPath, keyPath, der, key)
}

// issue signs a leaf and writes <dir>/<name>.crt and .key.
func (p *nodePKI) issue(name string, tmpl x509.Certificate) (certPath, keyPath string, err error) {
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, key, err := pki.Sign(&tmpl, 365*24*time.Hour, p.caCert, p.caKey)
	if err != nil {
		return "", "", err
	}
	certPath, keyPath = filepath.Join(p.dir, name+".crt"), filepath.Join(p.dir, name+".key")
	return certPath, keyPath, writePair(certPath, keyPath, der, key)
}

func (p *nodePKI) clientCert(name, cn string, groups ...string) (string, string, error) {
	return p.issue(name, x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: groups},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (p *nodePKI) servingCert(name string, ips []net.IP, dns []string) (string, string, error) {
	return p.issue(name, x509.Certificate{
		Subject:     pkix.Name{CommonName: dns[0]},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: ips,
		DNSNames:    dns,
	})
}

func writePair(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kpem, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pki.CertPEM(der), 0o644); err != nil {
		return err
	}
	return os.WriteFile(keyPath, kpem, 0o600)
}
