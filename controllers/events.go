package controllers

import (
	"k8s.io/apimachinery/pkg/runtime"
)

// event records a Kubernetes Event about obj (offers rescinded, tasks
// dropped, frameworks torn down, agents lost). The recorder batches and
// rate-limits them on its own goroutine.
func (e *engine) event(obj runtime.Object, eventType, reason, action, note string, args ...any) {
	if obj == nil || e.m.recorder == nil || e.ctx.Err() != nil {
		return
	}
	e.m.recorder.Eventf(obj, nil, eventType, reason, action, note, args...)
}
