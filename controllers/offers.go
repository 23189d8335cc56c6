package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/allocator"
	"github.com/agora-sched/agora/pkg/resources"
)

// Labels on offers.
const (
	LabelAgent     = "scheduling.agora.dev/agent"
	LabelFramework = "scheduling.agora.dev/framework"
)

// Rescind reasons (Offer.status.reason).
const (
	RescindAgentUnreachable   = "AGENT_UNREACHABLE"
	RescindAgentRemoved       = "AGENT_REMOVED"
	RescindFrameworkInactive  = "FRAMEWORK_INACTIVE"
	RescindFrameworkTornDown  = "FRAMEWORK_TORN_DOWN"
	RescindFrameworkRemoved   = "FRAMEWORK_REMOVED"
	RescindFrameworkRejected  = "FRAMEWORK_REJECTED"
	RescindRoleUnsubscribed   = "ROLE_UNSUBSCRIBED"
	RescindQuotaChanged       = "QUOTA_CHANGED"
	RescindUnaccountable      = "UNACCOUNTABLE"
	ExpireOfferTimeout        = "OFFER_TIMEOUT"
	offerMaxPrefix            = 240
	offerNameRandomSuffixSize = 5
)

// allocate runs one allocation round and hands the offers to the writers.
func (e *engine) allocate() {
	e.dirty = false
	if e.ctx.Err() != nil {
		return
	}
	e.setOfferBudgets()
	start := time.Now()
	// makeOffer copies what it keeps, so the next round may reuse the slice.
	decided := e.alloc.AllocateAppend(e.clock.Now(), e.offerBuf[:0])
	allocationRunSeconds.Observe(time.Since(start).Seconds())
	for i, o := range decided {
		e.makeOffer(o)
		if i == 0 && e.opts.Hooks.MidAllocation != nil {
			e.opts.Hooks.MidAllocation()
		}
	}
	clear(decided) // keep no names or ports alive until the next round
	e.offerBuf = decided
}

// setOfferBudgets caps, for the coming round, the new offers of each
// framework at MaxOffersPerFramework minus the offers it has not answered.
func (e *engine) setOfferBudgets() {
	if e.opts.MaxOffersPerFramework < 0 {
		return
	}
	held := map[string]int{}
	for _, o := range e.offers {
		if o.unanswered() {
			held[o.fw]++
		}
	}
	for k, f := range e.frameworks {
		if f.inAlloc {
			_ = e.alloc.SetOfferBudget(k, max(0, e.opts.MaxOffersPerFramework-held[k]))
		}
	}
}

// offerName looks like a generateName name, but the master picks it so the
// books know the offer before the create returns (a fast framework may
// launch on it before the create's reply reaches the engine).
func offerName(fw, agent string) string {
	p := fw + "-" + agent + "-"
	if len(p) > offerMaxPrefix {
		p = p[:offerMaxPrefix]
	}
	return p + utilrand.String(offerNameRandomSuffixSize)
}

func (e *engine) makeOffer(d allocator.Offer) {
	f, a := e.frameworks[d.FrameworkID], e.agents[d.Agent]
	if f == nil || a == nil || a.obj == nil || f.obj == nil {
		e.recover(d.FrameworkID, d.Role, d.Agent, d.Resources, 0)
		return
	}
	now := e.clock.Now()
	name := offerName(f.name, a.name)
	o := &offerState{
		key: key(f.ns, name), ns: f.ns, name: name, fw: f.key, agent: a.name, role: d.Role,
		res: d.Resources, remaining: d.Resources, stage: offerCreating,
		expiresAt: now.Add(e.opts.OfferTimeout),
	}
	e.offers[o.key] = o
	e.log.V(1).Info("making offer", "offer", o.key, "agent", a.name, "role", d.Role, "resources", d.Resources.String())
	obj := &agorav1.Offer{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: f.ns, Name: name,
			Labels: map[string]string{LabelAgent: a.name, LabelFramework: f.name},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: agorav1.GroupVersion.String(), Kind: "Framework",
				Name: f.name, UID: f.obj.UID, Controller: ptr.To(true),
			}},
		},
		Spec: agorav1.OfferSpec{
			FrameworkName: f.name, AgentName: a.name, Hostname: a.obj.Status.Hostname,
			Role: d.Role, Resources: agorav1.FromModel(d.Resources),
			Attributes: a.obj.Status.Attributes,
			ExpiresAt:  metav1.NewTime(o.expiresAt.Truncate(time.Second)),
		},
	}
	k := o.key
	e.doIn(laneOffers, func(ctx context.Context) msg {
		err := e.m.client.Create(ctx, obj)
		if err != nil && ctx.Err() != nil {
			return nil
		}
		return func(e *engine) { e.offerCreated(k, obj, err) }
	})
}

