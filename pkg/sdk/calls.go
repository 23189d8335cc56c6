package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// TaskInfo describes a task to launch on an offer (Mesos' TaskInfo).
type TaskInfo struct {
	// Name of the Task object (Mesos' task ID), unique in the namespace.
	// Empty asks the apiserver to generate one from the framework's name.
	Name        string
	Labels      map[string]string
	Annotations map[string]string
	Resources   agorav1.Resources
	Command     agorav1.CommandInfo
	KillPolicy  *agorav1.KillPolicy
	HealthCheck *agorav1.HealthCheck
}

// Shell is a command run with /bin/sh -c.
func Shell(cmd string) agorav1.CommandInfo { return agorav1.CommandInfo{Shell: &cmd} }

// Argv is a command run directly.
func Argv(argv ...string) agorav1.CommandInfo { return agorav1.CommandInfo{Argv: argv} }

// Filters go with an answer (Mesos' Filters). The zero value leaves
// refuseSeconds unset: the master's default, 5 s.
type Filters struct {
	RefuseSeconds *int32
}

// Refuse is a filter that keeps the unused resources away for d.
func Refuse(d time.Duration) Filters {
	s := int32(d.Round(time.Second) / time.Second)
	return Filters{RefuseSeconds: &s}
}

// Accept launches tasks on offer and answers it Accept. It first checks
// locally that the tasks fit together in the offer and that the offer is
// still outstanding, creating nothing otherwise (ErrInsufficientResources,
// ErrOfferGone, ErrOfferAnswered). It then creates one Task per TaskInfo
// naming the offer, concurrently, and once every create has returned sets
// the answer once, with filters for the unused resources. If some creates
// fail it still answers, so the Tasks created launch, and returns those
// (in TaskInfo order) with the errors.
func (d *Driver) Accept(ctx context.Context, offer *agorav1.Offer, tasks []TaskInfo, filters Filters) ([]*agorav1.Task, error) {
	have, err := offer.Spec.Resources.Model()
	if err != nil {
		return nil, fmt.Errorf("sdk: offer %s: %w", offer.Name, err)
	}
	var need resources.Resources
	for i, ti := range tasks {
		m, err := ti.Resources.Model()
		if err != nil {
			return nil, fmt.Errorf("sdk: task %d (%s): %w", i, ti.Name, err)
		}
		if m.Ports.Overlaps(need.Ports) {
			return nil, &InsufficientError{Offer: offer.Name, Detail: &resources.InsufficientError{Kind: -1, Missing: m.Ports.Intersect(need.Ports)}}
		}
		need = need.Add(m)
	}
	if _, err := have.Subtract(need); err != nil {
		var ie *resources.InsufficientError
		errors.As(err, &ie)
		return nil, &InsufficientError{Offer: offer.Name, Detail: ie}
	}
	if err := d.checkOutstanding(ctx, offer); err != nil {
		return nil, err
	}
	d.markAnswered(offer.UID, true)

	created, createErr := d.createTasks(ctx, offer, tasks)
	a := agorav1.OfferAnswer{Type: agorav1.OfferAccept, RefuseSeconds: filters.RefuseSeconds}
	if createErr == nil {
		// The count lets the master settle without listing the Tasks. After
		// a failed create (which may yet have landed) it is left out, and
		// the master lists them.
		n := int32(len(created))
		a.Tasks = &n
	}
	err = d.answer(ctx, offer, a)
	return created, errors.Join(createErr, err)
}

