package sdk

import (
	"context"
	"errors"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	b "github.com/agora-sched/agora/internal/builders"
)

func tasksOf(t *testing.T, ns string) []agorav1.Task {
	t.Helper()
	var list agorav1.TaskList
	if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func getOffer(t *testing.T, o *agorav1.Offer) *agorav1.Offer {
	t.Helper()
	cur := &agorav1.Offer{}
	if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(o), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

func createOffer(t *testing.T, o *agorav1.Offer) *agorav1.Offer {
	t.Helper()
	if err := env.Client.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestAcceptCreatesTasksThenAnswersOnce(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-accept")
	d := connect(t, ns, "fw", func(c *Config) { c.User = "analytics" })
	res := b.Res("2", "1Gi")
	res.Ports = []agorav1.PortRange{{Begin: 31000, End: 31009}}
	o := createOffer(t, b.Offer(ns, "o1", "fw", "node-7").Resources(res).Obj())

	pool, err := NewPool(o)
	if err != nil {
		t.Fatal(err)
	}
	web, ok := pool.TakeWithPorts(b.Res("1", "256Mi"), 2)
	if !ok {
		t.Fatal("1 cpu with 2 ports must fit")
	}
	tasks := []TaskInfo{
		{Name: "web", Resources: web, Command: Shell("serve")},
		{Name: "worker", Resources: b.Res("500m", "512Mi"), Command: agorav1.CommandInfo{Argv: []string{"work", "--hard"}, User: "etl"}, Labels: map[string]string{"app": "x"}},
	}
	created, err := d.Accept(ctx, o, tasks, Refuse(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 2 {
		t.Fatalf("created %d tasks", len(created))
	}
	for _, tk := range tasksOf(t, ns) {
		if tk.Spec.OfferRef.Name != "o1" || tk.Spec.OfferRef.UID != string(o.UID) || tk.Spec.AgentName != "node-7" || tk.Spec.FrameworkName != "fw" {
			t.Errorf("task %s spec = %+v; want offerRef o1/%s on node-7", tk.Name, tk.Spec, o.UID)
		}
		wantUser := map[string]string{"web": "analytics", "worker": "etl"}[tk.Name]
		if tk.Spec.Command.User != wantUser {
			t.Errorf("task %s runs as %q, want %q (the framework's user unless the task names one)", tk.Name, tk.Spec.Command.User, wantUser)
		}
		if len(tk.OwnerReferences) != 1 || tk.OwnerReferences[0].Kind != "Framework" {
			t.Errorf("task %s owners = %v, want the Framework", tk.Name, tk.OwnerReferences)
		}
	}
	if got := Ports(created[0].Spec.Resources); len(got) != 2 || got[0] != 31000 || got[1] != 31001 {
		t.Errorf("web ports = %v, want [31000 31001]", got)
	}
	ans := getOffer(t, o).Spec.Answer
	if ans == nil || ans.Type != agorav1.OfferAccept || ans.RefuseSeconds == nil || *ans.RefuseSeconds != 30 {
		t.Fatalf("answer = %+v, want Accept refuseSeconds 30", ans)
	}

	// Answered exactly once: a second Accept creates nothing.
	_, err = d.Accept(ctx, o, []TaskInfo{{Name: "late", Resources: b.Res("100m", ""), Command: Shell("true")}}, Filters{})
	if !errors.Is(err, ErrOfferAnswered) {
		t.Errorf("second Accept err = %v, want ErrOfferAnswered", err)
	}
	if err := d.Decline(ctx, o, 5); !errors.Is(err, ErrOfferAnswered) {
		t.Errorf("Decline after Accept err = %v, want ErrOfferAnswered", err)
	}
	if n := len(tasksOf(t, ns)); n != 2 {
		t.Errorf("%d tasks after the second Accept, want 2", n)
	}
}

func TestAcceptChecksFitBeforeCreating(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-fit")
	d := connect(t, ns, "fw")
	res := b.Res("1", "1Gi")
	res.Ports = []agorav1.PortRange{{Begin: 31000, End: 31001}}
	o := createOffer(t, b.Offer(ns, "small", "fw", "node-1").Resources(res).Obj())
	cases := map[string][]TaskInfo{
		"too much cpu together": {
			{Name: "a", Resources: b.Res("600m", "100Mi"), Command: Shell("a")},
			{Name: "b", Resources: b.Res("600m", "100Mi"), Command: Shell("b")},
		},
		"a port not offered": {{Name: "c", Resources: agorav1.Resources{CPUs: b.Q("100m"), Ports: []agorav1.PortRange{{Begin: 8080, End: 8080}}}, Command: Shell("c")}},
		"the same port twice": {
			{Name: "d", Resources: agorav1.Resources{CPUs: b.Q("100m"), Ports: []agorav1.PortRange{{Begin: 31000, End: 31000}}}, Command: Shell("d")},
			{Name: "e", Resources: agorav1.Resources{CPUs: b.Q("100m"), Ports: []agorav1.PortRange{{Begin: 31000, End: 31000}}}, Command: Shell("e")},
		},
	}
	for name, tasks := range cases {
		_, err := d.Accept(ctx, o, tasks, Filters{})
		if !errors.Is(err, ErrInsufficientResources) {
			t.Errorf("%s: err = %v, want ErrInsufficientResources", name, err)
		}
	}
	if n := len(tasksOf(t, ns)); n != 0 {
		t.Errorf("%d tasks created for tasks that do not fit", n)
	}
	if getOffer(t, o).Spec.Answer != nil {
		t.Error("an offer was answered although nothing fitted")
	}
}

func TestAcceptOnGoneOfferCreatesNothing(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-gone")
	d := connect(t, ns, "fw")
	task := []TaskInfo{{Name: "t", Resources: b.Res("100m", "32Mi"), Command: Shell("true")}}

	rescinded := createOffer(t, b.Offer(ns, "rescinded", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj())
	rescinded.Status.Phase = agorav1.OfferRescinded
	if err := env.Client.Status().Update(ctx, rescinded); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Accept(ctx, rescinded, task, Filters{}); !errors.Is(err, ErrOfferGone) {
		t.Errorf("Accept on a rescinded offer: err = %v, want ErrOfferGone", err)
	}
	expired := b.Offer(ns, "expired", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
	expired.Spec.ExpiresAt.Time = time.Now().Add(-time.Minute)
	createOffer(t, expired)
	if _, err := d.Accept(ctx, expired, task, Filters{}); !errors.Is(err, ErrOfferGone) {
		t.Errorf("Accept on an expired offer: err = %v, want ErrOfferGone", err)
	}
	deleted := b.Offer(ns, "deleted", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj()
	if _, err := d.Accept(ctx, deleted, task, Filters{}); !errors.Is(err, ErrOfferGone) {
		t.Errorf("Accept on a missing offer: err = %v, want ErrOfferGone", err)
	}
	if n := len(tasksOf(t, ns)); n != 0 {
		t.Errorf("%d tasks created on gone offers, want 0", n)
	}

	// The answer itself is refused by the apiserver when the offer was
	// rescinded after Accept's check (CEL), or replaced by a newer offer of
	// the same name (the UID in the patch).
	if err := d.answer(ctx, rescinded, agorav1.OfferAnswer{Type: agorav1.OfferAccept}); !errors.Is(err, ErrOfferGone) {
		t.Errorf("answering a rescinded offer: err = %v, want ErrOfferGone", err)
	}
	fresh := createOffer(t, b.Offer(ns, "reused", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj())
	stale := fresh.DeepCopy()
	stale.UID = "an-older-offer"
	if err := d.Decline(ctx, stale, 5); !errors.Is(err, ErrOfferGone) {
		t.Errorf("declining a replaced offer: err = %v, want ErrOfferGone", err)
	}
	if getOffer(t, fresh).Spec.Answer != nil {
		t.Error("an answer meant for an older offer landed on the newer one")
	}
}

// Decline sets its filter and counts no Tasks, so the master settles it
// without a list.
func TestDeclineSetsRefuseSeconds(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-decline")
	d := connect(t, ns, "fw")
	o := createOffer(t, b.Offer(ns, "o", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj())
	if err := d.Decline(ctx, o, 120); err != nil {
		t.Fatal(err)
	}
	ans := getOffer(t, o).Spec.Answer
	if ans == nil || ans.Type != agorav1.OfferDecline || *ans.RefuseSeconds != 120 || ans.Tasks == nil || *ans.Tasks != 0 {
		t.Errorf("answer = %+v, want Decline refuseSeconds 120 counting 0 tasks", ans)
	}
	// Accepting with no tasks is a decline with the master's default filter.
	o2 := createOffer(t, b.Offer(ns, "o2", "fw", "node-1").Resources(b.Res("1", "1Gi")).Obj())
	if _, err := d.Accept(ctx, o2, nil, Filters{}); err != nil {
		t.Fatal(err)
	}
	if ans := getOffer(t, o2).Spec.Answer; ans.Type != agorav1.OfferAccept || ans.RefuseSeconds != nil {
		t.Errorf("empty accept answer = %+v", ans)
	}
}

func TestSuppressReviveKeptApart(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-suppress")
	d := connect(t, ns, "fw", func(c *Config) { c.Roles = []string{"a", "b"} })
	get := func() agorav1.FrameworkSpec {
		var fw agorav1.Framework
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "fw"}, &fw); err != nil {
			t.Fatal(err)
		}
		return fw.Spec
	}
	if err := d.Suppress(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if s := get(); len(s.SuppressedRoles) != 1 || s.SuppressedRoles[0] != "a" || s.ReviveTime != nil {
		t.Errorf("after Suppress(a): suppressed=%v reviveTime=%v", s.SuppressedRoles, s.ReviveTime)
	}
	before := time.Now()
	if err := d.Revive(ctx); err != nil {
		t.Fatal(err)
	}
	s := get()
	if len(s.SuppressedRoles) != 1 || s.ReviveTime == nil || s.ReviveTime.Time.Before(before) {
		t.Errorf("after Revive: suppressed=%v reviveTime=%v; Revive must not unsuppress and must not be in the past", s.SuppressedRoles, s.ReviveTime)
	}
	revived := s.ReviveTime
	if err := d.Unsuppress(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if s := get(); len(s.SuppressedRoles) != 0 || !s.ReviveTime.Equal(revived) {
		t.Errorf("after Unsuppress(a): suppressed=%v reviveTime=%v; Unsuppress must not revive", s.SuppressedRoles, s.ReviveTime)
	}
	if err := d.Suppress(ctx); err != nil {
		t.Fatal(err)
	}
	if s := get(); len(s.SuppressedRoles) != 2 {
		t.Errorf("Suppress() suppressed %v, want every role", s.SuppressedRoles)
	}
	if err := d.Suppress(ctx, "c"); err == nil {
		t.Error("suppressing a role the framework does not have must fail")
	}
}

func TestKillAndAcknowledge(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t, "sdk-kill")
	d := connect(t, ns, "fw")
	mine := b.Task(ns, "mine", "fw").OfferRef("o", "uid-1", "node-1").Obj()
	theirs := b.Task(ns, "theirs", "other").OfferRef("o", "uid-1", "node-1").Obj()
	for _, tk := range []*agorav1.Task{mine, theirs} {
		if err := env.Client.Create(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Kill(ctx, "mine"); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(mine), mine); err != nil || !mine.Spec.Kill {
		t.Errorf("spec.kill = %v (%v), want true", mine.Spec.Kill, err)
	}
	if err := d.Kill(ctx, "theirs"); err == nil {
		t.Error("killing another framework's task must fail")
	}
	if err := d.Kill(ctx, "nope"); !errors.Is(err, ErrTaskNotFound) {
		t.Errorf("Kill(nope) = %v, want ErrTaskNotFound", err)
	}

	mine.Status.State = agorav1.TaskRunning
	if err := env.Client.Status().Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if err := d.Acknowledge(ctx, mine); !errors.Is(err, ErrNotTerminal) {
		t.Errorf("Acknowledge(running) = %v, want ErrNotTerminal", err)
	}
	mine.Status.State = agorav1.TaskKilled
	if err := env.Client.Status().Update(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if err := d.Acknowledge(ctx, mine); err != nil {
		t.Fatal(err)
	}
	if n := len(tasksOf(t, ns)); n != 1 {
		t.Errorf("%d tasks left after acknowledging, want 1 (theirs)", n)
	}
	if err := d.Acknowledge(ctx, mine); err != nil {
		t.Errorf("acknowledging twice = %v, want nil", err)
	}
}
