package localcluster

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/agora-sched/agora/internal/testenv"
)

var (
	binDirOnce sync.Once
	binDir     string
	binDirErr  error
)

// testBinDir builds the binaries if needed (once per test binary), or skips
// when they are absent and AGORA_SKIP_LOCALCLUSTER=1 asks not to build.
func testBinDir(t *testing.T) string {
	t.Helper()
	root := testenv.RepoRoot()
	if os.Getenv("AGORA_SKIP_LOCALCLUSTER") == "1" && !binsBuilt(root) {
		t.Skip("control-plane binaries are not built and AGORA_SKIP_LOCALCLUSTER=1; run hack/build-bins.sh to enable this test")
	}
	binDirOnce.Do(func() {
		t.Log("making sure the control-plane binaries are built; the first build takes 10-20 minutes (use -timeout 30m)")
		binDir, binDirErr = EnsureBins(context.Background(), root, t.Output())
	})
	if binDirErr != nil {
		t.Fatal(binDirErr)
	}
	return binDir
}

// binsBuilt reports whether some version directory already holds every
// default binary, without running the build script.
func binsBuilt(root string) bool {
	dirs, _ := filepath.Glob(filepath.Join(root, "bin", "k8s", "*"))
	for _, d := range dirs {
		all := true
		for _, b := range DefaultBins {
			if _, err := os.Stat(filepath.Join(d, b)); err != nil {
				all = false
			}
		}
		if all {
			return true
		}
	}
	return false
}

func TestClusterLifecycle(t *testing.T) {
	bins := testBinDir(t)
	ctx := t.Context()

	begin := time.Now()
	c, err := Start(ctx, Options{BinDir: bins, DataDir: t.TempDir(), WithScheduler: true, Log: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(begin).Round(time.Millisecond))
	t.Cleanup(func() { c.Stop() })

	// The kubeconfig file works on its own and reports the real version.
	kc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(kc)
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.GitVersion, "v1.") {
		t.Errorf("server version %q, want v1.x (ldflags missing?)", v.GitVersion)
	}
	if !strings.HasPrefix(c.Endpoint(), "https://127.0.0.1:") {
		t.Errorf("Endpoint() = %q", c.Endpoint())
	}

	cs = kubernetes.NewForConfigOrDie(c.RESTConfig())
	const ns = "localcluster-test"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	owner, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dependent := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: "dependent",
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
		}},
	}}
	if _, err := cs.CoreV1().ConfigMaps(ns).Create(ctx, dependent, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// Only the garbage collector in kube-controller-manager deletes the
	// dependent; envtest would leave it forever.
	if err := cs.CoreV1().ConfigMaps(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, time.Minute, "dependent ConfigMap garbage-collected", func() error {
		_, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, dependent.Name, metav1.GetOptions{})
		return notFound(err)
	})

	// Only the namespace controller removes the "kubernetes" finalizer.
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "namespace deleted", func() error {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return notFound(err)
	})

	pids := map[string]int{}
	for _, p := range c.procs {
		pids[p.Name] = p.Pid()
	}
	if len(pids) != 4 {
		t.Errorf("running %v, want etcd, kube-apiserver, kube-controller-manager, kube-scheduler", pids)
	}
	ports := c.ports
	dataDir := c.opts.DataDir
	stopBegin := time.Now()
	if err := c.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(stopBegin).Round(time.Millisecond))
	select {
	case <-c.Done():
	default:
		t.Error("Done() not closed after Stop")
	}
	for name, pid := range pids {
		// Signal 0 probes existence; each child led its own process group.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Stop: kill 0 = %v", name, pid, err)
		}
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group of %s (%d) not empty after Stop: kill 0 = %v", name, pid, err)
		}
	}
	if pids := procsUnder(t, dataDir); len(pids) > 0 {
		t.Errorf("processes still running on the cluster's DataDir after Stop: %v", pids)
	}
	for name, port := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			t.Errorf("%s port %d not free after Stop: %v", name, port, err)
			continue
		}
		l.Close()
	}
}

// TestStartFailureNamesComponent checks that a component that cannot start
// is named, its log quoted, and what was already running is stopped.
func TestStartFailureNamesComponent(t *testing.T) {
	bins := testBinDir(t)
	dataDir := t.TempDir()
	_, err := Start(t.Context(), Options{
		BinDir: bins, DataDir: dataDir,
		ExtraAPIServerFlags: []string{"--no-such-flag"},
	})
	if err == nil {
		t.Fatal("Start succeeded with an unknown apiserver flag")
	}
	msg := err.Error()
	for _, want := range []string{"kube-apiserver failed to start", "unknown flag: --no-such-flag", "kube-apiserver.log"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dataDir, "logs", "etcd.log")); err != nil {
		t.Errorf("etcd was not started before the apiserver: %v", err)
	}
	if pids := procsUnder(t, dataDir); len(pids) > 0 {
		t.Errorf("processes left running after a failed Start: %v", pids)
	}
	lock, err := lockDataDir(dataDir)
	if err != nil {
		t.Fatalf("a failed Start kept the data dir locked: %v", err)
	}
	lock.Close()
}

// TestStartRefusesADataDirInUse: a second control plane on a data dir in
// use fails at once, naming the process that holds it, and starts nothing
// (its etcd used to wait for ever on the first one's database).
func TestStartRefusesADataDirInUse(t *testing.T) {
	bins := testBinDir(t)
	dataDir := t.TempDir()
	held, err := lockDataDir(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err = Start(ctx, Options{BinDir: bins, DataDir: dataDir})
	if !errors.Is(err, ErrDataDirInUse) {
		t.Fatalf("Start on a locked data dir: %v, want ErrDataDirInUse", err)
	}
	if want := "locked by process " + strconv.Itoa(os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "logs", "etcd.log")); err == nil {
		t.Error("etcd was started on a data dir in use")
	}
	if pids := procsUnder(t, dataDir); len(pids) > 0 {
		t.Errorf("processes started on a data dir in use: %v", pids)
	}
	held.Close()
	again, err := lockDataDir(dataDir)
	if err != nil {
		t.Fatalf("the data dir stayed locked after its holder released it: %v", err)
	}
	again.Close()
}

// procsUnder lists processes whose command line mentions dir: every
// component's does (its data, certificates or kubeconfig are there).
func procsUnder(t *testing.T, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("cannot list processes: %v", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s after %v: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func notFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return errors.New("still exists")
	}
	return err
}

// TestComponentCrashEndsCluster checks that a component dying on its own
// takes the rest down and that Wait reports which one died.
func TestComponentCrashEndsCluster(t *testing.T) {
	bins := testBinDir(t)
	c, err := Start(t.Context(), Options{BinDir: bins, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	var kcm *process
	for _, p := range c.procs {
		if p.Name == "kube-controller-manager" {
			kcm = p
		}
	}
	if err := syscall.Kill(kcm.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(time.Minute):
		t.Fatal("Done() not closed a minute after kube-controller-manager was killed")
	}
	if err := c.Wait(); err == nil || !strings.Contains(err.Error(), "kube-controller-manager exited") {
		t.Errorf("Wait() = %v, want kube-controller-manager's exit", err)
	}
	if pids := procsUnder(t, c.opts.DataDir); len(pids) > 0 {
		t.Errorf("processes left running after a crash: %v", pids)
	}
}
