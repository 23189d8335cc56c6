package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OfferAnswerType is how a framework answers an offer.
// +kubebuilder:validation:Enum=Accept;Decline
type OfferAnswerType string

const (
	// OfferAccept: bind the Tasks that name this offer; return the rest.
	OfferAccept OfferAnswerType = "Accept"
	// OfferDecline: return everything not used by Tasks already bound.
	OfferDecline OfferAnswerType = "Decline"
)

// DefaultRefuseSeconds is Mesos' default decline filter.
const DefaultRefuseSeconds = 5

// OfferAnswer is the framework's single answer to an offer (Mesos' ACCEPT or
// DECLINE call).
type OfferAnswer struct {
	// Type is Accept or Decline.
	Type OfferAnswerType `json:"type"`

	// RefuseSeconds filters the unused resources of this agent from this
	// framework for that long (Mesos' Filters.refuse_seconds). Defaults to 5.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=31536000
	RefuseSeconds *int32 `json:"refuseSeconds,omitempty"`

	// Tasks is how many Tasks the framework created on this offer before
	// answering. With it the master settles once it has seen that many
	// Tasks naming the offer, without listing them from the apiserver; a
	// Task it has not seen when it settles is dropped, as one created
	// after the answer is. Without it (or while the master has seen fewer)
	// the master lists them with a consistent read.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Tasks *int32 `json:"tasks,omitempty"`
}

// OfferSpec is written by the master when it makes the offer; only Answer is
// written later, once, by the framework.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.answer) || (has(self.answer) && self.answer == oldSelf.answer)",message="an offer is answered exactly once: spec.answer cannot be changed or removed"
// +kubebuilder:validation:XValidation:rule="self.frameworkName == oldSelf.frameworkName && self.agentName == oldSelf.agentName && self.role == oldSelf.role",message="an offer's framework, agent and role are immutable"
// +kubebuilder:validation:XValidation:rule="self.resources == oldSelf.resources",message="an offer's resources are immutable"
// +kubebuilder:validation:XValidation:rule="self.expiresAt == oldSelf.expiresAt",message="an offer's expiresAt is immutable: only the master decides when an offer expires"
// +kubebuilder:validation:XValidation:rule="has(self.hostname) == has(oldSelf.hostname) && (!has(self.hostname) || self.hostname == oldSelf.hostname) && has(self.attributes) == has(oldSelf.attributes) && (!has(self.attributes) || self.attributes == oldSelf.attributes)",message="an offer's hostname and attributes are immutable"
type OfferSpec struct {
	// FrameworkName is the Framework (in this namespace) the offer is for.
	// +kubebuilder:validation:MinLength=1
	FrameworkName string `json:"frameworkName"`

	// AgentName is the Agent whose resources are offered.
	// +kubebuilder:validation:MinLength=1
	AgentName string `json:"agentName"`

	// Hostname of the agent's node.
	// +optional
	Hostname string `json:"hostname,omitempty"`

	// Role the resources are offered in.
	// +kubebuilder:validation:MinLength=1
	Role string `json:"role"`

	// Resources offered.
	Resources Resources `json:"resources"`

	// Attributes of the agent, for placement (frameworks cannot read Agents).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Attributes []Attribute `json:"attributes,omitempty"`

	// ExpiresAt is when the master withdraws the offer if it is unanswered.
	ExpiresAt metav1.Time `json:"expiresAt"`

	// Answer is set once by the framework after it created all the Tasks it
	// wants on this offer.
	// +optional
	Answer *OfferAnswer `json:"answer,omitempty"`
}

// OfferPhase is an offer's state.
// +kubebuilder:validation:Enum=Outstanding;Accepted;Declined;Rescinded;Expired
type OfferPhase string

const (
	// OfferOutstanding: made and not yet settled.
	OfferOutstanding OfferPhase = "Outstanding"
	// OfferAccepted: answered Accept and settled. The master now deletes an
	// accepted offer when it settles it instead (docs/design.md); a new
	// leader still reads this phase on offers an earlier master kept.
	OfferAccepted OfferPhase = "Accepted"
	// OfferDeclined: answered Decline and settled.
	OfferDeclined OfferPhase = "Declined"
	// OfferRescinded: withdrawn by the master (agent lost, framework removed).
	OfferRescinded OfferPhase = "Rescinded"
	// OfferExpired: unanswered past expiresAt.
	OfferExpired OfferPhase = "Expired"
)

// OfferStatus is written by the master.
type OfferStatus struct {
	// Phase is the offer's state.
	// +optional
	Phase OfferPhase `json:"phase,omitempty"`

	// SettledTime is when the master settled the answer, rescinded or expired it.
	// +optional
	SettledTime *metav1.Time `json:"settledTime,omitempty"`

	// Used are the resources of Tasks bound on this offer.
	// +optional
	Used Resources `json:"used,omitempty"`

	// TasksLaunched counts Tasks bound on this offer.
	// +optional
	TasksLaunched int32 `json:"tasksLaunched,omitempty"`

	// FilterUntil is when the decline filter from this offer ends; the offer
	// is deleted then (it is kept so filters survive a master failover).
	// +optional
	FilterUntil *metav1.Time `json:"filterUntil,omitempty"`

	// Reason is why the offer was rescinded, in Mesos' words.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message says more about the reason.
	// +optional
	Message string `json:"message,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ofr,categories=agora
// +kubebuilder:printcolumn:name="Framework",type=string,JSONPath=`.spec.frameworkName`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.spec.agentName`
// +kubebuilder:printcolumn:name="CPUs",type=string,JSONPath=`.spec.resources.cpus`
// +kubebuilder:printcolumn:name="Mem",type=string,JSONPath=`.spec.resources.mem`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// A string column: kubectl prints a date column as an age, "<invalid>" for a future time.
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.spec.expiresAt`,description="When the offer expires if unanswered (RFC 3339)"
// +kubebuilder:selectablefield:JSONPath=`.spec.frameworkName`
// +kubebuilder:selectablefield:JSONPath=`.spec.agentName`
// +kubebuilder:validation:XValidation:rule="!has(self.spec.answer) || has(oldSelf.spec.answer) || !has(oldSelf.status) || !has(oldSelf.status.phase) || oldSelf.status.phase == 'Outstanding'",message="this offer was already rescinded or expired; it can no longer be answered",fieldPath=".spec.answer"

// Offer is resources of one agent offered to one framework (Mesos' offer).
// The framework launches Tasks that name it, then sets spec.answer once.
type Offer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec OfferSpec `json:"spec"`
	// +optional
	Status OfferStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// OfferList is a list of Offers.
type OfferList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Offer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Offer{}, &OfferList{})
}
