package install

import (
	"bytes"
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
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
	u := &unstructured.Unstructured{}
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(config.FrameworkRole), 4096).Decode(&u.Object); err != nil {
		return fmt.Errorf("decoding the framework ClusterRole: %w", err)
	}
	u.SetName(FrameworkRoleName)
	if err := c.Patch(ctx, u, client.Apply, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying ClusterRole %s: %w", FrameworkRoleName, err)
	}
	return nil
}
