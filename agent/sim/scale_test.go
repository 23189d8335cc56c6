package sim_test

import (
	"context"
	"os"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	"github.com/agora-sched/agora/agent/sim"
)

// TestScaleStart starts AGORA_SIM_AGENTS agents (skipped when unset), e.g.
//
//	AGORA_SIM_AGENTS=1000 go test ./agent/sim -run TestScaleStart -v
func TestScaleStart(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("AGORA_SIM_AGENTS"))
	if n <= 0 {
		t.Skip("set AGORA_SIM_AGENTS to run")
	}
	leaseNS := env.Namespace(t, "agora-system")
	start := time.Now()
	c, err := sim.Start(context.Background(), env.Config, sim.Options{Count: n, NamePrefix: "scale", Namespace: leaseNS})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	t.Logf("%d agents registered and synced in %s; %d goroutines", n, time.Since(start), goruntime.NumGoroutine())
}