// createTasks creates an offer's Tasks concurrently: an offer of a whole
// agent carries many tasks, and creating them one after another made the
// offer (and every task on it) wait for the sum of the round trips. It
// returns the Tasks created, in TaskInfo order, and the failures. The
// driver's Accepts share Config.MaxConcurrentCreates.
func (d *Driver) createTasks(ctx context.Context, offer *agorav1.Offer, tasks []TaskInfo) ([]*agorav1.Task, error) {
	objs := make([]*agorav1.Task, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, ti := range tasks {
		objs[i] = d.taskFor(offer, ti)
		d.creates <- struct{}{}
		wg.Go(func() {
			defer func() { <-d.creates }()
			if err := d.client.Create(ctx, objs[i]); err != nil {
				errs[i] = fmt.Errorf("sdk: creating task %q: %w", ti.Name, err)
			}
		})
	}
	wg.Wait()
	created := make([]*agorav1.Task, 0, len(tasks))
	for i, t := range objs {
		if errs[i] == nil {
			created = append(created, t)
		}
	}
	return created, errors.Join(errs...)
}

// Decline answers offer Decline: its resources are not offered to this
// framework again for refuseSeconds (0 means offer them again at once).
// The answer counts no Tasks (Decline creates none), so the master settles
// it without listing Tasks; a Task created on the offer some other way and
// not yet seen by the master is dropped.
func (d *Driver) Decline(ctx context.Context, offer *agorav1.Offer, refuseSeconds int32) error {
	d.markAnswered(offer.UID, true)
	var none int32
	return d.answer(ctx, offer, agorav1.OfferAnswer{Type: agorav1.OfferDecline, RefuseSeconds: &refuseSeconds, Tasks: &none})
}

// checkOutstanding reads the offer from the apiserver (not a cache), so a
// rescind the informer has not delivered yet still stops Accept before it
// creates Tasks that could only be dropped.
func (d *Driver) checkOutstanding(ctx context.Context, offer *agorav1.Offer) error {
	cur := &agorav1.Offer{}
	err := d.client.Get(ctx, client.ObjectKeyFromObject(offer), cur)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%w: %s was deleted", ErrOfferGone, offer.Name)
	case err != nil:
		return fmt.Errorf("sdk: reading offer %s: %w", offer.Name, err)
	case cur.UID != offer.UID:
		return fmt.Errorf("%w: %s was replaced by a newer offer", ErrOfferGone, offer.Name)
	case cur.Spec.Answer != nil || cur.Status.Phase == agorav1.OfferAccepted || cur.Status.Phase == agorav1.OfferDeclined:
		return fmt.Errorf("%w: %s", ErrOfferAnswered, offer.Name)
	case cur.Status.Phase == agorav1.OfferRescinded || cur.Status.Phase == agorav1.OfferExpired:
		return fmt.Errorf("%w: %s is %s %s", ErrOfferGone, offer.Name, cur.Status.Phase, cur.Status.Reason)
	case !cur.Spec.ExpiresAt.IsZero() && time.Now().After(cur.Spec.ExpiresAt.Time):
		return fmt.Errorf("%w: %s expired at %s", ErrOfferGone, offer.Name, cur.Spec.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

func (d *Driver) taskFor(offer *agorav1.Offer, ti TaskInfo) *agorav1.Task {
	t := &agorav1.Task{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: d.cfg.Namespace, Name: ti.Name, Labels: ti.Labels, Annotations: ti.Annotations,
			// Owned by the Framework: deleting the Framework removes its tasks.
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: agorav1.GroupVersion.String(), Kind: "Framework", Name: d.cfg.Name, UID: d.fwUID,
			}},
		},
		Spec: agorav1.TaskSpec{
			FrameworkName: d.cfg.Name,
			OfferRef:      agorav1.OfferReference{Name: offer.Name, UID: string(offer.UID)},
			AgentName:     offer.Spec.AgentName,
			Resources:     ti.Resources,
			Command:       ti.Command,
			KillPolicy:    ti.KillPolicy,
			HealthCheck:   ti.HealthCheck,
		},
	}
	if ti.Name == "" {
		t.GenerateName = d.cfg.Name + "-"
	}
	// The framework's user is the default (Mesos' FrameworkInfo.user): the
	// agent reads only Tasks, so it travels on each one.
	if t.Spec.Command.User == "" {
		t.Spec.Command.User = d.cfg.User
	}
	return t
}

