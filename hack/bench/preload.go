package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// preloadLabel marks the finished Tasks --preload-finished writes; the
// observer leaves them out of every figure.
const preloadLabel = "bench.agora.dev/preloaded"

// preloadFinished writes n Tasks straight into the TASK_FINISHED state,
// spread over the frameworks' namespaces and the agents, once the agents
// run and before the master starts. They never ran: they stand for the history a master
// holds (finished Tasks kept until their framework acknowledges them), so
// that its memory can be sized with 100,000 of them without running
// 100,000 tasks through 10,000 agents' watches, which takes hours here.
// Each costs two writes (create, status), made before the phase's counters.
// The agents do not see them: they are never listed in an Assignment.
func preloadFinished(ctx context.Context, cc client.Client, c *config, n int) error {
	if n <= 0 {
		return nil
	}
	logf("preloading %d finished tasks", n)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c.concurrency)
	for range c.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := preloadOne(ctx, cc, c, i); err != nil {
					errs <- fmt.Errorf("preloading task %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	logf("preloaded %d finished tasks in %s", n, time.Since(start).Round(time.Second))
	return ctx.Err()
}

func preloadOne(ctx context.Context, cc client.Client, c *config, i int) error {
	fw := i % c.frameworks
	shell := "sleep 1"
	t := &agorav1.Task{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: fmt.Sprintf("bench-fw-%d", fw), Name: fmt.Sprintf("preloaded-%06d", i),
			Labels: map[string]string{preloadLabel: "true"},
		},
		Spec: agorav1.TaskSpec{
			FrameworkName: fmt.Sprintf("bench-%d", fw),
			OfferRef:      agorav1.OfferReference{Name: "preloaded", UID: "preloaded"},
			AgentName:     fmt.Sprintf("sim-%d", i%c.agents),
			Resources:     agorav1.Resources{CPUs: &c.cpu, Mem: &c.mem},
			Command:       agorav1.CommandInfo{Shell: &shell},
		},
	}
	if err := cc.Create(ctx, t); err != nil {
		return err
	}
	now := metav1.Now()
	exit := int32(0)
	t.Status = agorav1.TaskStatus{
		State: agorav1.TaskFinished, Source: agorav1.SourceExecutor, Role: "*",
		BindTime: &now, StartTime: &now, CompletionTime: &now, ExitCode: &exit,
	}
	return cc.Status().Update(ctx, t)
}
