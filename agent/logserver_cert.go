package agent

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/agora-sched/agora/internal/pki"
)

// Files of the log server's self-signed certificate in LogServerConfig.CertDir.
const (
	logCertFile = "tls.crt"
	logKeyFile  = "tls.key"
	// selfSignedValidity of a generated certificate. Clients pin it by its
	// fingerprint, so a long life keeps old Tasks' pins valid.
	selfSignedValidity = 10 * 365 * 24 * time.Hour
)

// CertSHA256 is the fingerprint clients pin: the SHA-256 of the leaf
// certificate's DER bytes, lowercase hex.
func CertSHA256(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// loadLogCert returns the serving certificate: the given files, else the
// self-signed one kept in dir (generated on first start and reused after, so
// the fingerprints recorded in Tasks stay valid across agent restarts), else
// (dir empty) a new self-signed one held in memory.
func loadLogCert(certFile, keyFile, dir string, hosts []string) (tls.Certificate, error) {
	if certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return tls.Certificate{}, errors.New("log server: give both a certificate and a key file, or neither")
		}
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("log server: %w", err)
		}
		return c, nil
	}
	if dir != "" {
		cp, kp := filepath.Join(dir, logCertFile), filepath.Join(dir, logKeyFile)
		if c, err := tls.LoadX509KeyPair(cp, kp); err == nil {
			if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil && time.Now().Before(leaf.NotAfter.Add(-24*time.Hour)) {
				return c, nil
			}
		}
		certPEM, keyPEM, err := selfSigned(hosts)
		if err != nil {
			return tls.Certificate{}, err
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return tls.Certificate{}, fmt.Errorf("log server: %w", err)
		}
		if err := writeFileAtomic(kp, keyPEM, 0o600); err != nil {
			return tls.Certificate{}, err
		}
		if err := writeFileAtomic(cp, certPEM, 0o644); err != nil {
			return tls.Certificate{}, err
		}
		return tls.X509KeyPair(certPEM, keyPEM)
	}
	certPEM, keyPEM, err := selfSigned(hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// selfSigned makes a P-256 certificate for hosts (IPs or DNS names).
func selfSigned(hosts []string) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "agora-agent log server"},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range append(hosts, "localhost", "127.0.0.1", "::1") {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, key, err := pki.Sign(tmpl, selfSignedValidity, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = pki.KeyPEM(key); err != nil {
		return nil, nil, err
	}
	return pki.CertPEM(der), keyPEM, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("log server: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("log server: %w", err)
	}
	return nil
}
