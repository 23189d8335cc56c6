package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AgentSpec is written by operators.
type AgentSpec struct {
	// Unschedulable drains the agent: no new offers are made for it (Mesos
	// maintenance DRAIN); its tasks keep running.
	// +optional
	Unschedulable bool `json:"unschedulable,omitempty"`
}

// Condition types of an Agent.
const (
	// AgentConditionReady is True while the agent heartbeats and can run
	// tasks. The agent sets it True when it registers; the master sets it
	// Unknown when it judges the agent unreachable, and True again when the
	// agent heartbeats again.
	AgentConditionReady = "Ready"
)

// AgentStatus is written by the agent itself (summary fields coalesced, at
// most one write per 10 s), except the Ready condition's reachability,
// which the master writes. Its heartbeats are a Lease of the same name in
// the agent namespace and its status writes.
type AgentStatus struct {
	// Hostname of the node.
	// +optional
	Hostname string `json:"hostname,omitempty"`

	// Total resources Agora may use on this node (Kubernetes pods' requests
	// already taken out).
	// +optional
	Total Resources `json:"total,omitempty"`

	// Reserved are static reservations: resources offered only to a role.
	// +optional
	// +listType=map
	// +listMapKey=role
	// +kubebuilder:validation:MaxItems=8
	Reserved []RoleResources `json:"reserved,omitempty"`

	// Allocated are the resources of the tasks the agent admitted.
	// +optional
	Allocated Resources `json:"allocated,omitempty"`

	// Attributes of the agent, for placement.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Attributes []Attribute `json:"attributes,omitempty"`

	// Tasks counts the tasks the agent runs.
	// +optional
	Tasks int32 `json:"tasks,omitempty"`

	// CgroupVersion the agent isolates tasks with: v1 or v2 ("simulated" for
	// a simulated agent).
	// +optional
	CgroupVersion string `json:"cgroupVersion,omitempty"`

	// Version of the agent binary.
	// +optional
	Version string `json:"version,omitempty"`

	// RegisteredTime is when the agent first registered.
	// +optional
	RegisteredTime *metav1.Time `json:"registeredTime,omitempty"`

	// Conditions: Ready (True: registered and heartbeating; Unknown: the
	// master has had no heartbeat for its agent timeout).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=16
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=agt,categories=agora
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="CPUs",type=string,JSONPath=`.status.total.cpus`
// +kubebuilder:printcolumn:name="Mem",type=string,JSONPath=`.status.total.mem`
// +kubebuilder:printcolumn:name="Allocated",type=string,JSONPath=`.status.allocated.cpus`,description="CPUs of admitted tasks"
// +kubebuilder:printcolumn:name="Tasks",type=integer,JSONPath=`.status.tasks`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Agent is one node's agent (Mesos' agent): the resources it offers and the
// tasks it runs. It is named after its node.
type Agent struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec AgentSpec `json:"spec,omitempty"`
	// +optional
	Status AgentStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// AgentList is a list of Agents.
type AgentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Agent `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Agent{}, &AgentList{})
}
