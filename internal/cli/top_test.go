package cli

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
)

func TestRenderTop(t *testing.T) {
	spark := b.Framework("analytics", "spark").Roles("eng", "*").Obj()
	spark.Spec.SuppressedRoles = []string{"*"}
	spark.Status = agorav1.FrameworkStatus{Phase: agorav1.FrameworkActive, DominantShare: "0.250", ActiveTasks: 4, OutstandingOffers: 1,
		Shares: []agorav1.RoleShare{{Role: "eng", Share: "0.250", Allocated: b.Res("4", "8Gi")}, {Role: "*", Share: "0", Allocated: b.Res("500m", "")}}}
	web := b.Framework("web", "marathon").Obj()
	web.Spec.Roles = []string{"*"}
	web.Status = agorav1.FrameworkStatus{Phase: agorav1.FrameworkActive, DominantShare: "0.0625", ActiveTasks: 2,
		Shares: []agorav1.RoleShare{{Role: "*", Share: "0.0625", Allocated: b.Res("1", "512Mi")}}}
	pending := b.Framework("web", "new").Obj()

	n1 := b.Agent("node-1", b.Res("8", "16Gi"))
	n1.Status.Allocated = b.Res("5.5", "8704Mi")
	n1.Status.Tasks = 6
	n1.Status.Conditions = []metav1.Condition{{Type: agorav1.AgentConditionReady, Status: metav1.ConditionTrue}}
	n2 := b.Agent("node-2", b.Res("8", "16Gi"))
	n2.Spec.Unschedulable = true

	eng := agorav1.ResourceRole{ObjectMeta: metav1.ObjectMeta{Name: "eng"}, Spec: agorav1.ResourceRoleSpec{Weight: b.Q("2")}}

	var out strings.Builder
	renderTop(&out, topSnapshot{
		Frameworks: []agorav1.Framework{*web, *pending, *spark},
		Agents:     []agorav1.Agent{*n2, *n1},
		Roles:      []agorav1.ResourceRole{eng},
	})
	want := `frameworks: 3   agents: 2 (1 ready)   cpus: 5.5/16 (34%)   mem: 8.5Gi/32Gi (26%)

FRAMEWORK        PHASE   ROLES (WEIGHT)          SHARE  CPUS  MEM    TASKS  OFFERS
analytics/spark  Active  eng(2),*(1,suppressed)  25.0%  4.5   8Gi    4      1
web/marathon     Active  *(1)                    6.2%   1     512Mi  2      0
web/new          -       -                       -      0     0Mi    0      0

AGENT   READY        CPUS USED/TOTAL  MEM USED/TOTAL    TASKS
node-1  yes          5.5/8 (68%)      8.5Gi/16Gi (53%)  6
node-2  no,draining  0/8 (0%)         0Mi/16Gi (0%)     0
`
	if got := out.String(); got != want {
		t.Errorf("renderTop:\n%s\nwant:\n%s", got, want)
	}
}
