package install

import (
	"context"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/config"
)

// FrameworkRoleName is the frameworks' ClusterRole as config/default
// installs it (namePrefix agora-); tenants' RoleBindings name it.
const FrameworkRoleName = "agora-framework"

// FrameworkRole server-side-applies the ClusterRole that tenants'
// frameworks are bound to, so that onboarding a tenant (docs/install.md)
// works on a cluster given only the CRDs, such as agora local's.
func FrameworkRole(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return err
	}
	u, err := decode(config.FrameworkRole, "the framework ClusterRole")
	if err != nil {
		return err
	}
	u.SetName(FrameworkRoleName)
	return apply(ctx, c, u)
}
