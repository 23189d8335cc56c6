package cli

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/internal/testenv"
)

// TestRemoveStaleAgents: agora local deletes the Agents an earlier run
// registered that this run will not run (here: real agents before a
// --simulated run), and keeps its own.
func TestRemoveStaleAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer env.Stop()
	ctx := context.Background()
	for _, name := range []string{"local-agent-1", "local-agent-2", "local-sim-0", "local-sim-1"} {
		must(t, env.Client.Create(ctx, &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: name}}))
	}
	var logged []string
	step := func(f string, args ...any) { logged = append(logged, f) }
	keep := localAgentNames(&localOptions{agents: 2, simulated: true})
	must(t, removeStaleAgents(ctx, env.Client, keep, step))
	var agents agorav1.AgentList
	must(t, env.Client.List(ctx, &agents))
	var left []string
	for _, a := range agents.Items {
		if a.DeletionTimestamp == nil {
			left = append(left, a.Name)
		}
	}
	slices.Sort(left)
	if !slices.Equal(left, []string{"local-sim-0", "local-sim-1"}) {
		t.Errorf("agents left: %v, want the simulated run's own", left)
	}
	if len(logged) != 2 {
		t.Errorf("logged %d removals, want 2", len(logged))
	}
	if got := localAgentNames(&localOptions{agents: 2}); !got["local-agent-1"] || !got["local-agent-2"] || len(got) != 2 {
		t.Errorf("real agents' names = %v", got)
	}
}
