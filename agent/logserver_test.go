package agent_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/builders"
)

// tenantToken makes a ServiceAccount in ns bound (RoleBinding in ns) to the
// framework ClusterRole of config/rbac, and returns a token for it.
func tenantToken(t *testing.T, ns, sa string) string {
	t.Helper()
	ctx := context.Background()
	data, err := os.ReadFile(filepath.Join(env.RepoRoot, "config", "rbac", "framework_role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(data, &role); err != nil {
		t.Fatal(err)
	}
	role.Name = "logtest-framework-" + ns
	if err := env.Client.Create(ctx, &role); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), &role) })
	if err := env.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}}); err != nil {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: sa}},
	}
	if err := env.Client.Create(ctx, rb); err != nil {
		t.Fatal(err)
	}
	kc, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := kc.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authnv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

// logAgent runs a simulated agent with a log server whose sandboxes are
// folders of dir named after the task's UID.
func logAgent(t *testing.T, dir string) (*agent.Agent, *agent.LogServer) {
	t.Helper()
	clients, err := agent.NewClients(env.Config, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := agent.NewLogServer(agent.LogServerConfig{
		BindAddress: "127.0.0.1:0", CertDir: filepath.Join(dir, ".log-server"),
		Sandbox:      func(id string) (string, error) { return filepath.Join(dir, id), nil },
		Kube:         clients.Kube,
		PollInterval: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := startAgent(t, agent.Config{Name: agentName("logs"), Namespace: env.Namespace(t, "agora-system"),
		Total: mustParse("cpus:4;mem:4Gi"), Executor: sim.NewExecutor(), CgroupVersion: "simulated", Version: "test",
		Clients: clients, LogEndpoint: ls.Endpoint(), LogCertSHA256: ls.CertSHA256()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ls.Serve(ctx, a) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("log server: %v", err)
		}
	})
	return a, ls
}

// runningTask creates a long task on a, binds it, waits for RUNNING and
// writes its stdout.
func runningTask(t *testing.T, a *agent.Agent, dir, ns, name, stdout string) *agorav1.Task {
	t.Helper()
	task := newTask(t, ns, name, a.Name(), agorav1.Resources{CPUs: builders.Q("100m")},
		annotate(sim.AnnotationDuration, "1h"))
	bind(t, task)
	task = waitState(t, task, agorav1.TaskRunning, 20*time.Second)
	sb := filepath.Join(dir, string(task.UID))
	if err := os.MkdirAll(sb, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sb, "stdout"), []byte(stdout), 0o640); err != nil {
		t.Fatal(err)
	}
	return task
}

// pinnedClient trusts only the certificate with the given fingerprint.
func pinnedClient(pin string) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || agent.CertSHA256(cs.PeerCertificates[0].Raw) != pin {
				return errors.New("certificate does not match the pin")
			}
			return nil
		},
	}}}
}

