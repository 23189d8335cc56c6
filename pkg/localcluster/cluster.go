// Package localcluster runs a real local Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager and optionally kube-scheduler)
// from binaries built by hack/build-bins.sh. It backs `agora local` and the
// end-to-end tests, which need what envtest's bare apiserver lacks: garbage
// collection, namespace deletion and service-account tokens.
package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// Options configure Start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager and, with
	// WithScheduler, kube-scheduler (see FindBinDir).
	BinDir string
	// DataDir holds all state: etcd data, certificates, kubeconfigs and
	// logs (DataDir/logs/<component>.log). Starting again on the same
	// DataDir keeps the objects and the CA.
	DataDir string
	// APIServerPort is the apiserver's port on 127.0.0.1; 0 picks a free one.
	APIServerPort int
	// WithScheduler also runs kube-scheduler.
	WithScheduler bool
	// ExtraAPIServerFlags are appended to kube-apiserver's command line and
	// override the defaults (the last value of a flag wins).
	ExtraAPIServerFlags []string
	// Log receives one line per startup and shutdown step; nil discards them.
	Log io.Writer
	// StopTimeout is how long Stop waits for each component after SIGTERM
	// before sending SIGKILL; 0 means 15s.
	StopTimeout time.Duration
}

// Cluster is a running control plane. Its methods are safe for concurrent use.
type Cluster struct {
	opts   Options
	logDir string
	pki    *pki

	// Set during Start, read-only afterwards.
	etcdURL             string
	endpoint            string
	restConfig          *rest.Config
	adminKubeconfig     string
	kcmKubeconfig       string
	schedulerKubeconfig string
	ports               map[string]int // component -> port it listens on
	procs               []*process     // in start order

	lock     *os.File // held while the cluster uses DataDir
	stopOnce sync.Once
	done     chan struct{}
	errMu    sync.Mutex
	err      error // first unexpected exit
}

// Start starts the control plane and returns once it is usable: the
// apiserver is ready and the controller manager has created the default
// ServiceAccount. ctx bounds startup only; the cluster runs until Stop is
// called or a component dies. If startup fails, everything started so far
// is stopped and the error names the component and quotes its log.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 15 * time.Second
	}
	if opts.DataDir == "" {
		return nil, errors.New("localcluster: Options.DataDir is required")
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	opts.DataDir = dataDir
	// Absolute, because the components run with their log dir as cwd.
	if opts.BinDir, err = filepath.Abs(opts.BinDir); err != nil {
		return nil, err
	}
	c := &Cluster{
		opts:   opts,
		logDir: filepath.Join(dataDir, "logs"),
		ports:  map[string]int{},
		done:   make(chan struct{}),
	}
	if err := c.checkBins(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, err
	}
	if c.lock, err = lockDataDir(dataDir); err != nil {
		return nil, err
	}
	begin := time.Now()
	if c.pki, err = newPKI(filepath.Join(dataDir, "pki")); err != nil {
		c.lock.Close()
		return nil, fmt.Errorf("localcluster: %w", err)
	}
	steps := []func(context.Context) error{c.startEtcd, c.startAPIServer, c.startControllerManager}
	if opts.WithScheduler {
		steps = append(steps, c.startScheduler)
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			c.stopAll()
			c.lock.Close()
			close(c.done)
			return nil, fmt.Errorf("localcluster: %w", err)
		}
	}
	for _, p := range c.procs {
		go c.watch(p)
	}
	c.logf("control plane ready at %s in %v; kubeconfig %s", c.endpoint, time.Since(begin).Round(time.Millisecond), c.adminKubeconfig)
	return c, nil
}

// Kubeconfig is the path of an admin kubeconfig (client certificate in
// group system:masters).
func (c *Cluster) Kubeconfig() string { return c.adminKubeconfig }

// RESTConfig returns a new admin client config; callers may modify it.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// Endpoint is the apiserver's URL, https://127.0.0.1:<port>.
func (c *Cluster) Endpoint() string { return c.endpoint }

// Done is closed once every component has exited, after Stop or after a
// component died and the rest were stopped.
func (c *Cluster) Done() <-chan struct{} { return c.done }

// Wait blocks until Done and returns why the cluster ended: nil after Stop,
// otherwise the first component that exited on its own, with its log tail.
func (c *Cluster) Wait() error {
	<-c.done
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Stop stops the components in reverse start order (SIGTERM, then SIGKILL
// after Options.StopTimeout) and returns once all of them have been reaped,
// so their ports are free. It is idempotent and returns what Wait returns.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.logf("stopping control plane")
		c.stopAll()
		c.lock.Close() // closing releases the lock
		close(c.done)
	})
	return c.Wait()
}

// stopAll stops the dependents before what they depend on, so that the
// controller manager does not log a storm of connection errors and the
// apiserver can finish its writes to etcd.
func (c *Cluster) stopAll() {
	for _, p := range c.procs {
		p.stopping.Store(true) // no crash reports from here on
	}
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].stop(c.opts.StopTimeout)
	}
}

// watch reports a component that exits without being asked to and takes
// the rest down with it: a partial control plane only misleads.
func (c *Cluster) watch(p *process) {
	<-p.done
	if p.stopping.Load() {
		return
	}
	err := p.exitError()
	c.errMu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("localcluster: %w", err)
	}
	c.errMu.Unlock()
	c.logf("%s exited unexpectedly; stopping the control plane", p.Name)
	c.Stop()
}

// ErrDataDirInUse: another control plane runs on the same DataDir.
var ErrDataDirInUse = errors.New("localcluster: the data directory is in use by another control plane")

// lockDataDir takes DataDir/.lock for as long as the cluster runs. Without
// it a second cluster on the same directory hung: its etcd waited for ever
// on the first one's database lock. The lock goes with the process, however
// it ends (the file is not inherited by the components).
func lockDataDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("%w: %s is locked by process %s", ErrDataDirInUse, dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("localcluster: locking %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.opts.BinDir, name) }

// checkBins fails early, with a hint, rather than with four exec errors.
func (c *Cluster) checkBins() error {
	need := []string{"etcd", "kube-apiserver", "kube-controller-manager"}
	if c.opts.WithScheduler {
		need = append(need, "kube-scheduler")
	}
	for _, b := range need {
		fi, err := os.Stat(c.bin(b))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("localcluster: no executable %s in BinDir %q; build it with hack/build-bins.sh or FindBinDir", b, c.opts.BinDir)
		}
	}
	return nil
}

func (c *Cluster) logf(format string, args ...any) {
	if c.opts.Log != nil {
		fmt.Fprintf(c.opts.Log, "localcluster: "+format+"\n", args...)
	}
}