func (e *engine) offerCreated(k string, obj *agorav1.Offer, err error) {
	o := e.offers[k]
	if o == nil {
		return
	}
	if err != nil {
		if o.stage != offerCreating {
			return // the informer already showed it: it exists
		}
		if apierrors.IsAlreadyExists(err) {
			return // it landed after all (a retried request); the informer will show it
		}
		e.log.Error(err, "creating offer", "offer", k)
		e.recoverOffer(o, 0)
		delete(e.offers, k)
		e.unpark(k)
		return
	}
	offersTotal.WithLabelValues(o.fw, "sent").Inc()
	if o.stage == offerCreating {
		o.obj, o.uid, o.stage = obj, string(obj.UID), offerOutstanding
		e.afterOutstanding(o)
	}
}

// afterOutstanding runs when an offer becomes outstanding in the books.
func (e *engine) afterOutstanding(o *offerState) {
	if o.withdrawPhase != "" {
		e.withdraw(o, o.withdrawPhase, o.withdrawWhy, o.withdrawMsg)
	} else if o.obj.Spec.Answer != nil {
		e.startSettle(o)
	}
	e.unpark(o.key)
}

// onOffer applies an informer event (or a rebuild item) for an offer.
func (e *engine) onOffer(obj *agorav1.Offer, deleted bool) {
	k := key(obj.Namespace, obj.Name)
	o := e.offers[k]
	if deleted {
		if o != nil && (o.uid == "" || o.uid == string(obj.UID)) {
			e.offerGone(o)
		}
		return
	}
	if o != nil && o.uid != "" && o.uid != string(obj.UID) {
		e.offerGone(o)
		o = nil
	}
	if o == nil {
		e.adoptOffer(obj)
		return
	}
	if o.obj != nil && !newer(obj.ResourceVersion, o.obj.ResourceVersion) {
		if sameVersion(obj.ResourceVersion, o.obj.ResourceVersion) {
			o.obj = obj
		}
		return
	}
	o.obj = obj
	if o.stage == offerCreating {
		o.uid, o.stage = string(obj.UID), offerOutstanding
		offersTotal.WithLabelValues(o.fw, "sent").Inc()
		e.afterOutstanding(o)
	}
	if obj.Status.Phase != "" && obj.Status.Phase != agorav1.OfferOutstanding {
		e.finishOffer(o, obj)
		return
	}
	if obj.Spec.Answer != nil && o.stage == offerOutstanding {
		e.dirty = true // its framework may be below its offer cap again
		e.startSettle(o)
	}
}

// adoptOffer takes over an offer the books do not know: found by the
// rebuild, or made by another master.
func (e *engine) adoptOffer(obj *agorav1.Offer) {
	res, _ := obj.Spec.Resources.Model()
	o := &offerState{
		key: key(obj.Namespace, obj.Name), ns: obj.Namespace, name: obj.Name, uid: string(obj.UID),
		fw: key(obj.Namespace, obj.Spec.FrameworkName), agent: obj.Spec.AgentName, role: obj.Spec.Role,
		res: res, obj: obj, expiresAt: obj.Spec.ExpiresAt.Time,
	}
	e.offers[o.key] = o
	now := e.clock.Now()
	if obj.Status.Phase != "" && obj.Status.Phase != agorav1.OfferOutstanding {
		o.stage = offerSettled
		o.deleteAt = now
		if obj.Status.FilterUntil != nil {
			o.deleteAt = obj.Status.FilterUntil.Time
		}
		if obj.Status.Phase == agorav1.OfferRescinded || obj.Status.Phase == agorav1.OfferExpired {
			o.deleteAt = now.Add(settledOfferGrace)
		}
		e.reinstallFilter(o)
		return
	}
	o.stage = offerOutstanding
	f, a := e.frameworks[o.fw], e.agents[o.agent]
	switch {
	case f == nil || !f.inAlloc:
		o.withdrawPhase, o.withdrawWhy, o.withdrawMsg = agorav1.OfferRescinded, RescindFrameworkRemoved, "the framework does not exist"
	case a == nil || !a.inAlloc:
		o.withdrawPhase, o.withdrawWhy, o.withdrawMsg = agorav1.OfferRescinded, RescindAgentRemoved, "the agent is not registered"
	default:
		switch err := e.alloc.AddAllocation(o.fw, o.role, o.agent, res); {
		case err == nil:
			o.remaining = res
		case e.unfit != nil && obj.Spec.Answer == nil:
			o.unfit = true
			e.unfit.offers = append(e.unfit.offers, o) // fitted after the tasks (rebuildfit.go)
			return
		default:
			// Over-committed (e.g. a deposed master's last offer): withdraw it.
			e.log.Error(err, "offer does not fit its agent; rescinding it", "offer", o.key)
			o.withdrawPhase, o.withdrawWhy, o.withdrawMsg = agorav1.OfferRescinded, RescindUnaccountable, "the agent's resources are already allocated"
		}
	}
	switch {
	case obj.Spec.Answer != nil:
		e.startSettle(o)
	case o.withdrawPhase != "":
		e.withdraw(o, o.withdrawPhase, o.withdrawWhy, o.withdrawMsg)
	case !now.Before(o.expiresAt):
		// It expired while no master ran: expired now, before the tasks'
		// replay can bind one naming it (what it holds stays booked until
		// the withdrawal lands, as with the tick's).
		e.expire(o)
	}
}

