package v1alpha1

import "k8s.io/apimachinery/pkg/api/resource"

// Resources is a set of Mesos resources: the scalars cpus, mem, disk and gpus,
// and port ranges. An absent scalar means zero.
type Resources struct {
	// CPUs, e.g. "2", "0.5" or "500m". Like Mesos, Agora keeps 3 decimal places:
	// finer values are rounded up to the next thousandth.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!quantity(string(self)).isLessThan(quantity('0'))",message="cpus must not be negative"
	CPUs *resource.Quantity `json:"cpus,omitempty"`

	// Mem is memory in bytes with Kubernetes suffixes, e.g. "512Mi" or "2Gi".
	// A Task's mem is its hard memory limit; a Task with none runs under
	// Mesos' minimum, 32Mi.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!quantity(string(self)).isLessThan(quantity('0'))",message="mem must not be negative"
	Mem *resource.Quantity `json:"mem,omitempty"`

	// Disk is scratch disk in bytes with Kubernetes suffixes, e.g. "1Gi".
	// +optional
	// +kubebuilder:validation:XValidation:rule="!quantity(string(self)).isLessThan(quantity('0'))",message="disk must not be negative"
	Disk *resource.Quantity `json:"disk,omitempty"`

	// GPUs is a whole number of GPUs; GPUs are never shared.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!quantity(string(self)).isLessThan(quantity('0'))",message="gpus must not be negative"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isInteger()",message="gpus must be a whole number: GPUs are not shared"
	GPUs *resource.Quantity `json:"gpus,omitempty"`

	// Ports are ranges of TCP/UDP ports, sorted and not overlapping, e.g.
	// [{begin: 31000, end: 31009}].
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.map(r, r.begin).isSorted()",message="port ranges must be sorted by begin"
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.all(b, a == b || a.end < b.begin || b.end < a.begin))",message="port ranges must not overlap"
	Ports []PortRange `json:"ports,omitempty"`
}

// PortRange is an inclusive range of ports.
// +kubebuilder:validation:XValidation:rule="self.begin <= self.end",message="a port range's begin must not exceed its end"
type PortRange struct {
	// Begin is the first port of the range.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Begin int32 `json:"begin"`

	// End is the last port of the range (inclusive).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	End int32 `json:"end"`
}

// Attribute is an agent attribute that frameworks use for placement
// (Mesos' text, scalar and range attributes). Exactly one value is set.
// +kubebuilder:validation:XValidation:rule="[has(self.text), has(self.scalar), has(self.ranges)].filter(x, x).size() == 1",message="an attribute must set exactly one of text, scalar or ranges"
type Attribute struct {
	// Name of the attribute, e.g. "rack" or "zone".
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	Name string `json:"name"`

	// Text value.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Text *string `json:"text,omitempty"`

	// Scalar value.
	// +optional
	Scalar *resource.Quantity `json:"scalar,omitempty"`

	// Ranges value.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Ranges []PortRange `json:"ranges,omitempty"`
}

// RoleResources are resources reserved for one role.
type RoleResources struct {
	// Role that the resources are reserved for.
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(/[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +kubebuilder:validation:MaxLength=253
	Role string `json:"role"`

	// Resources reserved for the role.
	Resources Resources `json:"resources"`
}