// answer writes spec.answer with a merge patch carrying the offer's UID, so
// it can only land on this offer. The CRD's CEL rules make the answer
// write-once and refuse it on a rescinded or expired offer; those refusals
// become ErrOfferAnswered and ErrOfferGone.
func (d *Driver) answer(ctx context.Context, offer *agorav1.Offer, a agorav1.OfferAnswer) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": offer.UID},
		"spec":     map[string]any{"answer": a},
	})
	if err != nil {
		return err
	}
	target := &agorav1.Offer{ObjectMeta: metav1.ObjectMeta{Namespace: offer.Namespace, Name: offer.Name}}
	err = d.client.Patch(ctx, target, client.RawPatch(types.MergePatchType, patch))
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err), apierrors.IsConflict(err), uidMismatch(err):
		err = fmt.Errorf("%w: %s: %v", ErrOfferGone, offer.Name, err)
	case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "rescinded or expired"):
		err = fmt.Errorf("%w: %s", ErrOfferGone, offer.Name)
	case apierrors.IsInvalid(err) && strings.Contains(err.Error(), "answered exactly once"):
		return fmt.Errorf("%w: %s", ErrOfferAnswered, offer.Name)
	default:
		err = fmt.Errorf("sdk: answering offer %s: %w", offer.Name, err)
	}
	if !errors.Is(err, ErrOfferGone) {
		// The offer may still be outstanding: let a later rescind reach the handler.
		d.markAnswered(offer.UID, false)
	}
	return err
}

