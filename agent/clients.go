package agent

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// Clients are the API clients of one or many agents. Simulated agents share
// one Clients value: one HTTP transport (HTTP/2 multiplexes every agent's
// watch) and one client-side rate limiter for the whole process.
type Clients struct {
	// Agora talks to scheduling.agora.dev/v1alpha1.
	Agora rest.Interface
	// Kube is for Leases, Nodes and Pods.
	Kube kubernetes.Interface
}

// Default client-side rate limits: client-go's 5 QPS would throttle an agent
// whose tasks end in a burst. The apiserver's own fairness is the real limit.
const (
	defaultQPS   = 50
	defaultBurst = 100
)

// NewClients builds clients from cfg. If cfg sets no QPS, qps and burst are
// used (0 picks the defaults).
func NewClients(cfg *rest.Config, qps float32, burst int) (*Clients, error) {
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 && cfg.RateLimiter == nil {
		cfg.QPS, cfg.Burst = defaultQPS, defaultBurst
		if qps != 0 {
			cfg.QPS, cfg.Burst = qps, burst
		}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "agora-agent"
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("agent: HTTP client: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := agorav1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	ac := rest.CopyConfig(cfg)
	gv := agorav1.GroupVersion
	ac.GroupVersion = &gv
	ac.APIPath = "/apis"
	ac.NegotiatedSerializer = serializer.NewCodecFactory(scheme).WithoutConversion()
	agora, err := rest.RESTClientForConfigAndClient(ac, hc)
	if err != nil {
		return nil, fmt.Errorf("agent: agora client: %w", err)
	}
	kube, err := kubernetes.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return nil, fmt.Errorf("agent: kubernetes client: %w", err)
	}
	return &Clients{Agora: agora, Kube: kube}, nil
}
