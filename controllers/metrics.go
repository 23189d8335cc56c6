package controllers

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics on the manager's registry, named after Mesos' master metrics.
var (
	allocationRunSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "agora_master_allocation_run_seconds", Help: "Time one allocation round takes.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
	outstandingOffers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "agora_master_outstanding_offers", Help: "Offers made and not yet settled.",
	})
	offersTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agora_master_offers_total", Help: "Offers by framework and outcome (sent, accepted, declined, rescinded, expired).",
	}, []string{"framework", "outcome"})
	tasksByState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agora_master_tasks", Help: "Tasks the master knows, by state.",
	}, []string{"state"})
	invalidTasksTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agora_master_invalid_tasks_total", Help: "Tasks the master ended without binding, by state and reason.",
	}, []string{"state", "reason"})
	tasksMarkedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agora_master_task_state_writes_total", Help: "Master-sourced states of bound tasks (agent lost or removed).",
	}, []string{"state", "reason"})
	frameworkShare = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agora_master_framework_dominant_share", Help: "Weighted dominant share of each framework.",
	}, []string{"framework"})
	roleShare = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agora_master_role_dominant_share", Help: "Weighted dominant share of each role.",
	}, []string{"role"})
	agentsGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "agora_master_agents", Help: "Registered agents by state (reachable, unreachable, unschedulable).",
	}, []string{"state"})
	agentsLostTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agora_master_agents_unreachable_total", Help: "Agents marked unreachable.",
	})
	frameworksTornDownTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agora_master_frameworks_torn_down_total", Help: "Frameworks torn down after their failoverTimeout.",
	})
	settlesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "agora_master_settles_total", Help: "Answered offers settled, by how their Tasks were found (books: the answer's count was seen; list: a consistent list).",
	}, []string{"how"})
	assignmentWritesTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "agora_master_assignment_writes_total", Help: "Writes of agents' Assignments that landed.",
	})
	writeWaitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "agora_master_write_wait_seconds", Help: "Time a write waited in the master's queue, by lane (assign, critical, offers, background).",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
	}, []string{"lane"})
)

func init() {
	metrics.Registry.MustRegister(allocationRunSeconds, outstandingOffers, offersTotal, tasksByState,
		invalidTasksTotal, tasksMarkedTotal, frameworkShare, roleShare, agentsGauge, agentsLostTotal, frameworksTornDownTotal,
		writeWaitSeconds, settlesTotal, assignmentWritesTotal)
}

// updateMetrics refreshes the gauges from the books.
func (e *engine) updateMetrics() {
	n := 0
	for _, o := range e.offers {
		if o.stage != offerSettled {
			n++
		}
	}
	outstandingOffers.Set(float64(n))
	var reachable, unreachable, unschedulable int
	for _, a := range e.agents {
		switch {
		case !a.inAlloc:
		case !a.reachable:
			unreachable++
		case a.unschedulable:
			unschedulable++
		default:
			reachable++
		}
	}
	agentsGauge.WithLabelValues("reachable").Set(float64(reachable))
	agentsGauge.WithLabelValues("unreachable").Set(float64(unreachable))
	agentsGauge.WithLabelValues("unschedulable").Set(float64(unschedulable))
}
