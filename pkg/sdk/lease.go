package sdk

import (
	"context"
	"math"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// LeaseName is the name of the framework's liveness Lease.
func (d *Driver) LeaseName() string { return d.lease }

func (d *Driver) renewLoop(ctx context.Context) {
	t := time.NewTicker(d.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, d.cfg.RenewInterval)
		err := d.renewLease(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			d.cfg.Logger.Warn("renewing the framework's Lease failed; the master marks the framework inactive if this persists",
				"framework", d.cfg.Name, "namespace", d.cfg.Namespace, "lease", d.lease, "error", err)
		}
	}
}

// renewLease writes renewTime. The master judges liveness by seeing the
// Lease change on its own clock, so the value matters less than the write.
// It keeps the last written Lease to renew with one write, not a read and a
// write; a conflict (someone else wrote it) costs one read.
func (d *Driver) renewLease(ctx context.Context) error {
	d.mu.Lock()
	cur := d.leaseObj
	d.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if cur == nil {
			cur = &coordinationv1.Lease{}
			err := d.client.Get(ctx, client.ObjectKey{Namespace: d.cfg.Namespace, Name: d.lease}, cur)
			if apierrors.IsNotFound(err) {
				cur = nil
			} else if err != nil {
				return err
			}
		}
		now := metav1.NowMicro()
		var err error
		var l *coordinationv1.Lease
		if cur == nil {
			l = d.newLease(now)
			err = d.client.Create(ctx, l)
		} else {
			l = cur.DeepCopy()
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != d.cfg.Identity {
				// A new scheduler process took over (failover): count it.
				l.Spec.HolderIdentity = ptr.To(d.cfg.Identity)
				l.Spec.AcquireTime = &now
				l.Spec.LeaseTransitions = ptr.To(ptr.Deref(l.Spec.LeaseTransitions, 0) + 1)
			}
			l.Spec.LeaseDurationSeconds = ptr.To(d.leaseDurationSeconds())
			l.Spec.RenewTime = &now
			err = d.client.Update(ctx, l)
		}
		if err == nil {
			d.mu.Lock()
			d.leaseObj = l
			d.mu.Unlock()
			return nil
		}
		if attempt == 0 && (apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err)) {
			cur = nil // re-read and try once more
			continue
		}
		d.mu.Lock()
		d.leaseObj = nil
		d.mu.Unlock()
		return err
	}
}

// leaseDurationSeconds is informative for operators: three missed renewals.
// The master applies its own timeout and the framework's failoverTimeout.
func (d *Driver) leaseDurationSeconds() int32 {
	return int32(math.Ceil(3 * d.cfg.RenewInterval.Seconds()))
}

func (d *Driver) newLease(now metav1.MicroTime) *coordinationv1.Lease {
	return &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: d.cfg.Namespace, Name: d.lease,
			// Owned by the Framework so deleting it removes the Lease too.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: agorav1.GroupVersion.String(), Kind: "Framework",
				Name: d.cfg.Name, UID: d.fwUID,
			}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(d.cfg.Identity),
			LeaseDurationSeconds: ptr.To(d.leaseDurationSeconds()),
			AcquireTime:          &now,
			RenewTime:            &now,
			LeaseTransitions:     ptr.To(int32(0)),
		},
	}
}
