// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) with Agora's CRDs installed, for integration tests.
//
// The binaries come from KUBEBUILDER_ASSETS (set by `make test`), or are built
// on demand by hack/build-bins.sh so `go test` works on its own too.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Env is a running control plane with Agora's CRDs.
type Env struct {
	Config     *rest.Config
	Client     client.Client
	Scheme     *k8sruntime.Scheme
	Kubeconfig string // admin kubeconfig file, for kubectl
	Kubectl    string // kubectl built with the control plane
	RepoRoot   string

	env *envtest.Environment
}

// RepoRoot is the repository's top folder, found from this source file.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Scheme has the Kubernetes built-in types and Agora's.
func Scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := agorav1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// AssetsDir returns the directory holding etcd, kube-apiserver and kubectl.
func AssetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	cmd := exec.Command(filepath.Join(RepoRoot(), "hack", "build-bins.sh"), "etcd", "kube-apiserver", "kubectl")
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the control-plane binaries with hack/build-bins.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1], nil
}

// Start starts a control plane; call Stop when done. Extra apiserver flags
// can be given as "--name=value".
func Start(extraAPIServerFlags ...string) (*Env, error) {
	return StartWithCRDs(filepath.Join(RepoRoot(), "config", "crd", "bases"), extraAPIServerFlags...)
}

// StartWithCRDs is Start with the CRDs of crdDir instead of config/crd/bases
// (e.g. variants of them, to measure what a validation rule costs).
func StartWithCRDs(crdDir string, extraAPIServerFlags ...string) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	root := RepoRoot()
	te := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{crdDir},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	args := te.ControlPlane.GetAPIServer().Configure()
	for _, f := range extraAPIServerFlags {
		name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		args.Append(name, value)
	}
	cfg, err := te.Start()
	if err != nil {
		// Start leaves etcd and the apiserver running when, say, a CRD is
		// rejected; stop them or they outlive the test binary.
		_ = te.Stop()
		return nil, fmt.Errorf("starting envtest: %w", err)
	}
	e := &Env{Config: cfg, Scheme: Scheme(), RepoRoot: root, env: te, Kubectl: filepath.Join(assets, "kubectl")}
	if e.Client, err = client.New(cfg, client.Options{Scheme: e.Scheme}); err != nil {
		_ = te.Stop()
		return nil, err
	}
	if e.Kubeconfig, err = e.writeKubeconfig(); err != nil {
		_ = te.Stop()
		return nil, err
	}
	return e, nil
}

func (e *Env) writeKubeconfig() (string, error) {
	user, err := e.env.AddUser(envtest.User{Name: "agora-test-admin", Groups: []string{"system:masters"}}, e.Config)
	if err != nil {
		return "", err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp("", "agora-kubeconfig-*")
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = f.Write(data)
	return f.Name(), err
}

// Stop stops the control plane.
func (e *Env) Stop() error {
	_ = os.Remove(e.Kubeconfig)
	return e.env.Stop()
}

// KubectlCmd runs the control plane's kubectl with the admin kubeconfig and
// returns its combined output.
func (e *Env) KubectlCmd(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.Kubectl, append([]string{"--kubeconfig", e.Kubeconfig}, args...)...)
	cmd.Dir = e.RepoRoot
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Namespace creates a namespace with a unique name for one test.
func (e *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := e.Client.Create(context.Background(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	return ns.Name
}

// Main starts one control plane for a test binary, runs its tests, stops it.
func Main(m *testing.M, env **Env) {
	e, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}
