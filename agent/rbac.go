// Package agent holds Agora's node agent: it reports the node's resources,
// admits the Tasks bound to it and runs them in cgroups.
package agent

// The agent's permissions; `make manifests` turns these markers into
// config/rbac/agent/role.yaml. A ValidatingAdmissionPolicy further limits an
// agent to its own Agent, Lease and Tasks (as NodeRestriction does for kubelet).

// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=agents,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=agents/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=tasks,verbs=get
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=assignments,verbs=get;list;watch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=system,resources=leases,verbs=get;create;update;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create
