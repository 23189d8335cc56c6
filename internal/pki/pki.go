// Package pki is the certificate plumbing shared by the local cluster, the
// local node tool and the agent's log server: P-256 keys, signing, and PEM
// files. It uses the standard library alone, so the agent can link it
// without pulling in the local cluster's dependencies.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"time"
)

// NewKey returns an ECDSA P-256 key: every component accepts it (ES256 for
// tokens) and it is generated in microseconds, unlike RSA.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// Serial returns a random serial number of up to 127 bits.
func Serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

// Sign issues a certificate for a new key from tmpl, valid from an hour ago
// (to tolerate small clock skew) for validity. It fills in the serial number
// and validity window; the caller sets everything else. A nil parent makes
// the certificate self-signed.
func Sign(tmpl *x509.Certificate, validity time.Duration, parent *x509.Certificate, parentKey crypto.Signer) (der []byte, key *ecdsa.PrivateKey, err error) {
	if key, err = NewKey(); err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = Serial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(validity)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	if der, err = x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey); err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// CertPEM encodes a DER certificate.
func CertPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// KeyPEM encodes key as an "EC PRIVATE KEY" block.
func KeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// LoadPair reads a PEM certificate and its EC key and checks they match.
func LoadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
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
	key, err := LoadKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, errors.New(keyPath + " does not match " + certPath)
	}
	return cert, key, nil
}

// LoadKey reads a PEM "EC PRIVATE KEY".
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
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
