// Command agora-agent is Agora's node agent (Mesos' agent): it registers the
// node's resources as an Agent object, heartbeats through a Lease, and runs
// the Tasks the master binds to it in cgroups. With --simulate N it runs N
// simulated agents instead (for tests and scale benchmarks).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/agora-sched/agora/agent"
	"github.com/agora-sched/agora/agent/runtime"
	"github.com/agora-sched/agora/agent/sim"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

type options struct {
	nodeName, namespace, kubeconfig, hostname    string
	workDir, checkpointDir, cgroupRoot, hostRoot string
	defaultUser, taskUIDRange, allowedUsers      string
	renewInterval, sandboxRetention              time.Duration
	simulate                                     int
	simConnections                               int
	memReserve, ports, attributes                string
	resourcesFlag                                string
	reserved                                     stringList
	version                                      bool
	// The log server (agora logs from other hosts).
	logBindAddress, logAdvertiseHost string
	logTLSCertFile, logTLSKeyFile    string
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func main() {
	// The supervisor and shim are this binary re-executed: handle them
	// before anything else looks at the arguments.
	if runtime.Main(os.Args) {
		return
	}
	var o options
	fs := flag.NewFlagSet("agora-agent", flag.ExitOnError)
	fs.StringVar(&o.nodeName, "node-name", os.Getenv("NODE_NAME"), "name of this node: the Agent object and its Lease (default $NODE_NAME)")
	fs.StringVar(&o.namespace, "namespace", agent.DefaultNamespace, "namespace of the agent Leases")
	fs.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster configuration)")
	fs.StringVar(&o.hostname, "hostname", "", "hostname reported to frameworks (default: the node name)")
	fs.StringVar(&o.workDir, "work-dir", "/var/lib/agora", "directory of the task sandboxes")
	fs.StringVar(&o.checkpointDir, "checkpoint-dir", "", "directory of the task checkpoints; must survive agent restarts (default <work-dir>/checkpoints)")
	fs.StringVar(&o.cgroupRoot, "cgroup-root", "agora", "parent cgroup of the agent's tasks, relative to each hierarchy")
	fs.StringVar(&o.hostRoot, "host-root", "", "where the host's / is mounted when the agent runs in a container; tasks run chrooted into it")
	fs.StringVar(&o.taskUIDRange, "task-uid-range", runtime.DefaultTaskUIDs.String(), "uids (FIRST-LAST) for tasks that name no user: each framework (namespace/name) gets its own uid, also its gid, no supplementary groups, so tenants cannot signal, trace or read each other's tasks; the mapping is kept in <checkpoint-dir>/.task-uids (agents sharing a host need disjoint ranges unless they share --checkpoint-dir); \"\" runs such tasks as --default-user")
	fs.StringVar(&o.defaultUser, "default-user", "nobody", "user for tasks that name none when --task-uid-range is \"\" (\"\" runs them as the agent's own user)")
	fs.StringVar(&o.allowedUsers, "allowed-users", "", "comma-separated users a Task's spec.command.user may name, e.g. spark,hadoop; no wildcard, root only if listed (default none; without --task-uid-range, --default-user may always be named)")
	fs.DurationVar(&o.renewInterval, "renew-interval", agent.DefaultRenewInterval, "how often the agent heartbeats: it renews its Lease when none of its status writes changed anything for this long, and at least every third interval")
	fs.DurationVar(&o.sandboxRetention, "sandbox-retention", 24*time.Hour, "how long sandboxes of finished tasks are kept")
	fs.IntVar(&o.simulate, "simulate", 0, "run this many simulated agents, named <node-name>-<i>, instead of a real one")
	fs.IntVar(&o.simConnections, "sim-connections", 1, "with --simulate: API connections the simulated agents are spread over (a real agent has one of its own)")
	fs.StringVar(&o.memReserve, "mem-reserve", "512Mi", "memory kept back for the OS on a host that is not a Kubernetes node")
	fs.StringVar(&o.resourcesFlag, "resources", "", "resources to offer instead of the measured ones, in Mesos' form, e.g. 'cpus:2;mem:4Gi;disk:10Gi' (kinds left out keep the measured value; on a Kubernetes node this is ignored)")
	fs.StringVar(&o.ports, "ports", "31000-32000", "port ranges offered to tasks, e.g. 31000-32000,33000-33100")
	fs.StringVar(&o.attributes, "attributes", "", "agent attributes in Mesos' form, e.g. rack:r1;zone:a")
	fs.Var(&o.reserved, "reserved", "static reservation role:resources, e.g. eng:cpus:1;mem:1Gi (repeatable)")
	fs.StringVar(&o.logBindAddress, "log-bind-address", agent.DefaultLogBindAddress, "host:port of the HTTPS server that serves task logs to agora logs (\"\" disables it; agents sharing a host need distinct ports)")
	fs.StringVar(&o.logAdvertiseHost, "log-advertise-address", "", "host (name or IP) clients use to reach the log server, recorded in Task status.logEndpoint (default: --hostname if set, else the node's InternalIP, else the bind host or this machine's hostname)")
	fs.StringVar(&o.logTLSCertFile, "log-tls-cert-file", "", "serving certificate of the log server (default: a self-signed one kept in <work-dir>/.log-server; clients pin its fingerprint from Task status.logCertSHA256)")
	fs.StringVar(&o.logTLSKeyFile, "log-tls-key-file", "", "private key of --log-tls-cert-file")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	klog.InitFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if o.version {
		fmt.Println(agent.Version)
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// Only a signal is a clean exit: an error that merely wraps
	// context.Canceled (one simulated agent failing cancels the others)
	// must still be reported.
	if err := run(ctx, &o); err != nil && ctx.Err() == nil {
		klog.ErrorS(err, "agent failed")
		klog.Flush()
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options) error {
	if o.nodeName == "" {
		return errors.New("--node-name (or NODE_NAME) is required")
	}
	taskUIDs, allowUser, err := userPolicy(o)
	if err != nil {
		return err
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	log := klog.Background()
	attrs, err := agent.ParseAttributes(o.attributes)
	if err != nil {
		return err
	}
	ports, err := resources.Parse("ports:[" + strings.Trim(o.ports, "[]") + "]")
	if err != nil {
		return fmt.Errorf("--ports: %w", err)
	}
	reserved, err := agent.ParseReserved(o.reserved)
	if err != nil {
		return err
	}

	if o.simulate > 0 {
		c, err := sim.Start(ctx, restCfg, sim.Options{Count: o.simulate, NamePrefix: o.nodeName,
			Namespace: o.namespace, RenewInterval: o.renewInterval, Connections: o.simConnections, Log: log,
			Attributes: func(int) []agorav1.Attribute { return attrs }})
		if err != nil {
			return err
		}
		log.Info("simulated agents running", "count", o.simulate)
		<-ctx.Done()
		c.Stop()
		return nil
	}

	clients, err := agent.NewClients(restCfg, 0, 0)
	if err != nil {
		return err
	}
	if o.checkpointDir == "" {
		o.checkpointDir = filepath.Join(o.workDir, "checkpoints")
	}
	rt, err := runtime.New(runtime.Config{
		AgentName: o.nodeName, CgroupRoot: o.cgroupRoot, WorkDir: o.workDir, CheckpointDir: o.checkpointDir,
		RootFS: o.hostRoot, TaskUIDs: taskUIDs, DefaultUser: o.defaultUser, AllowedUsers: allowUser,
		Logf: func(format string, args ...any) { log.Info(fmt.Sprintf(format, args...)) },
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	ex := agent.NewRuntimeExecutor(rt)

	// On a Kubernetes node, Agora gets what the pods leave; on a bare host,
	// what the host has.
	var (
		mu     sync.Mutex
		ag     *agent.Agent
		latest resources.Resources
	)
	setTotal := func(r resources.Resources) {
		mu.Lock()
		defer mu.Unlock()
		latest = r
		if ag != nil {
			ag.SetTotal(r)
		}
	}
	isNode, err := agent.NodeExists(ctx, clients.Kube, o.nodeName)
	if err != nil {
		return fmt.Errorf("looking up node %s: %w", o.nodeName, err)
	}
	if isNode {
		if err := agent.WatchNode(ctx, clients.Kube, o.nodeName, ports.Ports, setTotal); err != nil {
			return err
		}
	} else {
		memReserve, err := resource.ParseQuantity(o.memReserve)
		if err != nil {
			return fmt.Errorf("--mem-reserve: %w", err)
		}
		total, err := agent.DetectHost(agent.HostOptions{HostRoot: o.hostRoot, WorkDir: o.workDir,
			MemReserve: memReserve.Value(), Ports: ports.Ports})
		if err != nil {
			return err
		}
		if total, err = overrideResources(total, o.resourcesFlag); err != nil {
			return err
		}
		setTotal(total)
	}
	mu.Lock()
	total := latest
	mu.Unlock()
	if err := agent.CheckReserved(total, reserved); err != nil {
		return err
	}
	var logs *agent.LogServer
	if o.logBindAddress != "" {
		if logs, err = newLogServer(ctx, o, clients, rt, isNode, log); err != nil {
			return err
		}
	}
	cfg := agent.Config{
		Name: o.nodeName, Namespace: o.namespace, Hostname: o.hostname, Total: total, Reserved: reserved,
		Attributes: attrs, CgroupVersion: ex.CgroupVersion(), Version: agent.Version,
		RenewInterval: o.renewInterval, Executor: ex, Clients: clients, Log: log,
	}
	if logs != nil {
		cfg.LogEndpoint, cfg.LogCertSHA256 = logs.Endpoint(), logs.CertSHA256()
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if logs != nil {
		go func() {
			if err := logs.Serve(ctx, a); err != nil {
				log.Error(err, "log server stopped")
			}
		}()
	}
	mu.Lock()
	ag = a
	a.SetTotal(latest)
	mu.Unlock()
	log.Info("starting agent", "node", o.nodeName, "kubernetesNode", isNode, "total", total.String(),
		"cgroups", rt.Layout().String(), "version", agent.Version)

	go gcSandboxes(ctx, rt, o.sandboxRetention, log.Info)
	return a.Run(ctx)
}

// userPolicy parses --task-uid-range and --allowed-users.
func userPolicy(o *options) (*runtime.IDRange, func(string) error, error) {
	taskUIDs, err := runtime.ParseIDRange(o.taskUIDRange)
	if err != nil {
		return nil, nil, fmt.Errorf("--task-uid-range: %w", err)
	}
	allow, err := runtime.ParseAllowedUsers(o.allowedUsers)
	if err != nil {
		return nil, nil, fmt.Errorf("--allowed-users: %w", err)
	}
	return taskUIDs, allow, nil
}

// newLogServer starts listening for `agora logs`; the host clients reach
// it at is --log-advertise-address, else --hostname, else the Kubernetes
// node's InternalIP, else what agent.LogServerConfig picks.
func newLogServer(ctx context.Context, o *options, clients *agent.Clients, rt *runtime.Runtime, isNode bool, log klog.Logger) (*agent.LogServer, error) {
	host := o.logAdvertiseHost
	if host == "" {
		host = o.hostname
	}
	if host == "" && isNode {
		if node, err := clients.Kube.CoreV1().Nodes().Get(ctx, o.nodeName, metav1.GetOptions{}); err == nil {
			for _, addr := range node.Status.Addresses {
				if addr.Type == corev1.NodeInternalIP {
					host = addr.Address
					break
				}
			}
		}
	}
	s, err := agent.NewLogServer(agent.LogServerConfig{
		BindAddress: o.logBindAddress, AdvertiseHost: host,
		CertFile: o.logTLSCertFile, KeyFile: o.logTLSKeyFile, CertDir: filepath.Join(o.workDir, ".log-server"), // no node name starts with a dot
		Sandbox: rt.SandboxDir, Kube: clients.Kube, Log: log.WithName("logs"),
	})
	if err != nil {
		return nil, fmt.Errorf("--log-bind-address: %w", err)
	}
	return s, nil
}

// gcSandboxes removes old sandboxes of forgotten tasks, hourly.
func gcSandboxes(ctx context.Context, rt *runtime.Runtime, retention time.Duration, logf func(string, ...any)) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if res, err := rt.GC(retention); err != nil {
				logf("sandbox GC failed", "err", err.Error())
			} else {
				logf("sandbox GC", "result", fmt.Sprint(res))
			}
		}
	}
}

// overrideResources replaces the measured scalars with those named in
// --resources (Mesos' agent flag of the same name), e.g. to split one host
// between several local agents.
func overrideResources(measured resources.Resources, flag string) (resources.Resources, error) {
	if strings.TrimSpace(flag) == "" {
		return measured, nil
	}
	given, err := resources.Parse(flag)
	if err != nil {
		return measured, fmt.Errorf("--resources: %w", err)
	}
	for _, part := range strings.Split(flag, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), ":")
		for k := resources.Kind(0); k < resources.NumScalars; k++ {
			if name == k.String() {
				measured.Scalars[k] = given.Scalars[k]
			}
		}
		if name == "ports" {
			measured.Ports = given.Ports
		}
	}
	return measured, measured.Validate()
}
