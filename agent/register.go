package agent

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// requestTimeout bounds one API call, so a hung connection cannot stall the
// heartbeat.
const requestTimeout = 15 * time.Second

// retryBackoff is how registration retries until the apiserver answers:
// the first retry after 200 ms, doubling to at most 10 s, jittered by 20%.
var retryBackoff = backoff{first: 200 * time.Millisecond, max: 10 * time.Second, jitter: 0.2}

type backoff struct {
	first, max time.Duration
	jitter     float64
}

// retry calls try until it reports done or ctx ends, sleeping between calls
// as b says. Unlike wait.Backoff, whose Cap ends the retries once reached
// (after about six here), it never gives up: an agent started while the
// apiserver is down or overloaded must wait for it, not exit.
func (b backoff) retry(ctx context.Context, try func(context.Context) bool) error {
	delay := b.first
	for !try(ctx) {
		t := time.NewTimer(wait.Jitter(delay, b.jitter))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, b.max)
	}
	return nil
}

// register creates the Agent object if needed, writes its full status and
// creates or renews the Lease. It retries until it succeeds or ctx ends.
// Creating first saves a read per agent when a thousand simulated agents
// register at once.
func (a *Agent) register(ctx context.Context) error {
	return retryBackoff.retry(ctx, func(ctx context.Context) bool {
		cur, err := a.ensureAgent(ctx)
		if err != nil {
			a.log.Error(err, "registering")
			return false
		}
		if err := a.writeAgentStatus(ctx, cur); err != nil {
			a.log.Error(err, "writing agent status")
			return false
		}
		if err := a.renewLease(ctx); err != nil {
			a.log.Error(err, "creating lease")
			return false
		}
		return true
	})
}

// ensureAgent creates the Agent object, or reads it if it exists.
func (a *Agent) ensureAgent(ctx context.Context) (*agorav1.Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	obj := &agorav1.Agent{ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name}}
	var out agorav1.Agent
	err := a.cfg.Clients.Agora.Post().Resource("agents").Body(obj).Do(ctx).Into(&out)
	if apierrors.IsAlreadyExists(err) {
		err = a.cfg.Clients.Agora.Get().Resource("agents").Name(a.cfg.Name).Do(ctx).Into(&out)
	}
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// agentStatusPatch is the agent-owned part of Agent.status, written with a
// merge patch (the agent owns the whole status; the patch avoids a read).
type agentStatusPatch struct {
	Hostname       string                  `json:"hostname,omitempty"`
	Total          map[string]any          `json:"total"`
	Reserved       []agorav1.RoleResources `json:"reserved"`
	Attributes     []agorav1.Attribute     `json:"attributes"`
	Allocated      map[string]any          `json:"allocated"`
	Tasks          int32                   `json:"tasks"`
	CgroupVersion  string                  `json:"cgroupVersion,omitempty"`
	Version        string                  `json:"version,omitempty"`
	RegisteredTime *metav1.Time            `json:"registeredTime,omitempty"`
	Conditions     []metav1.Condition      `json:"conditions,omitempty"`
}

// writeAgentStatus writes the Agent's status: everything at registration
// (cur is the Agent read or created then), otherwise (cur nil) the coalesced
// summary and total.
func (a *Agent) writeAgentStatus(ctx context.Context, cur *agorav1.Agent) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	a.mu.Lock()
	total := resourcesPatch(a.total)
	allocated, n := a.allocatedLocked()
	a.dirty = false
	a.mu.Unlock()
	p := agentStatusPatch{
		Total:      total,
		Reserved:   a.cfg.Reserved,
		Attributes: a.cfg.Attributes,
		Allocated:  resourcesPatch(allocated),
		Tasks:      int32(n),
	}
	if cur != nil {
		now := metav1.Now()
		p.Hostname, p.CgroupVersion, p.Version = a.cfg.Hostname, a.cfg.CgroupVersion, a.cfg.Version
		p.RegisteredTime = cur.Status.RegisteredTime
		if p.RegisteredTime == nil {
			p.RegisteredTime = &now
		}
		ready := metav1.Condition{Type: agorav1.AgentConditionReady, Status: metav1.ConditionTrue,
			Reason: "AgentRegistered", Message: "the agent registered and heartbeats", LastTransitionTime: now,
			ObservedGeneration: cur.Generation}
		for _, c := range cur.Status.Conditions {
			if c.Type == ready.Type && c.Status == ready.Status {
				ready.LastTransitionTime = c.LastTransitionTime
			}
		}
		p.Conditions = []metav1.Condition{ready}
	}
	body, err := json.Marshal(map[string]any{"status": p})
	if err != nil {
		return err
	}
	var out agorav1.Agent
	err = a.cfg.Clients.Agora.Patch(types.MergePatchType).Resource("agents").Name(a.cfg.Name).
		SubResource("status").Body(body).Do(ctx).Into(&out)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.dirty = true
	} else if !a.reported.SameReport(&out.Status) { // an unchanged status is no write
		a.reported = &out.Status
		a.heardLocked()
	}
	return err
}