func get(t *testing.T, c *http.Client, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestLogServer(t *testing.T) {
	dir := t.TempDir()
	a, ls := logAgent(t, dir)
	nsA, nsB := env.Namespace(t, "logs-a"), env.Namespace(t, "logs-b")
	token := tenantToken(t, nsA, "alice")
	taskA := runningTask(t, a, dir, nsA, "hello", "one\ntwo\nthree\n")
	taskB := runningTask(t, a, dir, nsB, "secret", "not yours\n")
	c := pinnedClient(ls.CertSHA256())
	base := ls.Endpoint() + "/logs/"

	t.Run("endpoint recorded with RUNNING", func(t *testing.T) {
		if taskA.Status.LogEndpoint != ls.Endpoint() || taskA.Status.LogCertSHA256 != ls.CertSHA256() {
			t.Errorf("status.logEndpoint %q, logCertSHA256 %q; want %q, %q",
				taskA.Status.LogEndpoint, taskA.Status.LogCertSHA256, ls.Endpoint(), ls.CertSHA256())
		}
		if !strings.HasPrefix(ls.Endpoint(), "https://127.0.0.1:") {
			t.Errorf("endpoint %s", ls.Endpoint())
		}
	})
	t.Run("reads its own namespace", func(t *testing.T) {
		if code, body := get(t, c, base+nsA+"/hello/stdout", token); code != 200 || body != "one\ntwo\nthree\n" {
			t.Errorf("got %d %q", code, body)
		}
		if code, body := get(t, c, base+nsA+"/hello/stdout?tail=2", token); code != 200 || body != "two\nthree\n" {
			t.Errorf("tail=2: got %d %q", code, body)
		}
		if code, body := get(t, c, base+nsA+"/hello/stderr", token); code != 404 || !strings.Contains(body, "has no stderr") {
			t.Errorf("missing stderr: got %d %q", code, body)
		}
	})
	t.Run("refused in another namespace", func(t *testing.T) {
		code, body := get(t, c, base+nsB+"/secret/stdout", token)
		want := `user "system:serviceaccount:` + nsA + `:alice" cannot get tasks/log`
		if code != 403 || !strings.Contains(body, want) || !strings.Contains(body, `namespace "`+nsB+`"`) {
			t.Errorf("got %d %q, want 403 with %q", code, body, want)
		}
		// Unauthorized callers learn nothing about which tasks exist.
		if code, _ := get(t, c, base+nsB+"/no-such-task/stdout", token); code != 403 {
			t.Errorf("unknown task in a forbidden namespace: %d, want 403", code)
		}
		_ = taskB
	})
	t.Run("bad or missing token", func(t *testing.T) {
		if code, body := get(t, c, base+nsA+"/hello/stdout", "not-a-token"); code != 401 || !strings.Contains(body, "not accepted") {
			t.Errorf("bad token: got %d %q", code, body)
		}
		if code, body := get(t, c, base+nsA+"/hello/stdout", ""); code != 401 || !strings.Contains(body, "bearer token is required") {
			t.Errorf("no token: got %d %q", code, body)
		}
	})
	t.Run("path tricks", func(t *testing.T) {
		for path, want := range map[string]int{
			nsA + "/hello/passwd":           404,
			nsA + "/..%2F..%2Fetc/stdout":   400,
			nsA + "/hello/..%2F..%2Fpasswd": 404,
			nsA + "/Hello/stdout":           400,
			nsA + "/no-such-task/stdout":    404,
		} {
			if code, body := get(t, c, base+path, token); code != want {
				t.Errorf("%s: got %d %q, want %d", path, code, body, want)
			}
		}
		// A task may replace its stdout with a link to a file it cannot read.
		task := runningTask(t, a, dir, nsA, "linker", "")
		out := filepath.Join(dir, string(task.UID), "stdout")
		os.Remove(out)
		if err := os.Symlink("/etc/hostname", out); err != nil {
			t.Fatal(err)
		}
		if code, body := get(t, c, base+nsA+"/linker/stdout", token); code != 500 || !strings.Contains(body, "symbolic link") {
			t.Errorf("symlinked stdout: got %d %q", code, body)
		}
	})
	t.Run("follow", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+nsA+"/hello/stdout?follow=1&tail=1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		readLine := func() string {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading the followed log: %v (got %q)", err, l)
			}
			return l
		}
		if l := readLine(); l != "three\n" {
			t.Fatalf("first line %q", l)
		}
		f, err := os.OpenFile(filepath.Join(dir, string(taskA.UID), "stdout"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		f.WriteString("four\n")
		if l := readLine(); l != "four\n" {
			t.Fatalf("appended line %q", l)
		}
		// The stream ends with the task, after what it wrote last.
		f.WriteString("five\n")
		setKill(t, taskA)
		waitState(t, taskA, agorav1.TaskKilled, 20*time.Second)
		rest, err := io.ReadAll(r)
		if err != nil || string(rest) != "five\n" {
			t.Errorf("after the end: %q, %v", rest, err)
		}
	})
}
