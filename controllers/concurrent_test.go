package controllers_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

type expect int

const (
	expBound   expect = iota // bound (any state after)
	expInvalid               // DROPPED/LOST REASON_INVALID_OFFERS, never bound
	expError                 // TASK_ERROR REASON_TASK_INVALID, never bound
	expEither                // raced with the answer: bound or invalid
)

// Two frameworks launch over 100 tasks concurrently against their offers,
// including tasks naming the other framework's offer, tasks that do not
// fit or name the wrong agent, tasks racing a decline, and tasks naming a
// rescinded, an expired and an unknown offer. The checker watches that no
// agent is ever over-committed and every offer settles once; every task
// ends as the BRIEF says.
func TestConcurrentFrameworks(t *testing.T) {
	h := newHarness(t, 4, "cpus:8;mem:16Gi;disk:10Gi")
	h.master(masterOpts{name: "m"})
	h.framework("alpha", func(f *agorav1.Framework) {
		f.Spec.Capabilities = []agorav1.FrameworkCapability{agorav1.CapabilityPartitionAware}
	})
	h.framework("beta", nil)
	pa := map[string]bool{"alpha": true}

	var mu sync.Mutex
	want := map[string]expect{}
	owner := map[string]string{}
	var wg sync.WaitGroup
	launch := func(fw string, tk *agorav1.Task, e expect) {
		mu.Lock()
		want[tk.Name], owner[tk.Name] = e, fw
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.c.Create(h.ctx, tk); err != nil {
				t.Errorf("creating %s: %v", tk.Name, err)
			}
		}()
	}
	handled := map[string]bool{}
	n := 0
	names := h.agents.Names()
	for round := 0; n < 100 && round < 60; round++ {
		all := h.offers("")
		byFw := map[string][]agorav1.Offer{}
		for _, o := range outstanding(all) {
			byFw[o.Spec.FrameworkName] = append(byFw[o.Spec.FrameworkName], o)
		}
		for _, fw := range []string{"alpha", "beta"} {
			other := "beta"
			if fw == "beta" {
				other = "alpha"
			}
			for i := range byFw[fw] {
				o := byFw[fw][i]
				if handled[o.Name] {
					continue
				}
				handled[o.Name] = true
				cpus, mem := o.Spec.Resources.CPUs.MilliValue(), o.Spec.Resources.Mem.Value()
				fit := min(int64(2), cpus/500, mem/(256<<20))
				for j := int64(0); j < fit; j++ {
					n++
					launch(fw, h.task(fmt.Sprintf("%s-ok-%d", fw, n), fw, &o, "500m", "256Mi", dur("2s")), expBound)
				}
				n++
				launch(fw, h.task(fmt.Sprintf("%s-big-%d", fw, n), fw, &o, resource.NewMilliQuantity(cpus+1000, resource.DecimalSI).String(), "1Mi"), expError)
				n++
				wrong := names[0]
				if wrong == o.Spec.AgentName {
					wrong = names[1]
				}
				launch(fw, h.task(fmt.Sprintf("%s-agent-%d", fw, n), fw, &o, "100m", "1Mi", func(tk *agorav1.Task) { tk.Spec.AgentName = wrong }), expError)
				if len(byFw[other]) > 0 {
					n++
					launch(fw, h.task(fmt.Sprintf("%s-foreign-%d", fw, n), fw, &byFw[other][0], "100m", "1Mi"), expInvalid)
				}
				wg.Wait()
				roomy := cpus-fit*500 >= 200 && mem-fit*(256<<20) >= 2<<20
				if n%3 == 0 && roomy {
					// Decline in flight: tasks race the answer.
					for j := 0; j < 2; j++ {
						n++
						launch(fw, h.task(fmt.Sprintf("%s-race-%d", fw, n), fw, &o, "100m", "1Mi", dur("1s")), expEither)
					}
					if err := h.answer(&o, agorav1.OfferDecline, 1); err != nil {
						t.Errorf("declining %s: %v", o.Name, err)
					}
					wg.Wait()
				} else if err := h.answer(&o, agorav1.OfferAccept, 1); err != nil {
					t.Errorf("accepting %s: %v", o.Name, err)
				}
			}
		}
		h.advance(time.Second)
		time.Sleep(200 * time.Millisecond)
	}
	if n < 100 {
		t.Fatalf("only %d tasks launched", n)
	}

	// A rescinded offer: alpha is deactivated.
	ro := h.waitOffers("alpha", 1)[0]
	patchFramework(h, "alpha", func(f *agorav1.Framework) { f.Spec.Deactivated = true })
	h.waitOfferPhase(ro.Name, agorav1.OfferRescinded)
	launch("alpha", h.task("alpha-rescinded", "alpha", &ro, "100m", "1Mi"), expInvalid)
	// An expired offer: beta leaves one unanswered past the offer timeout.
	eo := h.waitOffers("beta", 1)[0]
	h.advance(61 * time.Second)
	h.waitOfferPhase(eo.Name, agorav1.OfferExpired)
	launch("beta", h.task("beta-expired", "beta", &eo, "100m", "1Mi"), expInvalid)
	// An offer that never existed.
	ghost := eo.DeepCopy()
	ghost.Name, ghost.UID = "no-such-offer", "00000000-0000-0000-0000-000000000000"
	launch("beta", h.task("beta-ghost", "beta", ghost, "100m", "1Mi"), expInvalid)
	wg.Wait()

	for name, e := range want {
		tk := h.waitTask(name, func(s agorav1.TaskStatus) bool { return s.State != "" })
		inv := agorav1.TaskLost
		if pa[owner[name]] {
			inv = agorav1.TaskDropped
		}
		s := tk.Status
		isInvalid := s.State == inv && s.Reason == agorav1.ReasonInvalidOffers && s.BindTime == nil
		switch e {
		case expBound:
			if s.BindTime == nil {
				t.Errorf("task %s should be bound: %s %s %s", name, s.State, s.Reason, s.Message)
			}
		case expInvalid:
			if !isInvalid {
				t.Errorf("task %s: %s %s (%s), want %s %s", name, s.State, s.Reason, s.Message, inv, agorav1.ReasonInvalidOffers)
			}
		case expError:
			if s.State != agorav1.TaskError || s.Reason != agorav1.ReasonTaskInvalid || s.BindTime != nil {
				t.Errorf("task %s: %s %s (%s), want TASK_ERROR REASON_TASK_INVALID", name, s.State, s.Reason, s.Message)
			}
		case expEither:
			if s.BindTime == nil && !isInvalid {
				t.Errorf("task %s raced a decline: %s %s (%s), want bound or %s", name, s.State, s.Reason, s.Message, inv)
			}
		}
	}
	h.checker.Sync()
	t.Logf("%d tasks checked", len(want))
}