// resourcesPatch renders resources for a merge patch: every field present,
// null for none, since in a merge patch an absent field keeps its old value.
func resourcesPatch(r resources.Resources) map[string]any {
	api := agorav1.FromModel(r)
	m := map[string]any{"cpus": nil, "mem": nil, "disk": nil, "gpus": nil, "ports": nil}
	if api.CPUs != nil {
		m["cpus"] = api.CPUs
	}
	if api.Mem != nil {
		m["mem"] = api.Mem
	}
	if api.Disk != nil {
		m["disk"] = api.Disk
	}
	if api.GPUs != nil {
		m["gpus"] = api.GPUs
	}
	if api.Ports != nil {
		m["ports"] = api.Ports
	}
	return m
}

// allocatedLocked sums the resources of the tasks that hold resources.
func (a *Agent) allocatedLocked() (resources.Resources, int) {
	var sum resources.Resources
	n := 0
	for _, t := range a.tasks {
		if t.holdsResources() {
			sum = sum.Add(t.res)
			n++
		}
	}
	return sum, n
}

// renewLease creates the Lease or bumps its renewTime. The master judges
// liveness by seeing the Lease change, so every renewal is a real write. The
// last Lease written is kept, so a renewal is one Update, not a read and a write.
func (a *Agent) renewLease(ctx context.Context) error {
	err := a.writeLease(ctx)
	if err == nil {
		a.mu.Lock()
		a.heardLocked()
		a.renewed = a.heard
		a.mu.Unlock()
	}
	return err
}

// heardLocked notes a write the master will see as a sign of life.
func (a *Agent) heardLocked() { a.heard = time.Now() }

// renewalWait is how long the next Lease renewal can wait: the master
// counts the agent's status writes as heartbeats (as the node lifecycle
// controller counts a Node's status as well as its Lease), so on a busy
// agent they stand in for two renewals in three. The third keeps the
// Lease's renewTime within its leaseDurationSeconds (four intervals) for
// whoever else reads it. Zero: renew now.
func (a *Agent) renewalWait(now time.Time) time.Duration {
	a.mu.Lock()
	due := a.heard.Add(a.cfg.RenewInterval)
	if last := a.renewed.Add(3 * a.cfg.RenewInterval); last.Before(due) {
		due = last
	}
	a.mu.Unlock()
	// Within a tenth of the interval it renews rather than sleep briefly.
	if wait := due.Sub(now); wait > a.cfg.RenewInterval/10 {
		return wait
	}
	return 0
}

func (a *Agent) writeLease(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	leases := a.cfg.Clients.Kube.CoordinationV1().Leases(a.cfg.Namespace)
	now := metav1.NowMicro()
	secs := int32(max(1, (4*a.cfg.RenewInterval)/time.Second))
	l := a.lease
	if l == nil {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.cfg.Name, Namespace: a.cfg.Namespace},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &a.cfg.Name, LeaseDurationSeconds: &secs,
				AcquireTime: &now, RenewTime: &now},
		}
		created, err := leases.Create(ctx, l, metav1.CreateOptions{})
		if err == nil {
			a.lease = created
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		if l, err = leases.Get(ctx, a.cfg.Name, metav1.GetOptions{}); err != nil {
			return err
		}
	}
	l = l.DeepCopy()
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &a.cfg.Name, &secs, &now
	l, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if err != nil {
		a.lease = nil // read it again next time (conflict, deleted)
		return err
	}
	a.lease = l
	return nil
}

// housekeeping renews the Lease and writes the Agent summary, coalesced: at
// most one summary write per SummaryInterval, however often tasks change.
// It is the only user of a.lease after registration.
func (a *Agent) housekeeping(ctx context.Context) {
	// The first renewal lands anywhere in the first interval, so agents
	// started together spread their writes.
	renew := time.NewTimer(time.Duration(rand.Int64N(int64(a.cfg.RenewInterval))) + time.Millisecond)
	defer renew.Stop()
	summary := time.NewTimer(0)
	defer summary.Stop()
	<-summary.C
	scheduled := false
	var lastSummary time.Time
	force := true // the first renewal keeps its random place; so does Resume's
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if wait := a.renewalWait(time.Now()); wait > 0 && !force {
				renew.Reset(wait)
				continue
			}
			force = false
			if !a.isPaused() {
				if err := a.renewLease(ctx); err != nil && ctx.Err() == nil {
					a.log.Error(err, "renewing lease")
				}
			}
			renew.Reset(jitter(a.cfg.RenewInterval))
		case <-a.resumed:
			force = true
			renew.Reset(time.Millisecond)
			if !scheduled {
				scheduled = true
				summary.Reset(time.Until(lastSummary.Add(a.cfg.SummaryInterval)))
			}
		case <-a.kick:
			if !scheduled {
				scheduled = true
				summary.Reset(time.Until(lastSummary.Add(a.cfg.SummaryInterval)))
			}
		case <-summary.C:
			scheduled = false
			a.mu.Lock()
			dirty, paused := a.dirty, a.paused
			a.mu.Unlock()
			if !dirty || paused {
				continue // Resume schedules it again
			}
			if err := a.writeAgentStatus(ctx, nil); err != nil && ctx.Err() == nil {
				a.log.Error(err, "writing agent summary")
				scheduled = true
				summary.Reset(a.cfg.SummaryInterval)
			}
			lastSummary = time.Now()
		}
	}
}

// summaryChangedLocked notes that status.allocated or status.tasks changed.
func (a *Agent) summaryChangedLocked() {
	a.dirty = true
	select {
	case a.kick <- struct{}{}:
	default:
	}
}
