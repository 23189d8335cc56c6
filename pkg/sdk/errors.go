package sdk

import (
	"errors"
	"fmt"

	"github.com/agora-sched/agora/pkg/resources"
)

// Errors the driver's calls return; match them with errors.Is.
var (
	// ErrOfferGone: the offer was rescinded, expired, deleted or replaced by
	// a newer offer of the same name, so it can no longer be answered. Tasks
	// launched on it end TASK_DROPPED or TASK_LOST.
	ErrOfferGone = errors.New("sdk: the offer is gone (rescinded, expired or deleted)")

	// ErrOfferAnswered: the offer already has an answer; an offer is
	// answered exactly once.
	ErrOfferAnswered = errors.New("sdk: the offer was already answered")

	// ErrInsufficientResources: the tasks do not fit in the offer. Accept
	// checks this before it creates anything.
	ErrInsufficientResources = errors.New("sdk: the tasks do not fit in the offer")

	// ErrTaskNotFound: no Task of that name exists in the framework's namespace.
	ErrTaskNotFound = errors.New("sdk: task not found")

	// ErrNotTerminal: Acknowledge was asked to delete a task that may still run.
	ErrNotTerminal = errors.New("sdk: the task is not in a terminal state")

	// ErrNoKubeconfig: no kubeconfig file with a cluster in it was found
	// (Config.Kubeconfig, $KUBECONFIG or ~/.kube/config), and the process
	// does not run in a pod.
	ErrNoKubeconfig = errors.New("sdk: no kubeconfig with a cluster to connect to")

	// ErrFrameworkTornDown: the Framework object is torn down or being
	// deleted; a torn-down framework cannot be adopted (as in Mesos, a
	// removed framework ID cannot subscribe again).
	ErrFrameworkTornDown = errors.New("sdk: the framework is torn down")
)

// InsufficientError says which resource an Accept was short of.
type InsufficientError struct {
	Offer string
	// Detail is the resource model's account of what is missing.
	Detail *resources.InsufficientError
}

func (e *InsufficientError) Error() string {
	return fmt.Sprintf("sdk: the tasks do not fit in offer %s: %v", e.Offer, e.Detail)
}

// Is makes errors.Is(err, ErrInsufficientResources) true.
func (e *InsufficientError) Is(target error) bool { return target == ErrInsufficientResources }

// Unwrap exposes the model's error (errors.Is(err, resources.ErrInsufficient)).
func (e *InsufficientError) Unwrap() error { return e.Detail }
