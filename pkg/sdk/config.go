package sdk

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
)

// DefaultRenewInterval is how often the driver renews the framework's Lease.
// It matches the agents' default: 10,000 leases at 10 s are 1,000 writes/s,
// the apiserver's measured ceiling, so it is settable rather than short.
const DefaultRenewInterval = 10 * time.Second

// Config says how to reach the cluster and which Framework to register.
type Config struct {
	// RESTConfig, when set, is used as is. Otherwise Kubeconfig is loaded;
	// with neither, the in-cluster config is used inside a pod, and
	// $KUBECONFIG or ~/.kube/config outside one.
	RESTConfig *rest.Config
	// Kubeconfig is the path of a kubeconfig file.
	Kubeconfig string

	// Namespace of the Framework, its Offers, Tasks and Lease. Defaults to
	// the kubeconfig context's namespace, the pod's namespace in a cluster,
	// then "default".
	Namespace string
	// Name of the Framework object. Required.
	Name string

	// The fields below are used only when the Framework does not exist yet.
	// An existing Framework is adopted as it is, so a restarted scheduler
	// never changes what its running tasks were launched under.

	// Roles to subscribe to; the apiserver defaults them to ["*"].
	Roles []string
	// Capabilities the framework declares, e.g. PARTITION_AWARE.
	Capabilities []agorav1.FrameworkCapability
	// FailoverTimeout; zero leaves the apiserver's default (168h).
	FailoverTimeout time.Duration
	// User tasks run as by default.
	User string
	// Labels put on a newly created Framework.
	Labels map[string]string

	// RenewInterval of the Lease; defaults to DefaultRenewInterval.
	RenewInterval time.Duration
	// Identity written into the Lease's holderIdentity; defaults to
	// hostname_pid, so operators can see which process holds the framework.
	Identity string
	// Logger for background problems (failed Lease renewals); defaults to
	// slog.Default().
	Logger *slog.Logger
	// MaxConcurrentCreates bounds the Task creates the driver has in flight,
	// over all its Accepts together; defaults to DefaultMaxConcurrentCreates.
	MaxConcurrentCreates int
}

// DefaultMaxConcurrentCreates is the default of Config.MaxConcurrentCreates.
const DefaultMaxConcurrentCreates = 16

func (c *Config) complete() error {
	if c.Name == "" {
		return fmt.Errorf("sdk: Config.Name (the Framework's name) is required")
	}
	if c.RESTConfig == nil || c.Namespace == "" {
		rc, ns, err := LoadRESTConfig(c.Kubeconfig)
		if err != nil {
			return err
		}
		if c.RESTConfig == nil {
			c.RESTConfig = rc
		}
		if c.Namespace == "" {
			c.Namespace = ns
		}
	}
	if c.RenewInterval <= 0 {
		c.RenewInterval = DefaultRenewInterval
	}
	if c.MaxConcurrentCreates <= 0 {
		c.MaxConcurrentCreates = DefaultMaxConcurrentCreates
	}
	if c.Identity == "" {
		host, _ := os.Hostname()
		c.Identity = fmt.Sprintf("%s_%d", host, os.Getpid())
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// LoadRESTConfig loads a client config and its default namespace: from the
// kubeconfig file at path when given, else in-cluster inside a pod, else
// from $KUBECONFIG or ~/.kube/config.
func LoadRESTConfig(path string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	} else if os.Getenv("KUBERNETES_SERVICE_HOST") != "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, "", fmt.Errorf("sdk: in-cluster config: %w", err)
		}
		ns := "default"
		if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(b) > 0 {
			ns = string(b)
		}
		return rc, ns, nil
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rc, err := cc.ClientConfig()
	if clientcmd.IsEmptyConfig(err) {
		// client-go's own message suggests KUBERNETES_MASTER, which nothing
		// reads any more; say which files were looked at instead.
		where := strings.Join(rules.GetLoadingPrecedence(), ", ")
		if path != "" {
			where = path
		}
		return nil, "", fmt.Errorf("%w (looked in %s)", ErrNoKubeconfig, where)
	}
	if err != nil {
		return nil, "", fmt.Errorf("sdk: loading kubeconfig: %w", err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return rc, ns, nil
}
