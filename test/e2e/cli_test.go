package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/internal/cli"
)

// agora runs the CLI in-process against the test's apiserver.
func agora(ctx context.Context, args ...string) (string, error) {
	root := cli.NewRootCommand()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

func TestCLIRunTopLogs(t *testing.T) {
	cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t, "e2e-cli")

	out, err := agora(ctx, "run", "--kubeconfig", env.Kubeconfig, "-n", ns, "--name", "hello", "--cpus", "0.5", "--mem", "64Mi", "--", "sleep", "0.2")
	if err != nil {
		t.Fatalf("agora run: %v\n%s", err, out)
	}
	for _, want := range []string{"launched task hello on sim-agent-", "hello TASK_RUNNING", "hello TASK_FINISHED on sim-agent-", "exit 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("agora run output lacks %q:\n%s", want, out)
		}
	}
	// The run acknowledged its task and left its framework suppressed.
	var fw agorav1.Framework
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "agora-run"}, &fw); err != nil || len(fw.Spec.SuppressedRoles) == 0 {
		t.Errorf("framework agora-run: suppressed %v (%v)", fw.Spec.SuppressedRoles, err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "hello"}, &agorav1.Task{}); err == nil {
		t.Error("agora run left its ended task behind")
	}

	// A task no agent can hold waits for an offer until --timeout.
	out, err = agora(ctx, "run", "--kubeconfig", env.Kubeconfig, "-n", ns, "--cpus", "100", "--timeout", "2s", "--", "true")
	if err == nil || !strings.Contains(err.Error(), "no offer with cpus:100") || !strings.Contains(out, "waiting for an offer") {
		t.Errorf("agora run --cpus 100: err = %v, output:\n%s", err, out)
	}

	out, err = agora(ctx, "top", "--once", "--kubeconfig", env.Kubeconfig)
	if err != nil {
		t.Fatalf("agora top: %v\n%s", err, out)
	}
	for _, want := range []string{"agents: 3", "FRAMEWORK", ns + "/agora-run", "sim-agent-0", "sim-agent-2", "CPUS USED/TOTAL"} {
		if !strings.Contains(out, want) {
			t.Errorf("agora top output lacks %q:\n%s", want, out)
		}
	}

	// logs reads the sandbox when it is on this host, and says why not otherwise.
	local := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "stdout"), []byte("hello from the sandbox\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, sandbox := range map[string]string{"local": local, "remote": "/nonexistent/sandboxes/remote", "simulated": "sim://x"} {
		tk := b.Task(ns, name, "fw").OfferRef("o", "uid", "node-9").Obj()
		if err := env.Client.Create(ctx, tk); err != nil {
			t.Fatal(err)
		}
		// The master drops this task (its offer is made up) meanwhile: retry.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := env.Client.Get(ctx, client.ObjectKeyFromObject(tk), tk); err != nil {
				return err
			}
			if tk.Status.State == "" {
				tk.Status.State = agorav1.TaskRunning
			}
			tk.Status.Sandbox = sandbox
			return env.Client.Status().Update(ctx, tk)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	logs := func(task string) (string, error) {
		return agora(ctx, "logs", "--kubeconfig", env.Kubeconfig, "-n", ns, task)
	}
	if out, err := logs("local"); err != nil || out != "hello from the sandbox\n" {
		t.Errorf("agora logs local = %q, %v", out, err)
	}
	for task, want := range map[string]string{"remote": "is not on this host", "simulated": "simulated agent", "nope": `no task "nope"`} {
		if _, err := logs(task); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("agora logs %s: err = %v, want it to say %q", task, err, want)
		}
	}
}
