package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestTailOffset(t *testing.T) {
	for _, c := range []struct {
		content string
		n       int
		want    string
	}{
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 5, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\nb\n", 0, ""},
		{"", 3, ""},
	} {
		p := filepath.Join(t.TempDir(), "stdout")
		if err := os.WriteFile(p, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		off, err := TailOffset(f, c.n)
		f.Close()
		if err != nil || c.content[off:] != c.want {
			t.Errorf("tail %d of %q = %q (%v), want %q", c.n, c.content, c.content[off:], err, c.want)
		}
	}
}

// The generated certificate is kept, so the fingerprints Tasks recorded
// stay valid when the agent restarts.
func TestLogCertKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	c1, err := loadLogCert("", "", dir, []string{"node-1"})
	if err != nil {
		t.Fatal(err)
	}
	c2, err := loadLogCert("", "", dir, []string{"node-1"})
	if err != nil {
		t.Fatal(err)
	}
	if CertSHA256(c1.Certificate[0]) != CertSHA256(c2.Certificate[0]) {
		t.Error("a restart made a new certificate")
	}
	if fi, err := os.Stat(filepath.Join(dir, logKeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v, %v", fi, err)
	}
	if _, err := loadLogCert(filepath.Join(dir, logCertFile), "", "", nil); err == nil {
		t.Error("a certificate without its key was accepted")
	}
}
