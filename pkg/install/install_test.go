package install_test

import (
	"context"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/internal/testenv"
	"github.com/agora-sched/agora/pkg/install"
)

var env *testenv.Env

func TestMain(m *testing.M) { testenv.Main(m, &env) }

// TestFrameworkRole: the ClusterRole that tenants' RoleBindings name is
// installed under the name config/default gives it, with the rules that
// let a framework launch Tasks and answer Offers, and applying it again
// changes nothing.
func TestFrameworkRole(t *testing.T) {
	ctx := context.Background()
	for range 2 {
		if err := install.FrameworkRole(ctx, env.Config); err != nil {
			t.Fatal(err)
		}
	}
	var role rbacv1.ClusterRole
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "agora-framework"}, &role); err != nil {
		t.Fatal(err)
	}
	allows := func(resource, verb string) bool {
		for _, r := range role.Rules {
			if slices.Contains(r.APIGroups, "scheduling.agora.dev") && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
		return false
	}
	for _, want := range [][2]string{{"tasks", "create"}, {"offers", "patch"}, {"frameworks", "create"}} {
		if !allows(want[0], want[1]) {
			t.Errorf("ClusterRole agora-framework does not allow %s %s: %+v", want[1], want[0], role.Rules)
		}
	}
	if allows("tasks/status", "patch") {
		t.Error("ClusterRole agora-framework lets frameworks write Task status, which only the master and agents may")
	}
}
