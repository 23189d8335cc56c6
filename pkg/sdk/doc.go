// Package sdk is Agora's Go SDK for framework schedulers: Mesos' scheduler
// driver on Kubernetes objects.
//
// Connect registers the Framework (or adopts an existing one, so a
// restarted scheduler keeps its tasks) and renews its liveness Lease. Run
// watches the framework's Offers and Tasks (field selector
// spec.frameworkName) and calls a Handler, one event at a time. From the
// handler the framework answers offers with Accept or Decline, and manages
// itself with Suppress, Unsuppress, Revive, Kill, Reconcile and Acknowledge.
//
// The offer protocol it follows is in docs/design.md: Accept creates Tasks
// that name the offer, then sets the offer's answer exactly once. Accept
// checks locally that the tasks fit and that the offer is outstanding
// before it creates anything. See docs/sdk.md for a worked example.
package sdk