// expire withdraws an unanswered offer past its expiresAt.
func (e *engine) expire(o *offerState) {
	e.withdraw(o, agorav1.OfferExpired, ExpireOfferTimeout,
		fmt.Sprintf("not answered within the offer timeout (%s)", e.opts.OfferTimeout))
}

// reinstallFilter rebuilds the decline filter a settled offer stands for.
func (e *engine) reinstallFilter(o *offerState) {
	st := o.obj.Status
	if st.Phase != agorav1.OfferAccepted && st.Phase != agorav1.OfferDeclined || st.FilterUntil == nil {
		return
	}
	if !e.clock.Now().Before(st.FilterUntil.Time) {
		return
	}
	if f := e.frameworks[o.fw]; f == nil || !f.inAlloc || (st.SettledTime != nil && st.SettledTime.Time.Before(f.revive)) {
		return
	}
	used, _ := st.Used.Model()
	refused, err := o.res.Subtract(used)
	if err != nil || refused.IsEmpty() {
		return
	}
	if err := e.alloc.AddFilter(o.fw, o.role, o.agent, refused, st.FilterUntil.Time); err != nil {
		e.log.V(1).Info("not reinstalling filter", "offer", o.key, "err", err.Error())
	}
}

// offerGone: the Offer object was deleted.
func (e *engine) offerGone(o *offerState) {
	if o.accepted != nil && o.stage == offerSettling {
		e.finishAccepted(o) // its settle's delete, reported before the delete's reply
	}
	if o.holdsAlloc() && o.stage != offerCreating {
		e.recoverOffer(o, 0)
	}
	o.stage = offerSettled
	delete(e.offers, o.key)
	e.unpark(o.key)
	e.forgetIfDeleted(o.fw)
}

// recoverOffer returns what the offer still holds beyond its bound tasks,
// the unused remainder, with the decline filter (tasks that ended went
// back when they ended).
func (e *engine) recoverOffer(o *offerState, refuse time.Duration) {
	if !o.remaining.IsEmpty() {
		e.recover(o.fw, o.role, o.agent, o.remaining, refuse)
	}
	o.remaining = resources.Resources{}
}

// recover returns resources to the allocator, tolerating agents and
// frameworks already forgotten (their books went with them).
func (e *engine) recover(fw, role, agent string, r resources.Resources, refuse time.Duration) {
	if a := e.agents[agent]; a == nil || !a.inAlloc {
		return
	}
	if err := e.alloc.Recover(fw, role, agent, r, refuse, e.clock.Now()); err != nil {
		e.log.Error(err, "returning resources to the allocator", "framework", fw, "role", role, "agent", agent)
	}
	e.dirty = true
}

// withdraw rescinds or expires an outstanding offer. The write is
// conditioned on the offer's resourceVersion: if the framework answered
// first, the answer wins and is settled instead.
func (e *engine) withdraw(o *offerState, phase agorav1.OfferPhase, why, message string) {
	switch o.stage {
	case offerCreating:
		o.withdrawPhase, o.withdrawWhy, o.withdrawMsg = phase, why, message
		return
	case offerOutstanding:
	default:
		return
	}
	if o.obj.Spec.Answer != nil {
		e.startSettle(o)
		return
	}
	o.stage = offerWithdrawing
	o.withdrawPhase, o.withdrawWhy, o.withdrawMsg = phase, why, message
	used, _ := o.res.Subtract(o.remaining)
	launched := e.launched(o)
	now := metav1.NewTime(e.clock.Now())
	k := o.key
	e.do(e.offerStatusJob(o.obj, nil, func(x *agorav1.Offer) bool {
		if x.Spec.Answer != nil || (x.Status.Phase != "" && x.Status.Phase != agorav1.OfferOutstanding) {
			return false
		}
		x.Status = agorav1.OfferStatus{Phase: phase, SettledTime: &now, Used: agorav1.FromModel(used),
			TasksLaunched: launched, Reason: why, Message: message}
		return true
	}, func(e *engine, obj *agorav1.Offer, out writeOutcome) { e.withdrawn(k, obj, out) }))
}

