package v1alpha1

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultRoleObjectName is the ResourceRole that configures Mesos' default
// role "*" (a "*" is not a valid object name).
const DefaultRoleObjectName = "default"

// RoleName maps a ResourceRole's object name to its Mesos role name: dots
// separate the levels of a hierarchical role ("eng.web" is role "eng/web"),
// and "default" is the role "*".
func RoleName(objectName string) string {
	if objectName == DefaultRoleObjectName {
		return "*"
	}
	return strings.ReplaceAll(objectName, ".", "/")
}

// RoleObjectName is the inverse of RoleName.
func RoleObjectName(role string) string {
	if role == "*" {
		return DefaultRoleObjectName
	}
	return strings.ReplaceAll(role, "/", ".")
}

// ResourceRoleSpec sets a role's weight and quota, and who may use it.
// +kubebuilder:validation:XValidation:rule="!has(self.guarantee) || !has(self.limit) || !has(self.guarantee.cpus) || !has(self.limit.cpus) || quantity(string(self.guarantee.cpus)).compareTo(quantity(string(self.limit.cpus))) <= 0",message="quota guarantee of cpus must not exceed the limit"
// +kubebuilder:validation:XValidation:rule="!has(self.guarantee) || !has(self.limit) || !has(self.guarantee.mem) || !has(self.limit.mem) || quantity(string(self.guarantee.mem)).compareTo(quantity(string(self.limit.mem))) <= 0",message="quota guarantee of mem must not exceed the limit"
// +kubebuilder:validation:XValidation:rule="!has(self.namespaces) || !has(self.namespaceSelector)",message="set namespaces or namespaceSelector, not both"
type ResourceRoleSpec struct {
	// Weight of the role in DRF: its share is divided by it. Defaults to 1.
	// +optional
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="weight must be greater than 0"
	Weight *resource.Quantity `json:"weight,omitempty"`

	// Guarantee is the quota the role is offered first, before fair sharing.
	// +optional
	Guarantee *Resources `json:"guarantee,omitempty"`

	// Limit is the most the role may be allocated; absent kinds are unlimited.
	// +optional
	Limit *Resources `json:"limit,omitempty"`

	// Namespaces whose frameworks may use this role. Empty with no selector
	// means none but those the master's --open-roles flag allows.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	// +kubebuilder:validation:items:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelector picks the namespaces whose frameworks may use this role.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist'])",message="namespaceSelector.matchExpressions[].operator must be In, NotIn, Exists or DoesNotExist"
	// +kubebuilder:validation:XValidation:rule="!has(self.matchExpressions) || self.matchExpressions.all(e, !(e.operator in ['In', 'NotIn', 'Exists', 'DoesNotExist']) || (e.operator in ['In', 'NotIn']) == (has(e.values) && size(e.values) > 0))",message="namespaceSelector.matchExpressions[]: In and NotIn need values, Exists and DoesNotExist take none"
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ResourceRoleStatus is written by the master, coalesced.
type ResourceRoleStatus struct {
	// Role is the Mesos role name this object configures.
	// +optional
	Role string `json:"role,omitempty"`
	// Share is the role's weighted dominant share, a decimal string.
	// +optional
	Share string `json:"share,omitempty"`
	// Allocated resources of the role (offered or used), on agents the
	// master can reach (as the share counts them).
	// +optional
	Allocated Resources `json:"allocated,omitempty"`
	// Frameworks counts the frameworks subscribed to the role.
	// +optional
	Frameworks int32 `json:"frameworks,omitempty"`
	// Conditions of the role.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=rrole,categories=agora
// +kubebuilder:printcolumn:name="Role",type=string,JSONPath=`.status.role`
// +kubebuilder:printcolumn:name="Weight",type=string,JSONPath=`.spec.weight`
// +kubebuilder:printcolumn:name="Share",type=string,JSONPath=`.status.share`
// +kubebuilder:printcolumn:name="Frameworks",type=integer,JSONPath=`.status.frameworks`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// ResourceRole gives a Mesos role its weight and quota and says which
// namespaces may use it. Its name is the role with "." for "/"; the object
// named "default" configures the role "*".
type ResourceRole struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec ResourceRoleSpec `json:"spec,omitempty"`
	// +optional
	Status ResourceRoleStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// ResourceRoleList is a list of ResourceRoles.
type ResourceRoleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ResourceRole `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ResourceRole{}, &ResourceRoleList{})
}