func dur(d string) func(*agorav1.Task) {
	return func(t *agorav1.Task) {
		t.Annotations = map[string]string{"sim.agora.dev/duration": d}
	}
}

func patchFramework(h *harness, name string, mutate func(*agorav1.Framework)) {
	h.t.Helper()
	fw := h.getFramework(name)
	p := client.MergeFrom(fw.DeepCopy())
	mutate(fw)
	if err := h.c.Patch(h.ctx, fw, p); err != nil {
		h.t.Fatal(err)
	}
}

// waitAccepted waits until an accepted offer is settled: the master
// deletes it.
func (h *harness) waitAccepted(name string) {
	h.t.Helper()
	h.eventually(fmt.Sprintf("offer %s accepted and deleted", name), 20*time.Second, func() bool {
		err := h.c.Get(h.ctx, keyOf(h.ns, name), &agorav1.Offer{})
		return apierrors.IsNotFound(err)
	})
}

func (h *harness) waitOfferPhase(name string, phase agorav1.OfferPhase) *agorav1.Offer {
	h.t.Helper()
	o := &agorav1.Offer{}
	h.eventually(fmt.Sprintf("offer %s %s", name, phase), 20*time.Second, func() bool {
		if err := h.c.Get(h.ctx, keyOf(h.ns, name), o); err != nil {
			return false
		}
		return o.Status.Phase == phase
	})
	return o
}
