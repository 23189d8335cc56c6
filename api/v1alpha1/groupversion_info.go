// Package v1alpha1 holds Agora's API: Mesos' two-level scheduling as
// Kubernetes objects.
//
// A Framework subscribes to roles; the master offers it agents' resources as
// Offer objects in its namespace; the framework launches Tasks naming an
// offer, then answers the offer once (accept or decline). Agents (one per
// node) report their resources and run bound Tasks. ResourceRoles give roles
// weights and quota.
//
// +kubebuilder:object:generate=true
// +groupName=scheduling.agora.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version of Agora's objects.
	GroupVersion = schema.GroupVersion{Group: "scheduling.agora.dev", Version: "v1alpha1"}

	// SchemeBuilder registers Agora's types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds Agora's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
