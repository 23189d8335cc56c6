package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sign issues tmpl and checks that parent (tmpl itself when nil) signed it.
func sign(t *testing.T, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, []byte, *ecdsa.PrivateKey) {
	t.Helper()
	der, key, err := Sign(tmpl, time.Hour, parent, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent = cert
	}
	if err := cert.CheckSignatureFrom(parent); err != nil {
		t.Fatalf("%s is not signed by %s: %v", cert.Subject, parent.Subject, err)
	}
	return cert, der, key
}

func TestSignAndLoadPair(t *testing.T) {
	ca, _, caKey := sign(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	leaf, leafDER, leafKey := sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "leaf"}}, ca, caKey)
	if !leaf.NotBefore.Before(time.Now().Add(-50*time.Minute)) || leaf.NotAfter.After(time.Now().Add(time.Hour)) {
		t.Errorf("validity %v..%v, want from an hour ago for an hour", leaf.NotBefore, leaf.NotAfter)
	}

	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key")
	keyPEM, err := KeyPEM(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, CertPEM(leafDER), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := LoadPair(certPath, keyPath); err != nil || !got.Equal(leaf) {
		t.Fatalf("LoadPair: %v", err)
	}
	// A key that does not match the certificate is refused.
	otherPEM, _ := KeyPEM(caKey)
	if err := os.WriteFile(keyPath, otherPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadPair(certPath, keyPath); err == nil {
		t.Fatal("LoadPair accepted a key that does not match")
	}
}