// uidMismatch reports the apiserver refusing a patch whose metadata.uid is
// not the object's: the object of that name is a newer one.
func uidMismatch(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	var st apierrors.APIStatus
	if !errors.As(err, &st) || st.Status().Details == nil {
		return false
	}
	for _, c := range st.Status().Details.Causes {
		if c.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// markAnswered keeps the driver from reporting an offer it answered itself
// as rescinded when the master settles it.
func (d *Driver) markAnswered(uid types.UID, answered bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if answered {
		d.answered[uid] = true
		delete(d.outstanding, uid)
	} else {
		delete(d.answered, uid)
		d.outstanding[uid] = true
	}
}

// Suppress stops new offers for roles (all the framework's roles when none
// are given), Mesos' SUPPRESS. Offers already held stay outstanding (answer
// them); decline filters are left as they are.
func (d *Driver) Suppress(ctx context.Context, roles ...string) error {
	return d.updateFramework(ctx, func(fw *agorav1.Framework) error {
		want := roles
		if len(want) == 0 {
			want = fw.Spec.Roles
		}
		for _, r := range want {
			if !slices.Contains(fw.Spec.Roles, r) {
				return fmt.Errorf("sdk: cannot suppress role %q: the framework subscribes to %v", r, fw.Spec.Roles)
			}
			if !slices.Contains(fw.Spec.SuppressedRoles, r) {
				fw.Spec.SuppressedRoles = append(fw.Spec.SuppressedRoles, r)
			}
		}
		return nil
	})
}

// Unsuppress resumes offers for roles (all when none are given). It does
// not clear decline filters: that is Revive.
func (d *Driver) Unsuppress(ctx context.Context, roles ...string) error {
	return d.updateFramework(ctx, func(fw *agorav1.Framework) error {
		if len(roles) == 0 {
			fw.Spec.SuppressedRoles = nil
			return nil
		}
		fw.Spec.SuppressedRoles = slices.DeleteFunc(fw.Spec.SuppressedRoles, func(r string) bool { return slices.Contains(roles, r) })
		return nil
	})
}

// Revive clears this framework's decline filters (spec.reviveTime). It does
// not unsuppress: that is Unsuppress.
func (d *Driver) Revive(ctx context.Context) error {
	// reviveTime is stored in whole seconds; rounding up clears filters set
	// earlier in the current second too.
	now := metav1.NewTime(time.Now().Truncate(time.Second).Add(time.Second))
	return d.updateFramework(ctx, func(fw *agorav1.Framework) error {
		if fw.Spec.ReviveTime == nil || fw.Spec.ReviveTime.Before(&now) {
			fw.Spec.ReviveTime = &now
		}
		return nil
	})
}

// updateFramework applies change to the latest Framework and writes it only
// if it changed, retrying on conflicts.
func (d *Driver) updateFramework(ctx context.Context, change func(*agorav1.Framework) error) error {
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		fw := &agorav1.Framework{}
		if err := d.client.Get(ctx, client.ObjectKey{Namespace: d.cfg.Namespace, Name: d.cfg.Name}, fw); err != nil {
			return err
		}
		before := fw.Spec.DeepCopy()
		if err := change(fw); err != nil {
			return err
		}
		if !equalSpec(before, &fw.Spec) {
			if err := d.client.Update(ctx, fw); err != nil {
				return err
			}
		}
		d.mu.Lock()
		d.fw = fw
		d.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("sdk: updating framework %s: %w", d.cfg.Name, err)
	}
	return nil
}

func equalSpec(a, b *agorav1.FrameworkSpec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// Kill asks for the task to be killed (Mesos KILL): sets spec.kill. The
// task's end arrives as a TaskUpdate.
func (d *Driver) Kill(ctx context.Context, taskName string) error {
	t := &agorav1.Task{}
	err := d.client.Get(ctx, client.ObjectKey{Namespace: d.cfg.Namespace, Name: taskName}, t)
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("%w: %s", ErrTaskNotFound, taskName)
	}
	if err != nil {
		return fmt.Errorf("sdk: killing task %s: %w", taskName, err)
	}
	// Frameworks may share a namespace; never kill another one's task.
	if t.Spec.FrameworkName != d.cfg.Name {
		return fmt.Errorf("sdk: task %s belongs to framework %q, not %q", taskName, t.Spec.FrameworkName, d.cfg.Name)
	}
	if t.Spec.Kill {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"uid":%q},"spec":{"kill":true}}`, t.UID)
	err = d.client.Patch(ctx, t, client.RawPatch(types.MergePatchType, []byte(patch)))
	if apierrors.IsNotFound(err) || uidMismatch(err) {
		return fmt.Errorf("%w: %s", ErrTaskNotFound, taskName)
	}
	if err != nil {
		return fmt.Errorf("sdk: killing task %s: %w", taskName, err)
	}
	return nil
}

// Reconcile reads the framework's tasks from the apiserver and delivers the
// latest state of each to the handler (Mesos' explicit reconciliation of
// all tasks), whether or not it changed.
func (d *Driver) Reconcile(ctx context.Context) error {
	tasks, err := d.Tasks(ctx)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range tasks {
		t := &tasks[i]
		if t.Status.State == "" {
			continue
		}
		d.tasks[t.UID] = stateOf(t)
		d.q.push(event{kind: evTask, task: t})
	}
	return nil
}

// Tasks lists the framework's tasks from the apiserver.
func (d *Driver) Tasks(ctx context.Context) ([]agorav1.Task, error) {
	var list agorav1.TaskList
	if err := d.client.List(ctx, &list, client.InNamespace(d.cfg.Namespace),
		client.MatchingFields{"spec.frameworkName": d.cfg.Name}); err != nil {
		return nil, fmt.Errorf("sdk: listing tasks: %w", err)
	}
	return list.Items, nil
}

// Acknowledge deletes a task in a terminal state (Mesos' acknowledgement):
// the framework has seen its end. Tasks that may still run are refused
// with ErrNotTerminal; a task already gone is fine.
func (d *Driver) Acknowledge(ctx context.Context, task *agorav1.Task) error {
	if !IsTerminal(task.Status.State) {
		return fmt.Errorf("%w: %s is %q", ErrNotTerminal, task.Name, task.Status.State)
	}
	uid := task.UID
	err := d.client.Delete(ctx, &agorav1.Task{ObjectMeta: metav1.ObjectMeta{Namespace: task.Namespace, Name: task.Name}},
		client.Preconditions{UID: &uid})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("sdk: acknowledging task %s: %w", task.Name, err)
	}
	return nil
}
