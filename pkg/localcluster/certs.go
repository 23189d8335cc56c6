package localcluster

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	sharedpki "github.com/agora-sched/agora/internal/pki"
)

// Certificates and keys live in DataDir/pki. The CA and the service-account
// key are kept across restarts on the same DataDir, so service-account tokens
// and the kube-root-ca.crt ConfigMaps stored in etcd stay valid; the leaf
// certificates are cheap and are reissued on every start.
const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 365 * 24 * time.Hour
	// A CA this close to expiry is replaced rather than reused.
	caMinRemaining = 30 * 24 * time.Hour
)

// serviceIP is the first address of the service range: the apiserver's
// in-cluster address (the "kubernetes" Service).
var serviceIP = net.IPv4(10, 0, 0, 1)

const serviceCIDR = "10.0.0.0/24"

// keyPair is a PEM certificate and key, and where they were written.
type keyPair struct {
	certPEM, keyPEM   []byte
	certPath, keyPath string
}

// pki holds the cluster CA and everything issued from it.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
	ca     keyPair

	apiserver, admin, controllerManager, scheduler keyPair
	// saKeyPath signs service-account tokens; saPubPath verifies them.
	saKeyPath, saPubPath string
}

// newPKI loads or creates the CA and service-account key under dir and
// issues the serving and client certificates every component needs.
func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	if err := p.loadOrCreateCA(); err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	leaves := []struct {
		into *keyPair
		name string
		tmpl x509.Certificate
	}{
		{&p.apiserver, "apiserver", x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, serviceIP},
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
				"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		}},
		// system:masters is bound to cluster-admin and bypasses authorization.
		{&p.admin, "admin", x509.Certificate{
			Subject:     pkix.Name{CommonName: "agora-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		// These user names are the ones the bootstrap RBAC policy grants the
		// controller manager's and scheduler's permissions to.
		{&p.controllerManager, "kube-controller-manager", x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-controller-manager"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{&p.scheduler, "kube-scheduler", x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:kube-scheduler"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, l := range leaves {
		kp, err := p.issue(l.name, l.tmpl)
		if err != nil {
			return nil, fmt.Errorf("issuing %s certificate: %w", l.name, err)
		}
		*l.into = kp
	}
	if err := p.loadOrCreateSAKey(); err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	return p, nil
}

func (p *pki) loadOrCreateCA() error {
	p.ca = keyPair{certPath: filepath.Join(p.dir, "ca.crt"), keyPath: filepath.Join(p.dir, "ca.key")}
	if cert, key, err := sharedpki.LoadPair(p.ca.certPath, p.ca.keyPath); err == nil &&
		time.Until(cert.NotAfter) > caMinRemaining {
		p.caCert, p.caKey = cert, key
		p.ca.certPEM, _ = os.ReadFile(p.ca.certPath)
		p.ca.keyPEM, _ = os.ReadFile(p.ca.keyPath)
		return nil
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "agora-local-ca"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, key, err := sharedpki.Sign(tmpl, caValidity, nil, nil)
	if err != nil {
		return err
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	p.caKey = key
	p.ca.certPEM = sharedpki.CertPEM(der)
	if p.ca.keyPEM, err = sharedpki.KeyPEM(key); err != nil {
		return err
	}
	return writePair(p.ca)
}

// issue signs a leaf certificate described by tmpl and writes it as
// <name>.crt and <name>.key.
func (p *pki) issue(name string, tmpl x509.Certificate) (keyPair, error) {
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, key, err := sharedpki.Sign(&tmpl, leafValidity, p.caCert, p.caKey)
	if err != nil {
		return keyPair{}, err
	}
	kp := keyPair{
		certPEM:  sharedpki.CertPEM(der),
		certPath: filepath.Join(p.dir, name+".crt"),
		keyPath:  filepath.Join(p.dir, name+".key"),
	}
	if kp.keyPEM, err = sharedpki.KeyPEM(key); err != nil {
		return keyPair{}, err
	}
	return kp, writePair(kp)
}

// loadOrCreateSAKey provides the key pair that signs (apiserver's
// TokenRequest, controller manager's legacy token controller) and verifies
// service-account tokens.
func (p *pki) loadOrCreateSAKey() error {
	p.saKeyPath = filepath.Join(p.dir, "sa.key")
	p.saPubPath = filepath.Join(p.dir, "sa.pub")
	key, err := sharedpki.LoadKey(p.saKeyPath)
	if err != nil {
		if key, err = sharedpki.NewKey(); err != nil {
			return err
		}
		kpem, err := sharedpki.KeyPEM(key)
		if err != nil {
			return err
		}
		if err := os.WriteFile(p.saKeyPath, kpem, 0o600); err != nil {
			return err
		}
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(p.saPubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644)
}

func writePair(kp keyPair) error {
	if err := os.WriteFile(kp.certPath, kp.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(kp.keyPath, kp.keyPEM, 0o600)
}
