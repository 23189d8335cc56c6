package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// AssignmentSpec lists the Tasks the master has bound to one agent (Mesos'
// RunTask and KillTask messages, as state). The master alone writes it, and
// listing a Task here is what binds it.
type AssignmentSpec struct {
	// Tasks bound to the agent, until they end.
	// Entries of ended or deleted Tasks may linger until the next write.
	// +optional
	// +listType=map
	// +listMapKey=uid
	Tasks []AssignedTask `json:"tasks,omitempty"`
}

// AssignedTask names one Task bound to the agent.
type AssignedTask struct {
	// Namespace and Name of the Task; the agent reads the Task by them.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// UID of the Task: a Task recreated under the same name is another task.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MinLength=1
	UID types.UID `json:"uid"`
	// BindTime is when the master bound the task; the agent copies it, with
	// Role, into the Task's status with its first write.
	// +optional
	BindTime *metav1.Time `json:"bindTime,omitempty"`
	// Role of the offer the task was bound on.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	Role string `json:"role,omitempty"`
	// ResourceVersion of the Task when the master bound it. An agent's
	// first read of a plainly bound Task asks for at least this version,
	// which the apiserver's watch cache holds already; asking for the
	// Assignment's own version could wait for the cache of Tasks to catch up.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Kill: the Task's spec.kill is set, or the Task was deleted while live.
	// +optional
	Kill bool `json:"kill,omitempty"`
	// Lost: the master marked the task TASK_LOST or TASK_UNREACHABLE. An
	// agent still running it reads the Task again and reports it RUNNING.
	// +optional
	Lost bool `json:"lost,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=asn,categories=agora
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Assignment is the master's list of the Tasks bound to one agent, named
// after the agent. The agent watches its own Assignment by name instead of
// watching Tasks: the apiserver's watch cache indexes watches by name, but
// not by a custom resource's selectable field, so a Task watch per agent
// would see every Task write of the cluster (docs/design.md).
type Assignment struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +optional
	Spec AssignmentSpec `json:"spec,omitempty"`
}

// +kubebuilder:object:root=true

// AssignmentList is a list of Assignments.
type AssignmentList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Assignment `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Assignment{}, &AssignmentList{})
}
