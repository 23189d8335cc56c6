package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/examples/batch"
	"github.com/agora-sched/agora/examples/service"
	b "github.com/agora-sched/agora/internal/builders"
	"github.com/agora-sched/agora/pkg/sdk"
)

func sdkConfig(ns, name string) sdk.Config {
	return sdk.Config{RESTConfig: env.Config, Namespace: ns, Name: name, RenewInterval: time.Second}
}

// TestFrameworks runs the batch and service frameworks side by side on one
// master and three simulated agents, then partitions an agent.
func TestFrameworks(t *testing.T) {
	agents := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The service runs throughout, sharing the cluster with the batches.
	svcNS := env.Namespace(t, "e2e-service")
	svcCtx, stopSvc := context.WithCancel(ctx)
	svcDone := make(chan error, 1)
	var svcOut bytes.Buffer
	go func() {
		svcDone <- service.Run(svcCtx, sdkConfig(svcNS, "web"), service.Options{
			Instances: 3, Command: sdk.Shell("sleep 3600"), Resources: b.Res("500m", "64Mi"), Ports: 1, Out: &syncWriter{w: &svcOut},
		})
	}()
	defer func() {
		stopSvc()
		if err := <-svcDone; err != nil {
			t.Errorf("service: %v", err)
		}
		if t.Failed() {
			t.Logf("service output:\n%s", svcOut.String())
		}
	}()

	t.Run("batch finishes every task", func(t *testing.T) {
		ns := env.Namespace(t, "e2e-batch")
		cmds := make([]string, 20)
		for i := range cmds {
			cmds[i] = "sleep 0.2"
		}
		s, err := batch.Run(ctx, sdkConfig(ns, "jobs"), batch.Options{Commands: cmds, Resources: b.Res("1", "128Mi"), Retries: 2, Teardown: true})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		s.Print(&out)
		if s.Failed() != 0 || s.ByState()[agorav1.TaskFinished] != 20 {
			t.Fatalf("summary:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "20 tasks: TASK_FINISHED 20") || !strings.Contains(out.String(), "exit codes: 0×20") {
			t.Errorf("summary:\n%s", out.String())
		}
		// Acknowledged and torn down: nothing is left behind.
		var tasks agorav1.TaskList
		if err := env.Client.List(ctx, &tasks, client.InNamespace(ns)); err != nil || len(tasks.Items) != 0 {
			t.Errorf("%d tasks left (%v), want 0", len(tasks.Items), err)
		}
	})

	t.Run("batch reports failures", func(t *testing.T) {
		ns := env.Namespace(t, "e2e-batch-fail")
		s, err := batch.Run(ctx, sdkConfig(ns, "failing"), batch.Options{
			Commands: []string{"false", "false"}, Resources: b.Res("100m", "16Mi"),
			Annotations: map[string]string{sim.AnnotationExitCode: "3"},
		})
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		s.Print(&out)
		if s.Failed() != 2 || !strings.Contains(out.String(), "exit codes: 3×2") || !strings.Contains(out.String(), "TASK_FAILED") {
			t.Errorf("summary:\n%s", out.String())
		}
	})

	t.Run("service keeps K instances spread and relaunches lost ones", func(t *testing.T) {
		running := func() map[string]string { // task -> agent
			var tasks agorav1.TaskList
			if err := env.Client.List(ctx, &tasks, client.InNamespace(svcNS)); err != nil {
				t.Fatal(err)
			}
			out := map[string]string{}
			for _, tk := range tasks.Items {
				if tk.Status.State == agorav1.TaskRunning {
					out[tk.Name] = tk.Spec.AgentName
				}
			}
			return out
		}
		eventually(t, time.Minute, "3 instances running on 3 agents", func() bool {
			r := running()
			return len(r) == 3 && len(distinct(r)) == 3
		})
		var victim string
		for _, a := range running() {
			victim = a
			break
		}
		if err := agents.Pause(victim); err != nil {
			t.Fatal(err)
		}
		// Later tests get the agent back; its lost instance is killed as an extra.
		defer func() { _ = agents.Resume(victim) }()
		eventually(t, time.Minute, fmt.Sprintf("3 instances running again without %s", victim), func() bool {
			r := running()
			if len(r) != 3 {
				return false
			}
			for _, a := range r {
				if a == victim {
					return false
				}
			}
			return true
		})
		if !strings.Contains(svcOut.String(), "TASK_LOST") && !strings.Contains(svcOut.String(), "TASK_UNREACHABLE") {
			t.Errorf("the service did not see the instance lost:\n%s", svcOut.String())
		}
	})
}

func distinct(m map[string]string) map[string]bool {
	out := map[string]bool{}
	for _, v := range m {
		out[v] = true
	}
	return out
}
