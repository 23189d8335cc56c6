package sdk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadRESTConfigWithoutAKubeconfig: with no usable kubeconfig the error
// is ErrNoKubeconfig and names the files looked at, instead of client-go's
// advice to set KUBERNETES_MASTER.
func TestLoadRESTConfigWithoutAKubeconfig(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", missing+string(filepath.ListSeparator)+empty)
	_, _, err := LoadRESTConfig("")
	if !errors.Is(err, ErrNoKubeconfig) {
		t.Fatalf("$KUBECONFIG with no cluster: %v, want ErrNoKubeconfig", err)
	}
	for _, want := range []string{missing, empty} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "KUBERNETES_MASTER") {
		t.Errorf("error %q still suggests KUBERNETES_MASTER", err)
	}

	_, _, err = LoadRESTConfig(empty)
	if !errors.Is(err, ErrNoKubeconfig) || !strings.Contains(err.Error(), empty) {
		t.Errorf("an explicit kubeconfig with no cluster: %v, want ErrNoKubeconfig naming it", err)
	}
	// A kubeconfig that cannot be read keeps its own, specific error.
	if _, _, err = LoadRESTConfig(missing); err == nil || errors.Is(err, ErrNoKubeconfig) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("an explicit kubeconfig that does not exist: %v, want the stat error", err)
	}
}
