package localcluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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
	if cert, key, err := loadPair(p.ca.certPath, p.ca.keyPath); err == nil &&
		time.Until(cert.NotAfter) > caMinRemaining {
		p.caCert, p.caKey = cert, key
		p.ca.certPEM, _ = os.ReadFile(p.ca.certPath)
		p.ca.keyPEM, _ = os.ReadFile(p.ca.keyPath)
		return nil
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "agora-local-ca"},
		NotBefore:             now.Add(-time.Hour), // tolerate small clock skew
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	p.caKey = key
	p.ca.certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if p.ca.keyPEM, err = keyPEM(key); err != nil {
		return err
	}
	return writePair(p.ca)
}

// issue signs a leaf certificate described by tmpl and writes it as
// <name>.crt and <name>.key.
func (p *pki) issue(name string, tmpl x509.Certificate) (keyPair, error) {
	key, err := newKey()
	if err != nil {
		return keyPair{}, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(leafValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, p.caCert, key.Public(), p.caKey)
	if err != nil {
		return keyPair{}, err
	}
	kp := keyPair{
		certPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		certPath: filepath.Join(p.dir, name+".crt"),
		keyPath:  filepath.Join(p.dir, name+".key"),
	}
	if kp.keyPEM, err = keyPEM(key); err != nil {
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
	key, err := loadKey(p.saKeyPath)
	if err != nil {
		if key, err = newKey(); err != nil {
			return err
		}
		kpem, err := keyPEM(key)
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

// ECDSA P-256 keys: every component accepts them (ES256 for tokens) and they
// are generated in microseconds, unlike RSA.
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func keyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func writePair(kp keyPair) error {
	if err := os.WriteFile(kp.certPath, kp.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(kp.keyPath, kp.keyPEM, 0o600)
}

func loadPair(certPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	data, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("no certificate in " + certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New(keyPath + " does not match " + certPath)
	}
	return cert, key, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "EC PRIVATE KEY" {
		return nil, errors.New("no EC private key in " + path)
	}
	return x509.ParseECPrivateKey(block.Bytes)
}
