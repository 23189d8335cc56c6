package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FrameworkCapability is an optional behaviour a framework declares (Mesos'
// FrameworkInfo.Capability).
// +kubebuilder:validation:Enum=GPU_RESOURCES;PARTITION_AWARE;MULTI_ROLE;REVOCABLE_RESOURCES
type FrameworkCapability string

const (
	// CapabilityGPUResources: the framework may be offered agents that have GPUs.
	CapabilityGPUResources FrameworkCapability = "GPU_RESOURCES"
	// CapabilityPartitionAware: the framework is told TASK_UNREACHABLE and
	// TASK_DROPPED instead of TASK_LOST.
	CapabilityPartitionAware FrameworkCapability = "PARTITION_AWARE"
	// CapabilityMultiRole is implied in Agora; accepted for Mesos familiarity.
	CapabilityMultiRole FrameworkCapability = "MULTI_ROLE"
	// CapabilityRevocableResources is reserved for revocable (oversubscribed) resources.
	CapabilityRevocableResources FrameworkCapability = "REVOCABLE_RESOURCES"
)

// FrameworkSpec is written by the framework (Mesos' SUBSCRIBE).
// +kubebuilder:validation:XValidation:rule="!has(self.suppressedRoles) || self.suppressedRoles.all(r, r in self.roles)",message="suppressedRoles must name roles listed in roles"
type FrameworkSpec struct {
	// Roles the framework subscribes to; resources are offered to it per role.
	// "*" is Mesos' default role. Hierarchical roles are written "eng/web".
	// +optional
	// +listType=set
	// +kubebuilder:default={"*"}
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:Pattern=`^(\*|[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$`
	// +kubebuilder:validation:items:MaxLength=253
	Roles []string `json:"roles,omitempty"`

	// Capabilities the framework declares, e.g. GPU_RESOURCES or PARTITION_AWARE.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	Capabilities []FrameworkCapability `json:"capabilities,omitempty"`

	// FailoverTimeout is how long the framework's scheduler may stay away (its
	// liveness Lease not renewed) before its tasks are killed and it is torn
	// down. Tasks keep running meanwhile. Defaults to 168h.
	// +optional
	// +kubebuilder:default="168h"
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="failoverTimeout must be a duration with a unit, e.g. 30m, 24h or 168h"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || duration(self) >= duration('0s')",message="failoverTimeout must not be negative"
	FailoverTimeout *metav1.Duration `json:"failoverTimeout,omitempty"`

	// LeaseName names the coordination.k8s.io Lease in this namespace that the
	// framework's scheduler renews to show it is connected. Defaults to the
	// framework's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	LeaseName string `json:"leaseName,omitempty"`

	// SuppressedRoles get no offers (Mesos SUPPRESS). Removing a role from
	// this list unsuppresses it; it does not clear decline filters.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=8
	// +kubebuilder:validation:items:MaxLength=253
	SuppressedRoles []string `json:"suppressedRoles,omitempty"`

	// ReviveTime clears every decline filter installed before it (Mesos
	// REVIVE); it does not unsuppress. Set it to the current time to revive.
	// +optional
	ReviveTime *metav1.Time `json:"reviveTime,omitempty"`

	// User is the default user the framework's tasks run as on agents; the
	// agent's policy decides which users are allowed. Agents read only
	// Tasks: the SDK copies it into each Task's command.user that names
	// none; frameworks writing Tasks themselves set command.user.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_-]*[$]?$`
	User string `json:"user,omitempty"`

	// Deactivated stops all offers to the framework (its offers are
	// rescinded) while its tasks keep running.
	// +optional
	Deactivated bool `json:"deactivated,omitempty"`
}

// FrameworkPhase summarises a framework's life.
// +kubebuilder:validation:Enum=Pending;Active;Inactive;TornDown;Rejected
type FrameworkPhase string

const (
	// FrameworkPending: the master has not seen the framework yet.
	FrameworkPending FrameworkPhase = "Pending"
	// FrameworkActive: connected and receiving offers.
	FrameworkActive FrameworkPhase = "Active"
	// FrameworkInactive: its scheduler is away (Lease not renewed) or it is
	// deactivated; no offers, tasks keep running until failoverTimeout.
	FrameworkInactive FrameworkPhase = "Inactive"
	// FrameworkTornDown: failoverTimeout passed; its tasks were killed.
	FrameworkTornDown FrameworkPhase = "TornDown"
	// FrameworkRejected: the framework may not use a role it asked for.
	FrameworkRejected FrameworkPhase = "Rejected"
)

// Condition types of a Framework.
const (
	// FrameworkConditionRegistered is True once the master accepted the framework.
	FrameworkConditionRegistered = "Registered"
	// FrameworkConditionConnected is True while its scheduler renews its Lease.
	FrameworkConditionConnected = "Connected"
)

// RoleShare is a framework's or role's dominant share in one role.
type RoleShare struct {
	// Role name.
	Role string `json:"role"`
	// Share is the weighted dominant share, a decimal string such as "0.250".
	Share string `json:"share"`
	// Allocated resources in this role, offered or used by tasks, on
	// agents the master can reach (as the share counts them).
	// +optional
	Allocated Resources `json:"allocated,omitempty"`
}

// FrameworkStatus is written by the master, coalesced (at most one write per
// framework per 10 s for shares and counts).
type FrameworkStatus struct {
	// Phase is the framework's state.
	// +optional
	Phase FrameworkPhase `json:"phase,omitempty"`

	// FrameworkID is the Mesos-style framework ID (the object's UID).
	// +optional
	FrameworkID string `json:"frameworkID,omitempty"`

	// RegisteredTime is when the master first accepted the framework.
	// +optional
	RegisteredTime *metav1.Time `json:"registeredTime,omitempty"`

	// TornDownTime is when the framework was torn down.
	// +optional
	TornDownTime *metav1.Time `json:"tornDownTime,omitempty"`

	// DominantShare is the largest weighted dominant share over its roles,
	// a decimal string such as "0.250".
	// +optional
	DominantShare string `json:"dominantShare,omitempty"`

	// Shares per role.
	// +optional
	// +listType=map
	// +listMapKey=role
	// +kubebuilder:validation:MaxItems=8
	Shares []RoleShare `json:"shares,omitempty"`

	// ActiveTasks counts tasks not yet in a terminal state.
	// +optional
	ActiveTasks int32 `json:"activeTasks,omitempty"`

	// TaskCounts counts tasks by state.
	// +optional
	TaskCounts map[string]int32 `json:"taskCounts,omitempty"`

	// OutstandingOffers counts offers not yet answered.
	// +optional
	OutstandingOffers int32 `json:"outstandingOffers,omitempty"`

	// ObservedGeneration is the spec generation the master acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Registered, Connected.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fw,categories=agora
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Roles",type=string,JSONPath=`.spec.roles`
// +kubebuilder:printcolumn:name="Share",type=string,JSONPath=`.status.dominantShare`
// +kubebuilder:printcolumn:name="Tasks",type=integer,JSONPath=`.status.activeTasks`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Framework is a scheduler that receives resource offers (Mesos' framework).
// Applying it is Mesos' SUBSCRIBE.
type Framework struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec FrameworkSpec `json:"spec,omitempty"`
	// +optional
	Status FrameworkStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// FrameworkList is a list of Frameworks.
type FrameworkList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Framework `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Framework{}, &FrameworkList{})
}
