package controllers_test

import (
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/controllers"
	"github.com/agora-sched/agora/pkg/resources"
)

type shape struct{ cpus, mem string }

// converge runs greedy frameworks that launch one task per offer while it
// fits (declining otherwise) until nothing more fits, and counts tasks.
func converge(h *harness, shapes map[string]shape) map[string]int {
	count := map[string]int{}
	idle := 0
	for i := 0; idle < 6 && i < 200; i++ {
		progress := false
		for _, o := range outstanding(h.offers("")) {
			fw := o.Spec.FrameworkName
			s := shapes[fw]
			need := agorav1.Resources{CPUs: q(s.cpus), Mem: q(s.mem)}
			if o.Spec.Resources.CPUs != nil && o.Spec.Resources.Mem != nil &&
				o.Spec.Resources.CPUs.Cmp(*need.CPUs) >= 0 && o.Spec.Resources.Mem.Cmp(*need.Mem) >= 0 {
				count[fw]++
				h.create(h.task(fmt.Sprintf("%s-%d", fw, count[fw]), fw, &o, s.cpus, s.mem, dur("1h")))
				_ = h.answer(&o, agorav1.OfferAccept, 0)
				progress = true
			} else {
				// Nothing fits: decline for long, as Mesos advises, so the
				// rest goes to the others.
				_ = h.answer(&o, agorav1.OfferDecline, 30)
			}
		}
		if progress || len(count) < len(shapes) {
			idle = 0 // wait until every framework was served once
		} else {
			idle++
		}
		h.advance(2 * time.Second)
		time.Sleep(150 * time.Millisecond)
	}
	return count
}

// Two frameworks with different task shapes converge to DRF shares (the
// DRF paper's example: 9 cpus, 18Gi; <1 cpu, 4Gi> and <3 cpus, 1Gi> tasks
// end at 3 and 2 tasks, both at a 2/3 dominant share). A role weight of 2
// doubles a role's share of the same-shaped tasks; a quota limit caps a role.
func TestDRF(t *testing.T) {
	t.Run("shapes", func(t *testing.T) {
		h := newHarness(t, 1, "cpus:9;mem:18Gi;disk:10Gi")
		h.master(masterOpts{name: "m"})
		h.framework("a", nil)
		h.framework("b", nil)
		got := converge(h, map[string]shape{"a": {"1", "4Gi"}, "b": {"3", "1Gi"}})
		if got["a"] != 3 || got["b"] != 2 {
			t.Errorf("DRF gave %v, want a:3 b:2", got)
		}
		// Shares count outstanding offers too, so they are at least 2/3.
		h.eventually("shares written", 20*time.Second, func() bool {
			h.advance(time.Second)
			return parseFloat(h.getFramework("a").Status.DominantShare) >= 0.666 && parseFloat(h.getFramework("b").Status.DominantShare) >= 0.666
		})
	})
	// Kinds left out of fair sharing are left out of the written share too,
	// or a framework holding an agent's whole disk would show 1.000 while
	// DRF ranks it by its cpus.
	t.Run("status-excludes-kinds", func(t *testing.T) {
		h := newHarness(t, 1, "cpus:4;mem:8Gi;disk:10Gi")
		h.master(masterOpts{name: "m", Options: controllers.Options{ExcludedFromShares: resources.KindsOf(resources.Disk)}})
		h.framework("a", nil)
		o := h.waitOffers("a", 1)[0]
		h.create(h.task("a-1", "a", &o, "1", "1Gi", func(tk *agorav1.Task) { tk.Spec.Resources.Disk = q("10Gi") }))
		if err := h.answer(&o, agorav1.OfferAccept, 3600); err != nil {
			t.Fatal(err)
		}
		h.eventually("a's share written as its cpus' quarter", 20*time.Second, func() bool {
			h.advance(time.Second)
			return h.getFramework("a").Status.DominantShare == "0.250"
		})
	})
	t.Run("weights", func(t *testing.T) {
		h := newHarness(t, 1, "cpus:9;mem:18Gi;disk:10Gi")
		h.role("light", nil, nil)
		w := mustQuantity("2")
		h.role("heavy", &w, nil)
		h.master(masterOpts{name: "m"})
		h.framework("a", func(f *agorav1.Framework) { f.Spec.Roles = []string{"light"} })
		h.framework("b", func(f *agorav1.Framework) { f.Spec.Roles = []string{"heavy"} })
		got := converge(h, map[string]shape{"a": {"1", "1Gi"}, "b": {"1", "1Gi"}})
		if got["a"] != 3 || got["b"] != 6 {
			t.Errorf("weighted DRF gave %v, want a:3 b:6", got)
		}
	})
	t.Run("quota-limit", func(t *testing.T) {
		h := newHarness(t, 1, "cpus:9;mem:18Gi;disk:10Gi")
		h.role("capped", nil, &agorav1.Resources{CPUs: q("2")})
		h.role("free", nil, nil)
		h.master(masterOpts{name: "m"})
		h.framework("a", func(f *agorav1.Framework) { f.Spec.Roles = []string{"capped"} })
		h.framework("b", func(f *agorav1.Framework) { f.Spec.Roles = []string{"free"} })
		got := converge(h, map[string]shape{"a": {"1", "1Gi"}, "b": {"1", "1Gi"}})
		if got["a"] != 2 || got["b"] != 7 {
			t.Errorf("quota-limited DRF gave %v, want a:2 b:7; b is %+v", got, h.getFramework("b").Status)
		}
	})
	t.Run("role-not-allowed", func(t *testing.T) {
		h := newHarness(t, 1, "cpus:9;mem:18Gi;disk:10Gi")
		h.master(masterOpts{name: "m"})
		h.framework("x", func(f *agorav1.Framework) { f.Spec.Roles = []string{"secret"} })
		h.eventually("framework Rejected", 20*time.Second, func() bool {
			return h.getFramework("x").Status.Phase == agorav1.FrameworkRejected
		})
		fw := h.getFramework("x")
		for _, c := range fw.Status.Conditions {
			if c.Type == agorav1.FrameworkConditionRegistered && c.Status != metav1.ConditionFalse {
				t.Errorf("Registered condition: %+v", c)
			}
		}
		h.role("secret", nil, nil, h.ns)
		h.eventually("framework Active once its namespace may use the role", 20*time.Second, func() bool {
			return h.getFramework("x").Status.Phase == agorav1.FrameworkActive
		})
		h.waitOffers("x", 1)
	})
}

func (h *harness) role(role string, weight *resourceQuantity, limit *agorav1.Resources, namespaces ...string) {
	h.t.Helper()
	if len(namespaces) == 0 {
		namespaces = []string{h.ns}
	}
	rr := &agorav1.ResourceRole{ObjectMeta: metav1.ObjectMeta{Name: agorav1.RoleObjectName(role)},
		Spec: agorav1.ResourceRoleSpec{Weight: weight, Limit: limit, Namespaces: namespaces}}
	if err := h.c.Create(h.ctx, rr); err != nil {
		h.t.Fatal(err)
	}
}

func parseFloat(s string) float64 {
	var f float64
	_, _ = fmt.Sscanf(s, "%f", &f)
	return f
}
