// Command agora-master runs Agora's master: the leader-elected controller
// that offers agents' resources to frameworks by DRF and keeps Offers,
// Tasks and Frameworks true (Mesos' master as a Kubernetes operator).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/controllers"
	"github.com/agora-sched/agora/pkg/dashboard"
	"github.com/agora-sched/agora/pkg/resources"

	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	var (
		o                                   controllers.Options
		kubeconfig, metricsAddr, probeAddr  string
		dashboardAddr, leNamespace, openRls string
		pprofAddr, excluded                 string
		qps                                 float64
		burst                               int
		leaderElect                         bool
	)
	flag.DurationVar(&o.AllocationInterval, "allocation-interval", controllers.DefaultAllocationInterval, "time between periodic allocation rounds (events also trigger rounds, batched)")
	flag.DurationVar(&o.AllocationBatch, "allocation-batch", controllers.DefaultAllocationBatch, "how long an event-triggered allocation round waits for more events, so freed resources go out in fewer, larger offers (negative: no wait)")
	flag.IntVar(&o.MaxOffersPerFramework, "max-offers-per-framework", controllers.DefaultMaxOffersPerFramework, "most offers a framework holds unanswered; it gets no more until it answers some (negative: no cap)")
	flag.DurationVar(&o.OfferTimeout, "offer-timeout", controllers.DefaultOfferTimeout, "how long an offer may stay unanswered before it expires")
	flag.DurationVar(&o.AgentTimeout, "agent-timeout", controllers.DefaultAgentTimeout, "an agent whose Lease is not seen to change for this long is unreachable")
	flag.DurationVar(&o.FrameworkTimeout, "framework-timeout", controllers.DefaultFrameworkTimeout, "a framework whose Lease is not seen to change for this long is Inactive")
	flag.Float64Var(&o.AgentRemovalRate, "agent-removal-rate", controllers.DefaultAgentRemovalRate, "most agents marked unreachable per second (Mesos' agent_removal_rate_limit)")
	flag.DurationVar(&o.TaskRetention, "task-retention", controllers.DefaultTaskRetention, "terminal tasks are deleted after max(this, the framework's failoverTimeout)")
	flag.StringVar(&o.AgentNamespace, "agent-namespace", controllers.DefaultAgentNamespace, "namespace of the agents' heartbeat Leases")
	flag.IntVar(&o.Workers, "writers", controllers.DefaultWorkers, "concurrent API writes (offers, binds, settles)")
	flag.StringVar(&openRls, "open-roles", "*", "comma-separated roles every namespace may use unless their ResourceRole restricts them")
	// client-go's default of 20 requests/s would throttle the master long
	// before the apiserver (700-1000 writes/s here) is the bottleneck.
	flag.StringVar(&excluded, "fair-sharing-excluded-resource-names", "", "comma-separated resources left out of DRF dominant shares (Mesos' flag of the same name), e.g. disk when agents offer their whole disk and no task asks for it")
	flag.Float64Var(&qps, "kube-api-qps", 500, "requests per second the master may send to the apiserver")
	flag.IntVar(&burst, "kube-api-burst", 1000, "burst of requests above --kube-api-qps")
	flag.BoolVar(&leaderElect, "leader-elect", false, "elect a leader; only the leader allocates")
	flag.StringVar(&leNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the in-cluster namespace)")
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "address of the Prometheus metrics endpoint (0 disables it)")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "", "address of net/http/pprof's /debug/pprof (empty disables it); for profiling, e.g. by make bench-scale")
	flag.StringVar(&dashboardAddr, "dashboard-bind-address", "127.0.0.1:8082", "address of the read-only web dashboard (0 or empty disables it); it shows every tenant, so keep it on localhost and use kubectl port-forward")
	// controller-runtime's config package may already have registered
	// --kubeconfig (it does so in an init function); define it only if not.
	if flag.Lookup("kubeconfig") == nil {
		flag.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG)")
	}
	lcfg := textlogger.NewConfig()
	lcfg.AddFlags(flag.CommandLine)
	flag.Parse()
	kubeconfig = flag.Lookup("kubeconfig").Value.String()
	ctrl.SetLogger(textlogger.NewLogger(lcfg))
	klog.SetLogger(ctrl.Log)
	log := ctrl.Log.WithName("agora-master")
	var err error
	if openRls != "" {
		o.OpenRoles = strings.Split(openRls, ",")
	} else {
		o.OpenRoles = []string{}
	}

	if o.ExcludedFromShares, err = parseKinds(excluded); err != nil {
		log.Error(err, "bad --fair-sharing-excluded-resource-names")
		os.Exit(2)
	}

	cfg, err := restConfig(kubeconfig)
	if err != nil {
		log.Error(err, "loading the kubeconfig")
		os.Exit(1)
	}
	cfg.QPS, cfg.Burst = float32(qps), burst
	renew, lease, retry := 10*time.Second, 15*time.Second, 2*time.Second
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                        scheme(),
		Cache:                         controllers.CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "agora-master",
		LeaderElectionNamespace:       leNamespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &lease,
		RenewDeadline:                 &renew,
		RetryPeriod:                   &retry,
	})
	if err != nil {
		log.Error(err, "creating the manager")
		os.Exit(1)
	}
	if _, err := controllers.New(mgr, o); err != nil {
		log.Error(err, "creating the master")
		os.Exit(1)
	}
	if dashboard.Enabled(dashboardAddr) {
		if err := mgr.Add(dashboard.New(mgr.GetCache(), dashboard.Options{Addr: dashboardAddr, Log: ctrl.Log.WithName("dashboard")})); err != nil {
			log.Error(err, "adding the dashboard")
			os.Exit(1)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "adding the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "adding the ready check")
		os.Exit(1)
	}
	log.Info("starting", "allocationInterval", o.AllocationInterval, "offerTimeout", o.OfferTimeout,
		"agentTimeout", o.AgentTimeout, "frameworkTimeout", o.FrameworkTimeout, "leaderElect", leaderElect)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "running the manager")
		os.Exit(1)
	}
}

func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	c, err := config.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("no kubeconfig: %w", err)
	}
	return c, nil
}

func scheme() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := agorav1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// parseKinds reads a comma-separated list of scalar resource names.
func parseKinds(list string) (resources.KindSet, error) {
	var set resources.KindSet
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		k, err := resources.ParseKind(name)
		if err != nil {
			return 0, err
		}
		set |= resources.KindsOf(k)
	}
	return set, nil
}
