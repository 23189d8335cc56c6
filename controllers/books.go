package controllers

import (
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// The engine's books: what the master knows about each object, kept by
// the engine goroutine only. Objects are keyed "namespace/name" (agents by
// name). Transitions are monotone (an offer never goes back to
// outstanding, a bound task never unbinds), so a stale informer event
// after the rebuild cannot undo what the master already knows.

type offerStage int

const (
	offerCreating    offerStage = iota // create in flight
	offerOutstanding                   // created, not answered as far as we know
	offerSettling                      // answer seen: list, binds, settle write in flight
	offerWithdrawing                   // rescind or expiry write in flight
	offerSettled                       // settled, rescinded or expired (written)
)

type offerState struct {
	key, ns, name string
	uid           string
	fw            string // framework key
	agent, role   string
	res           resources.Resources
	remaining     resources.Resources // held in the allocator beyond the bound tasks
	stage         offerStage
	obj           *agorav1.Offer // latest version seen (base for conditioned writes)
	expiresAt     time.Time
	pendingBinds  int // bind writes in flight for tasks on this offer
	nLaunched     int32
	settleListed  bool // the settle list came back; waiting for binds
	withdrawPhase agorav1.OfferPhase
	withdrawWhy   string
	withdrawMsg   string
	deleteAt      time.Time // settled offers are deleted then
	deleting      bool
	accepted      *agorav1.OfferStatus // the settle of an accepted offer, while its delete is in flight
	seenTasks     map[string]string    // Tasks seen naming it: name -> the offer UID they name
	awaitSince    time.Time            // waiting (wall clock) for the Tasks its answer counts
	unfit         bool                 // set aside by the rebuild until it is fitted (rebuildfit.go)
}

// unanswered: the offer counts against its framework's offer cap.
func (o *offerState) unanswered() bool {
	return o.stage == offerCreating || o.stage == offerOutstanding && o.obj != nil && o.obj.Spec.Answer == nil
}

// holdsAlloc: the offer's remaining resources are booked in the allocator.
func (o *offerState) holdsAlloc() bool { return o.stage != offerSettled }

type taskState struct {
	key, ns, name string
	uid           string
	fw            string // framework key (namespace/spec.frameworkName)
	agent         string
	offer         string // offer key
	offerUID      string
	role          string // the offer's role, once known
	res           resources.Resources
	obj           *agorav1.Task
	bound         bool         // listed in a stored Assignment or bindTime set, or binding
	binding       bool         // bound by this master; no stored Assignment lists it yet
	bind          *metav1.Time // when it was bound, for its Assignment entry
	bindRV        string       // the Task's resourceVersion then, for the entry too
	accounted     bool         // its resources are booked in the allocator as a task
	state         agorav1.TaskState
	finalising    bool      // a master-sourced state write in flight
	nextState     func()    // the master-sourced state write asked for while one was in flight
	stateFailures int       // master-sourced state writes failed in a row (stateretry.go)
	terminalSeen  time.Time // when the master saw it end (retention)
	killSent      bool
	deleting      bool
	listed        assignEntry // what its agent's Assignment was last asked to list
}

type agentState struct {
	name          string
	obj           *agorav1.Agent
	inAlloc       bool
	reachable     bool // judged by its heartbeats
	unschedulable bool
	since         time.Time // when this master started watching it
	// readyWriting is the Ready status the master is writing, until the
	// informer shows it.
	readyWriting metav1.ConditionStatus
}

type fwState struct {
	key, ns, name  string
	uid            string
	obj            *agorav1.Framework
	roles          []string
	inAlloc        bool
	allowed        bool
	rejectMsg      string
	connected      bool // its Lease changed within FrameworkTimeout
	since          time.Time
	tornDown       bool
	deleted        bool
	revive         time.Time
	lastStatus     time.Time
	lastSummary    string
	lastPhase      agorav1.FrameworkPhase
	phaseKey       string
	partitionAware bool
}

func (f *fwState) leaseKey() string {
	name := f.name
	if f.obj != nil && f.obj.Spec.LeaseName != "" {
		name = f.obj.Spec.LeaseName
	}
	return f.ns + "/" + name
}

func (f *fwState) failoverTimeout() time.Duration {
	if f.obj != nil && f.obj.Spec.FailoverTimeout != nil {
		return f.obj.Spec.FailoverTimeout.Duration
	}
	return 168 * time.Hour
}

// active: offers may be made to it.
func (f *fwState) active() bool {
	return f.allowed && f.connected && !f.tornDown && !f.deleted && f.obj != nil && !f.obj.Spec.Deactivated
}

type leaseObs struct {
	rv     string
	seenAt time.Time
}

// terminal reports whether a task state is final for accounting: the task
// no longer holds resources on its agent. LOST and UNREACHABLE are not:
// the task may still run and come back (invariant 1 counts it).
func terminal(s agorav1.TaskState) bool {
	switch s {
	case agorav1.TaskFinished, agorav1.TaskFailed, agorav1.TaskKilled, agorav1.TaskError,
		agorav1.TaskDropped, agorav1.TaskGone, agorav1.TaskGoneByOperator:
		return true
	}
	return false
}

// ended reports whether a task is over for retention and counts (LOST too).
func ended(s agorav1.TaskState) bool {
	return terminal(s) || s == agorav1.TaskLost
}

// sameVersion reports whether rv is the very version the books hold. The
// informers replay what the rebuild read; taking their copy then (the books
// otherwise keep the rebuild's) lets the rebuild's lists be freed instead of
// every object being held twice (72 MiB of live heap at 30,000 Tasks).
func sameVersion(rv, held string) bool { return rv == held }

// newer reports whether resourceVersion a is newer than b. Resource
// versions are etcd revisions here; an unparsable one counts as newer.
func newer(a, b string) bool {
	if b == "" {
		return true
	}
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil {
		return a != b
	}
	return x > y
}

func key(ns, name string) string { return ns + "/" + name }
