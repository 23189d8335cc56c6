// Package controllers holds Agora's master: the controllers that turn the
// allocator's decisions into Offers and keep Frameworks, Tasks and Agents true.
package controllers

// The master's permissions; `make manifests` turns these markers into
// config/rbac/master/role.yaml. Keep them least-privilege: the master never
// writes a Framework's spec; of an Agent's status it only writes the Ready
// condition when it judges the agent unreachable or back; of a Task's spec
// it only sets spec.kill when it tears a framework down (docs/design.md).

// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=frameworks,verbs=get;list;watch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=frameworks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=offers,verbs=get;list;watch;create;delete
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=offers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=tasks,verbs=get;list;watch;update;patch;delete
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=tasks/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=agents,verbs=get;list;watch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=agents/status,verbs=get;patch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=assignments,verbs=get;list;watch;create;update
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=resourceroles,verbs=get;list;watch
// +kubebuilder:rbac:groups=scheduling.agora.dev,resources=resourceroles/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=system,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="";events.k8s.io,resources=events,verbs=create;patch
