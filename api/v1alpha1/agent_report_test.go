package v1alpha1

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The master's Ready condition is not the agent's report; every other field is.
func TestAgentStatusSameReport(t *testing.T) {
	base := AgentStatus{Hostname: "n1", Tasks: 2,
		Conditions: []metav1.Condition{{Type: AgentConditionReady, Status: metav1.ConditionTrue}}}
	ready := base
	ready.Conditions = []metav1.Condition{{Type: AgentConditionReady, Status: metav1.ConditionUnknown}}
	tasks := base
	tasks.Tasks = 3
	for _, c := range []struct {
		name string
		a, b *AgentStatus
		same bool
	}{
		{"identical", &base, &base, true},
		{"only the conditions differ", &base, &ready, true},
		{"a reported field differs", &base, &tasks, false},
		{"no earlier report", nil, &base, false},
	} {
		if got := c.a.SameReport(c.b); got != c.same {
			t.Errorf("%s: SameReport = %t, want %t", c.name, got, c.same)
		}
	}
}
