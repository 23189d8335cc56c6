package cli

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/pkg/resources"
	"github.com/agora-sched/agora/pkg/sdk"
)

func TestLogPath(t *testing.T) {
	task := b.Task("ns", "t1", "fw").Obj()
	if _, err := logPath(task, false); err == nil || !strings.Contains(err.Error(), "has no sandbox yet (not bound yet): it has not started") {
		t.Errorf("unbound task: %v", err)
	}
	task.Status.State = agorav1.TaskStaging
	if _, err := logPath(task, false); err == nil || !strings.Contains(err.Error(), "(TASK_STAGING)") {
		t.Errorf("staging task: %v", err)
	}
	task.Status.Sandbox = "sim://ns/t1"
	if _, err := logPath(task, false); err == nil || !strings.Contains(err.Error(), "simulated agent") {
		t.Errorf("simulated sandbox: %v", err)
	}
	task.Status.Sandbox = "/var/lib/agora/sandboxes/t1"
	if p, _ := logPath(task, false); p != "/var/lib/agora/sandboxes/t1/stdout" {
		t.Errorf("stdout path = %s", p)
	}
	if p, _ := logPath(task, true); p != "/var/lib/agora/sandboxes/t1/stderr" {
		t.Errorf("stderr path = %s", p)
	}
}

func TestFollowReadsUntilTheTaskEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stdout")
	if err := os.WriteFile(path, []byte("one\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	polls := 0
	var out strings.Builder
	err = follow(context.Background(), f, &out, time.Millisecond, func() (bool, error) {
		polls++
		if polls == 2 {
			// The task writes more and ends between two polls.
			w, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			w.WriteString("two\n")
			w.Close()
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "one\ntwo\n" {
		t.Errorf("followed %q, want both lines", out.String())
	}
}

// TestLogsFromAnAgentLogServer runs agora logs as a tenant with a token
// against a real agent's log server and a real apiserver (RBAC).
func TestLogsFromAnAgentLogServer(t *testing.T) {
	env := startControlPlane(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nsA, nsB := env.Namespace(t, "tenant-a"), env.Namespace(t, "tenant-b")

	// The tenant: a ServiceAccount bound to the framework role in nsA.
	data, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "rbac", "framework_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	must(t, env.Client.Create(ctx, &role))
	must(t, env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "scheduler"}}))
	must(t, env.Client.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsA, Name: "scheduler"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: nsA, Name: "scheduler"}},
	}))
	kc, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := kc.CoreV1().ServiceAccounts(nsA).CreateToken(ctx, "scheduler", &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: env.Config.Host, CertificateAuthorityData: env.Config.CAData}
	cfg.AuthInfos["tenant"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["c"] = &clientcmdapi.Context{Cluster: "c", AuthInfo: "tenant", Namespace: nsA}
	cfg.CurrentContext = "c"
	must(t, clientcmd.WriteToFile(*cfg, kubeconfig))

	// A simulated agent with a real log server; sandboxes are folders of dir.
	dir := t.TempDir()
	clients, err := agent.NewClients(env.Config, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := agent.NewLogServer(agent.LogServerConfig{
		BindAddress: "127.0.0.1:0",
		Sandbox:     func(id string) (string, error) { return filepath.Join(dir, id), nil },
		Kube:        clients.Kube, PollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{Name: "logs-node", Namespace: env.Namespace(t, "agora-system"),
		Total: resources.MustParse("cpus:2;mem:2Gi"), Executor: sim.NewExecutor(), Clients: clients,
		RenewInterval: time.Second, LogEndpoint: ls.Endpoint(), LogCertSHA256: ls.CertSHA256()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = a.Run(ctx) })
	wg.Go(func() { _ = ls.Serve(ctx, a) })

	start := func(ns, name, stdout string) *agorav1.Task {
		task := b.Task(ns, name, "fw").OfferRef("offer-1", "offer-uid-1", "logs-node").
			Resources(agorav1.Resources{CPUs: b.Q("100m")}).Obj()
		task.Annotations = map[string]string{sim.AnnotationDuration: "1h"}
		must(t, env.Client.Create(ctx, task))
		env.Bind(t, task) // as the master: the task's entry in the agent's Assignment
		deadline := time.Now().Add(30 * time.Second)
		for task.Status.State != agorav1.TaskRunning {
			if time.Now().After(deadline) {
				t.Fatalf("task %s not running: %+v", name, task.Status)
			}
			time.Sleep(50 * time.Millisecond)
			must(t, env.Client.Get(ctx, client.ObjectKeyFromObject(task), task))
		}
		sb := filepath.Join(dir, string(task.UID))
		must(t, os.MkdirAll(sb, 0o750))
		must(t, os.WriteFile(filepath.Join(sb, "stdout"), []byte(stdout), 0o640))
		return task
	}
	mine := start(nsA, "web-1", "starting\nserving\n")
	start(nsB, "other", "not yours\n")

	t.Run("reads", func(t *testing.T) {
		var out strings.Builder
		if err := runLogs(ctx, &logsOptions{kubeconfig: kubeconfig, tail: -1}, "web-1", &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != "starting\nserving\n" {
			t.Errorf("got %q", out.String())
		}
		out.Reset()
		if err := runLogs(ctx, &logsOptions{kubeconfig: kubeconfig, tail: 1}, "web-1", &out); err != nil || out.String() != "serving\n" {
			t.Errorf("--tail 1: %q, %v", out.String(), err)
		}
	})
	t.Run("refused in another namespace", func(t *testing.T) {
		// The tenant cannot even get the Task in nsB; the agent would
		// refuse too, which the admin's Task object lets us ask directly.
		err := runLogs(ctx, &logsOptions{kubeconfig: kubeconfig, namespace: nsB, tail: -1}, "other", io.Discard)
		if err == nil || !strings.Contains(err.Error(), "forbidden") {
			t.Errorf("err = %v", err)
		}
		var other agorav1.Task
		must(t, env.Client.Get(ctx, client.ObjectKey{Namespace: nsB, Name: "other"}, &other))
		rc, _, err := sdk.LoadRESTConfig(kubeconfig)
		must(t, err)
		err = remoteLogs(ctx, &logsOptions{tail: -1}, rc, &other, io.Discard)
		want := `agent logs-node refused (403): user "system:serviceaccount:` + nsA + `:scheduler" cannot get tasks/log`
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
	})
	t.Run("client certificate user", func(t *testing.T) {
		err := runLogs(ctx, &logsOptions{kubeconfig: env.Kubeconfig, namespace: nsA, tail: -1}, "web-1", io.Discard)
		if err == nil || !strings.Contains(err.Error(), "has no token credentials") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("wrong certificate", func(t *testing.T) {
		bad := mine.DeepCopy()
		bad.Status.LogCertSHA256 = strings.Repeat("0", 64)
		rc, _, err := sdk.LoadRESTConfig(kubeconfig)
		must(t, err)
		err = remoteLogs(ctx, &logsOptions{tail: -1}, rc, bad, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "does not match the fingerprint") {
			t.Errorf("err = %v", err)
		}
		if err := remoteLogs(ctx, &logsOptions{tail: -1, insecure: true}, rc, bad, io.Discard); err != nil {
			t.Errorf("--insecure-skip-tls-verify-agent: %v", err)
		}
	})
	t.Run("follow", func(t *testing.T) {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := runLogs(ctx, &logsOptions{kubeconfig: kubeconfig, follow: true, tail: -1}, "web-1", pw)
			pw.CloseWithError(err)
			done <- err
		}()
		r := bufio.NewReader(pr)
		for _, want := range []string{"starting\n", "serving\n"} {
			if l, err := r.ReadString('\n'); err != nil || l != want {
				t.Fatalf("followed %q, %v; want %q", l, err, want)
			}
		}
		f, err := os.OpenFile(filepath.Join(dir, string(mine.UID), "stdout"), os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		defer f.Close()
		_, _ = f.WriteString("request 1\n")
		if l, err := r.ReadString('\n'); err != nil || l != "request 1\n" {
			t.Fatalf("followed %q, %v", l, err)
		}
		_, _ = f.WriteString("bye\n")
		var cur agorav1.Task
		must(t, env.Client.Get(ctx, client.ObjectKeyFromObject(mine), &cur))
		cur.Spec.Kill = true
		must(t, env.Client.Update(ctx, &cur))
		env.SetAssigned(t, mine, func(e *agorav1.AssignedTask) { e.Kill = true }) // as the master
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "bye\n" {
			t.Errorf("after the end: %q, %v", rest, err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
