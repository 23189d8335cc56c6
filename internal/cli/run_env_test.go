package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/internal/testenv"
)

// TestRunStopsWhenNoOfferCanHelp: agora run exits with what to fix, instead
// of waiting for ever, when the master rejected the framework, or when the
// apiserver refuses the Task itself (its name is taken), which every later
// offer would repeat. No master runs: the test writes the Framework's
// status and the Offer as the master would.
func TestRunStopsWhenNoOfferCanHelp(t *testing.T) {
	env := startControlPlane(t)
	ctx := context.Background()
	ns := env.Namespace(t, "run")

	// run is agora run against env; the deadline only bounds a regression.
	run := func(args ...string) (string, error) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		root := NewRootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"run", "--kubeconfig", env.Kubeconfig, "-n", ns}, args...))
		err := root.ExecuteContext(rctx)
		return out.String(), err
	}

	t.Run("rejected framework", func(t *testing.T) {
		fw := b.Framework(ns, "rej").Roles("secret").Obj()
		must(t, env.Client.Create(ctx, fw))
		fw.Status.Phase = agorav1.FrameworkRejected
		meta.SetStatusCondition(&fw.Status.Conditions, metav1.Condition{
			Type: "Registered", Status: metav1.ConditionFalse, Reason: "RoleNotAllowed",
			Message: `role "secret" is not open to every namespace: create ResourceRole "secret"`,
		})
		must(t, env.Client.Status().Update(ctx, fw))
		start := time.Now()
		out, err := run("--framework", "rej", "--", "true")
		if err == nil {
			t.Fatalf("agora run on a rejected framework succeeded:\n%s", out)
		}
		for _, want := range []string{"the master rejected framework " + ns + "/rej", `create ResourceRole "secret"`} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("agora run took %s to give up", d)
		}
	})

	t.Run("task name taken", func(t *testing.T) {
		must(t, env.Client.Create(ctx, b.Task(ns, "taken", "other").OfferRef("o", "uid-1", "node-1").Obj()))
		offer := b.Offer(ns, "taker-node-1", "taker", "node-1").Resources(b.Res("1", "1Gi")).Obj()
		must(t, env.Client.Create(ctx, offer))
		out, err := run("--framework", "taker", "--name", "taken", "--", "true")
		if err == nil || !strings.Contains(err.Error(), "a Task named taken already exists") || !strings.Contains(err.Error(), "choose another --name") {
			t.Fatalf("err = %v, want it to say the name is taken and what to do; output:\n%s", err, out)
		}
	})
}

// startControlPlane starts a control plane of the test's own, stopped when
// the test ends; -short skips the test instead.
func startControlPlane(t *testing.T) *testenv.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return env
}
