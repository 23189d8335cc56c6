package v1alpha1

import "k8s.io/apimachinery/pkg/api/equality"

// SameReport says whether s and o hold the same report of the agent's:
// every field but the conditions, whose Ready the master writes too. The
// master counts a change of the report as the agent's heartbeat, and the
// agent leaves out a Lease renewal on the strength of one, so both sides
// judge it with this one comparison (docs/design.md, Liveness).
func (s *AgentStatus) SameReport(o *AgentStatus) bool {
	if s == nil || o == nil {
		return s == o
	}
	a, b := *s, *o
	a.Conditions, b.Conditions = nil, nil
	return equality.Semantic.DeepEqual(&a, &b)
}
