package controllers_test

import (
	"encoding/json"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	"k8s.io/apimachinery/pkg/types"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/klog/v2/textlogger"
)

type resourceQuantity = resource.Quantity

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

func newTestLogger() logr.Logger {
	_ = os.Stderr
	return textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(2)))
}

func keyOf(ns, name string) client.ObjectKey { return client.ObjectKey{Namespace: ns, Name: name} }

func nowTime() *metav1.Time { t := metav1.Now(); return &t }

func (h *harness) getFramework(name string) *agorav1.Framework {
	fw := &agorav1.Framework{}
	if err := h.c.Get(h.ctx, keyOf(h.ns, name), fw); err != nil {
		h.t.Fatal(err)
	}
	return fw
}

type metav1Duration = metav1.Duration

// patchStatus merges status into obj's status subresource, as its writer
// (an agent) would.
func (h *harness) patchStatus(obj client.Object, status map[string]any) {
	h.t.Helper()
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Status().Patch(h.ctx, obj, client.RawPatch(types.MergePatchType, body)); err != nil {
		h.t.Fatal(err)
	}
}

// waitAgentReady waits until the Agent's Ready condition has status and
// reason.
func (h *harness) waitAgentReady(name string, status metav1.ConditionStatus, reason string) {
	h.t.Helper()
	h.eventually("agent "+name+" Ready "+string(status)+" "+reason, 20*time.Second, func() bool {
		var a agorav1.Agent
		if err := h.c.Get(h.ctx, client.ObjectKey{Name: name}, &a); err != nil {
			return false
		}
		last := meta.FindStatusCondition(a.Status.Conditions, agorav1.AgentConditionReady)
		return last != nil && last.Status == status && last.Reason == reason
	})
}
