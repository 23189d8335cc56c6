package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// TestAdmitWithAnInvalidNamespaceSelector: a ResourceRole whose
// namespaceSelector does not parse (stored before the CRD checked it)
// admits no namespace and says what to fix; it used to crash the master,
// on every restart, as it described the selector.
func TestAdmitWithAnInvalidNamespaceSelector(t *testing.T) {
	e := newEngine(context.Background(), &Master{opts: Options{Clock: clocktesting.NewFakeClock(time.Now())}, log: logr.Discard()})
	e.roles["selbad"] = &agorav1.ResourceRole{
		ObjectMeta: metav1.ObjectMeta{Name: "selbad"},
		Spec: agorav1.ResourceRoleSpec{NamespaceSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Bogus"}},
		}},
	}
	e.nsLabels["default"] = map[string]string{"team": "a"}
	ok, msg := e.admit(&fwState{ns: "default", name: "fw", roles: []string{"selbad"}})
	if ok {
		t.Fatal("a role with an invalid namespaceSelector admitted a namespace")
	}
	for _, want := range []string{`ResourceRole "selbad" is invalid`, "Bogus", "fix it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the rejection %q does not say %q", msg, want)
		}
	}
	if got := allowedDesc(e.roles["selbad"]); !strings.Contains(got, "invalid") {
		t.Errorf("allowedDesc = %q, want it to call the selector invalid", got)
	}
}