// offerWritten handles the outcomes that a settle and a withdrawal write
// share, for an offer still in stage: written, the offer is finished; gone,
// forgotten; failed, it is outstanding again for the tick to retry (a
// withdrawal keeps withdrawPhase set). Only a write that was not applied
// differs between them: for that it returns the offer, else nil.
func (e *engine) offerWritten(k string, stage offerStage, obj *agorav1.Offer, out writeOutcome) *offerState {
	o := e.offers[k]
	if o == nil || o.stage != stage {
		return nil
	}
	switch out {
	case wrote:
		o.obj = obj
		e.finishOffer(o, obj)
	case gone:
		e.offerGone(o)
	case notApplied:
		return o
	default:
		o.stage = offerOutstanding
	}
	return nil
}

func (e *engine) withdrawn(k string, obj *agorav1.Offer, out writeOutcome) {
	o := e.offerWritten(k, offerWithdrawing, obj, out)
	if o == nil {
		return
	}
	// The answer (or another master) got there first.
	o.stage = offerOutstanding
	if newer(obj.ResourceVersion, o.obj.ResourceVersion) {
		o.obj = obj
	}
	if obj.Status.Phase != "" && obj.Status.Phase != agorav1.OfferOutstanding {
		e.finishOffer(o, obj)
	} else if obj.Spec.Answer != nil {
		o.withdrawPhase = ""
		e.startSettle(o)
	}
}

// finishOffer records a settled, rescinded or expired offer (written by us
// or by another master) exactly once: the unbound remainder goes back to
// the allocator, with the decline filter the status names.
func (e *engine) finishOffer(o *offerState, obj *agorav1.Offer) {
	if o.stage == offerSettled {
		return
	}
	wasWithdrawing := o.stage == offerWithdrawing
	o.stage = offerSettled
	now := e.clock.Now()
	var refuse time.Duration
	st := obj.Status
	o.deleteAt = now.Add(settledOfferGrace)
	switch st.Phase {
	case agorav1.OfferAccepted, agorav1.OfferDeclined:
		if st.FilterUntil != nil {
			refuse = st.FilterUntil.Sub(now)
			o.deleteAt = st.FilterUntil.Time
		}
		offersTotal.WithLabelValues(o.fw, map[agorav1.OfferPhase]string{agorav1.OfferAccepted: "accepted", agorav1.OfferDeclined: "declined"}[st.Phase]).Inc()
	case agorav1.OfferRescinded:
		offersTotal.WithLabelValues(o.fw, "rescinded").Inc()
		// Not for a role the framework left: it asked for that, the
		// offer's status says so, and an Event would be one more write.
		if wasWithdrawing && st.Reason != RescindRoleUnsubscribed {
			e.event(obj, "Normal", "OfferRescinded", "Rescind", "offer rescinded: %s: %s", st.Reason, st.Message)
		}
	case agorav1.OfferExpired:
		offersTotal.WithLabelValues(o.fw, "expired").Inc()
	}
	e.recoverOffer(o, max(refuse, 0))
	e.unpark(o.key)
	e.forgetIfDeleted(o.fw)
}

// launched counts the tasks bound on an offer.
func (e *engine) launched(o *offerState) int32 { return o.nLaunched }

// rescindWhere rescinds the outstanding offers that match.
func (e *engine) rescindWhere(match func(o *offerState) bool, why, message string) {
	for _, o := range e.offers {
		if (o.stage == offerOutstanding || o.stage == offerCreating) && match(o) {
			e.withdraw(o, agorav1.OfferRescinded, why, message)
		}
	}
}

// expireOffers withdraws offers past expiresAt, restarts settles and
// withdrawals whose writes failed, and is the tick's offer sweep.
func (e *engine) expireOffers(now time.Time) {
	for _, o := range e.offers {
		if o.stage != offerOutstanding {
			continue
		}
		switch {
		case o.obj.Spec.Answer != nil:
			e.startSettle(o)
		case o.withdrawPhase != "":
			e.withdraw(o, o.withdrawPhase, o.withdrawWhy, o.withdrawMsg)
		case !now.Before(o.expiresAt):
			e.expire(o)
		}
	}
}

// collectOffers deletes settled offers once their filter has passed.
func (e *engine) collectOffers(now time.Time) {
	for _, o := range e.offers {
		if o.stage != offerSettled || o.deleting || now.Before(o.deleteAt) || o.obj == nil {
			continue
		}
		o.deleting = true
		k := o.key
		e.doIn(laneBackground, e.deleteJob(o.obj, func(e *engine, err error) {
			if o := e.offers[k]; o != nil && err != nil {
				o.deleting = false
			}
		}))
	}
}

// unpark re-evaluates the tasks that waited for an offer.
func (e *engine) unpark(offerKey string) {
	keys := e.parked[offerKey]
	if len(keys) == 0 {
		return
	}
	delete(e.parked, offerKey)
	for _, k := range keys {
		if t := e.tasks[k]; t != nil {
			e.syncTask(t)
		}
	}
}
