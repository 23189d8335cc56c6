// Package builders makes Agora objects for tests in a few readable lines
// (as Kueue's testing wrappers do).
package builders

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Q parses a quantity and returns a pointer to it.
func Q(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

// Res builds Resources from cpus and mem strings ("" leaves one out).
func Res(cpus, mem string) agorav1.Resources {
	var r agorav1.Resources
	if cpus != "" {
		r.CPUs = Q(cpus)
	}
	if mem != "" {
		r.Mem = Q(mem)
	}
	return r
}

// FrameworkWrapper builds a Framework.
type FrameworkWrapper struct{ agorav1.Framework }

// Framework starts a Framework in namespace ns.
func Framework(ns, name string) *FrameworkWrapper {
	return &FrameworkWrapper{agorav1.Framework{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}}
}

// Roles sets the roles.
func (w *FrameworkWrapper) Roles(roles ...string) *FrameworkWrapper {
	w.Spec.Roles = roles
	return w
}

// Capabilities sets the capabilities.
func (w *FrameworkWrapper) Capabilities(c ...agorav1.FrameworkCapability) *FrameworkWrapper {
	w.Spec.Capabilities = c
	return w
}

// FailoverTimeout sets the failover timeout.
func (w *FrameworkWrapper) FailoverTimeout(d time.Duration) *FrameworkWrapper {
	w.Spec.FailoverTimeout = &metav1.Duration{Duration: d}
	return w
}

// Obj returns the object.
func (w *FrameworkWrapper) Obj() *agorav1.Framework { return &w.Framework }

// OfferWrapper builds an Offer.
type OfferWrapper struct{ agorav1.Offer }

// Offer starts an Offer for framework fw on agent in namespace ns.
func Offer(ns, name, fw, agent string) *OfferWrapper {
	return &OfferWrapper{agorav1.Offer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: agorav1.OfferSpec{
			FrameworkName: fw, AgentName: agent, Hostname: agent, Role: "*",
			ExpiresAt: metav1.NewTime(time.Now().Add(time.Minute).Truncate(time.Second)),
		},
	}}
}

// Resources sets the offered resources.
func (w *OfferWrapper) Resources(r agorav1.Resources) *OfferWrapper {
	w.Spec.Resources = r
	return w
}

// Role sets the role.
func (w *OfferWrapper) Role(role string) *OfferWrapper {
	w.Spec.Role = role
	return w
}

// Obj returns the object.
func (w *OfferWrapper) Obj() *agorav1.Offer { return &w.Offer }

// TaskWrapper builds a Task.
type TaskWrapper struct{ agorav1.Task }

// Task starts a Task of framework fw in namespace ns running a shell command.
func Task(ns, name, fw string) *TaskWrapper {
	sh := "true"
	return &TaskWrapper{agorav1.Task{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: agorav1.TaskSpec{
			FrameworkName: fw,
			Resources:     Res("100m", "32Mi"),
			Command:       agorav1.CommandInfo{Shell: &sh},
		},
	}}
}

// OnOffer names the offer (and takes its agent).
func (w *TaskWrapper) OnOffer(o *agorav1.Offer) *TaskWrapper {
	w.Spec.OfferRef = agorav1.OfferReference{Name: o.Name, UID: string(o.UID)}
	w.Spec.AgentName = o.Spec.AgentName
	return w
}

// OfferRef names an offer by name and UID on agent.
func (w *TaskWrapper) OfferRef(name string, uid types.UID, agent string) *TaskWrapper {
	w.Spec.OfferRef = agorav1.OfferReference{Name: name, UID: string(uid)}
	w.Spec.AgentName = agent
	return w
}

// Resources sets the task's resources.
func (w *TaskWrapper) Resources(r agorav1.Resources) *TaskWrapper {
	w.Spec.Resources = r
	return w
}

// Shell sets a shell command.
func (w *TaskWrapper) Shell(cmd string) *TaskWrapper {
	w.Spec.Command = agorav1.CommandInfo{Shell: &cmd}
	return w
}

// Argv sets an argv command.
func (w *TaskWrapper) Argv(argv ...string) *TaskWrapper {
	w.Spec.Command = agorav1.CommandInfo{Argv: argv}
	return w
}

// Obj returns the object.
func (w *TaskWrapper) Obj() *agorav1.Task { return &w.Task }

// Agent builds an Agent with total resources.
func Agent(name string, total agorav1.Resources) *agorav1.Agent {
	return &agorav1.Agent{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status:     agorav1.AgentStatus{Hostname: name, Total: total},
	}
}
