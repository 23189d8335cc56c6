package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/validation"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/examples/batch"
	"github.com/agora-sched/agora/pkg/sdk"
)

type runOptions struct {
	cpus, mem  string
	framework  string
	namespace  string
	kubeconfig string
	name       string
	role       string
	timeout    time.Duration
}

func newRunCommand() *cobra.Command {
	o := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run [flags] -- CMD [ARGS...]",
		Short: "Run one command as an Agora task, like mesos-execute",
		Long: `run registers (or adopts) a framework, waits for an offer the task fits in,
launches the task, prints its state changes and exits with its exit code.

One argument is run with /bin/sh -c ("agora run -- 'echo $HOSTNAME'");
several are run as an argv ("agora run -- sleep 10").

Concurrent runs should use different --framework names: runs sharing a
framework share its offers and its suppression.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New(`agora run needs a command: agora run [flags] -- CMD [ARGS...]`)
			}
			if strings.TrimSpace(args[0]) == "" {
				return errors.New("agora run: the command must not be empty")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTask(cmd.Context(), o, args, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cpus, "cpus", "0.1", "cpus of the task, e.g. 0.5 or 500m")
	f.StringVar(&o.mem, "mem", "32Mi", "memory of the task, e.g. 128Mi")
	f.StringVar(&o.framework, "framework", "agora-run", "framework to register or adopt")
	f.StringVarP(&o.namespace, "namespace", "n", "", "namespace of the framework (default: the kubeconfig's)")
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&o.name, "name", "", "name of the Task object (default: <framework>-<random>)")
	f.StringVar(&o.role, "role", "", "role to subscribe to if the framework is new (default *)")
	f.DurationVar(&o.timeout, "timeout", 0, "give up if the task has not been launched by then (0: wait for ever)")
	return cmd
}

// taskInfo checks the flags and builds the task; errors say which flag is wrong.
func (o *runOptions) taskInfo(args []string) (sdk.TaskInfo, error) {
	res, err := sdk.ParseResources(o.cpus, o.mem)
	if err != nil {
		return sdk.TaskInfo{}, fmt.Errorf("agora run: %w (--cpus %q, --mem %q)", err, o.cpus, o.mem)
	}
	if o.framework == "" {
		return sdk.TaskInfo{}, errors.New("agora run: --framework must not be empty")
	}
	if errs := validation.IsDNS1123Subdomain(o.framework); len(errs) > 0 {
		return sdk.TaskInfo{}, fmt.Errorf("agora run: --framework %q is not a valid object name: %s", o.framework, strings.Join(errs, "; "))
	}
	if o.timeout < 0 {
		return sdk.TaskInfo{}, fmt.Errorf("agora run: --timeout must not be negative, got %s", o.timeout)
	}
	ti := sdk.TaskInfo{Name: o.name, Resources: res, Command: sdk.Argv(args...)}
	if len(args) == 1 {
		ti.Command = sdk.Shell(args[0])
	}
	if ti.Name == "" {
		ti.Name = o.framework + "-" + batch.RandomID()
	}
	// Checked here: the apiserver's refusal would come only with an offer,
	// and again with every offer after it.
	if errs := validation.IsDNS1123Subdomain(ti.Name); len(errs) > 0 {
		flag := "--name"
		if o.name == "" {
			flag = "--framework (the task is named <framework>-<random>)"
		}
		return sdk.TaskInfo{}, fmt.Errorf("agora run: task name %q is not a valid object name: %s; change %s", ti.Name, strings.Join(errs, "; "), flag)
	}
	return ti, nil
}

// permanent says whether a failed launch would fail on any offer: the
// apiserver refused the Task itself, not the offer.
func permanent(err error) bool {
	return apierrors.IsAlreadyExists(err) || apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err)
}

// rejection is the master's reason for refusing the framework, or "" if
// it has not (a Rejected framework gets no offers, so run would wait for ever).
func rejection(fw *agorav1.Framework) string {
	if fw == nil || fw.Status.Phase != agorav1.FrameworkRejected {
		return ""
	}
	if c := meta.FindStatusCondition(fw.Status.Conditions, agorav1.FrameworkConditionRegistered); c != nil && c.Message != "" {
		return c.Message
	}
	return "no reason given"
}

// runHandler launches one task on the first offer it fits in and follows it.
type runHandler struct {
	info     sdk.TaskInfo
	out      io.Writer
	mu       sync.Mutex // launched is read after Run, and by the timeout
	launched bool
	waiting  bool
	final    *agorav1.Task
	failed   error // a launch no later offer can fix
}

func (h *runHandler) isLaunched() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.launched
}

func (h *runHandler) OfferReceived(ctx context.Context, d *sdk.Driver, offer *agorav1.Offer) {
	if h.isLaunched() {
		_ = d.Decline(ctx, offer, 120)
		return
	}
	if !sdk.Fits(offer, h.info.Resources) {
		if !h.waiting {
			fmt.Fprintf(h.out, "waiting for an offer with %s (the offer from %s has %s)\n", describeResources(h.info.Resources), offer.Spec.AgentName, offeredCPUsMem(offer))
			h.waiting = true
		}
		_ = d.Decline(ctx, offer, agorav1.DefaultRefuseSeconds)
		return
	}
	if _, err := d.Accept(ctx, offer, []sdk.TaskInfo{h.info}, sdk.Refuse(120*time.Second)); err != nil {
		if permanent(err) {
			// Every offer would fail the same way: stop instead of retrying.
			h.failed = err
			if apierrors.IsAlreadyExists(err) {
				h.failed = fmt.Errorf("a Task named %s already exists in namespace %s: choose another --name, or delete it", h.info.Name, d.Namespace())
			}
			d.Stop()
			return
		}
		if !errors.Is(err, sdk.ErrOfferGone) {
			fmt.Fprintf(h.out, "launching on %s: %v\n", offer.Spec.AgentName, err)
		}
		return
	}
	h.mu.Lock()
	h.launched = true
	h.mu.Unlock()
	fmt.Fprintf(h.out, "launched task %s on %s\n", h.info.Name, offer.Spec.AgentName)
	_ = d.Suppress(ctx) // one task: no more offers needed
}

func (h *runHandler) OfferRescinded(context.Context, *sdk.Driver, *agorav1.Offer) {}

func (h *runHandler) TaskUpdate(ctx context.Context, d *sdk.Driver, t *agorav1.Task) {
	if t.Name != h.info.Name {
		return
	}
	fmt.Fprintln(h.out, stateLine(t))
	if sdk.IsTerminal(t.Status.State) {
		h.final = t
		_ = d.Acknowledge(ctx, t)
		d.Stop()
	}
}

func runTask(ctx context.Context, o *runOptions, args []string, out io.Writer) error {
	info, err := o.taskInfo(args)
	if err != nil {
		return err
	}
	cfg := sdk.Config{Kubeconfig: o.kubeconfig, Namespace: o.namespace, Name: o.framework}
	if o.role != "" {
		cfg.Roles = []string{o.role}
	}
	d, err := sdk.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	// An adopted framework may be suppressed or filtered by an earlier run.
	if err := d.Unsuppress(ctx); err != nil {
		return err
	}
	if err := d.Revive(ctx); err != nil {
		return err
	}
	h := &runHandler{info: info, out: out}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timedOut atomic.Bool
	if o.timeout > 0 {
		// The timeout bounds the wait for an offer, not the task's run.
		t := time.AfterFunc(o.timeout, func() {
			if !h.isLaunched() {
				timedOut.Store(true)
				cancel()
			}
		})
		defer t.Stop()
	}
	// The master refuses a framework whose namespace may not use its role
	// (--role, or the roles of an adopted framework): say why instead of
	// waiting for offers that cannot come.
	var rejected atomic.Pointer[string]
	go func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			if msg := rejection(d.Framework()); msg != "" && !h.isLaunched() {
				rejected.Store(&msg)
				cancel()
				return
			}
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	runErr := d.Run(runCtx, h)
	if h.failed != nil {
		return fmt.Errorf("agora run: launching task %s: %w", info.Name, h.failed)
	}
	if msg := rejected.Load(); msg != nil && h.final == nil && !h.isLaunched() {
		return fmt.Errorf("agora run: the master rejected framework %s/%s: %s", d.Namespace(), d.Name(), *msg)
	}
	if h.final == nil {
		switch {
		case timedOut.Load() && !h.isLaunched():
			return fmt.Errorf("agora run: no offer with %s arrived within %s", describeResources(info.Resources), o.timeout)
		case h.isLaunched() && (ctx.Err() != nil || timedOut.Load()):
			// Interrupted: do not leave the task running (mesos-execute kills it too).
			kctx, kcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer kcancel()
			if err := d.Kill(kctx, info.Name); err != nil {
				return fmt.Errorf("agora run: interrupted, and killing task %s failed: %w", info.Name, err)
			}
			return fmt.Errorf("agora run: interrupted; asked for task %s to be killed", info.Name)
		case ctx.Err() != nil:
			return errors.New("agora run: interrupted before the task was launched")
		case runErr == nil:
			runErr = errors.New("agora run: stopped before the task ended")
		}
		return runErr
	}
	return taskExit(h.final)
}

// taskExit maps a final task to the command's result: nil when it
// finished, its exit code when it has one, else 1 (also for the -1 of a
// process killed by a signal, which no shell could exit with).
func taskExit(t *agorav1.Task) error {
	if c := t.Status.ExitCode; c != nil && *c != 0 {
		if *c < 0 || *c > 255 {
			return exitCodeError{code: 1}
		}
		return exitCodeError{code: int(*c)}
	}
	if t.Status.State == agorav1.TaskFinished {
		return nil
	}
	return exitCodeError{code: 1}
}

// stateLine is one line per state change: state, agent, reason, exit code, message.
func stateLine(t *agorav1.Task) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", t.Name, t.Status.State)
	if t.Spec.AgentName != "" {
		fmt.Fprintf(&b, " on %s", t.Spec.AgentName)
	}
	if t.Status.ExitCode != nil {
		fmt.Fprintf(&b, " exit %d", *t.Status.ExitCode)
	}
	if t.Status.Reason != "" {
		fmt.Fprintf(&b, " %s", t.Status.Reason)
	}
	if t.Status.Message != "" {
		fmt.Fprintf(&b, ": %s", t.Status.Message)
	}
	return b.String()
}

func describeResources(r agorav1.Resources) string {
	m, err := r.Model()
	if err != nil {
		return "invalid resources"
	}
	return m.String()
}

// offeredCPUsMem shows what an offer that was too small had of the kinds
// agora run asks for, so that a user waiting can tell why: e.g. cpus 0 on
// idle agents points at a ResourceRole guarantee holding them back.
func offeredCPUsMem(o *agorav1.Offer) string {
	cpus, mem := "0", "0"
	if q := o.Spec.Resources.CPUs; q != nil {
		cpus = q.String()
	}
	if q := o.Spec.Resources.Mem; q != nil {
		mem = q.String()
	}
	return "cpus " + cpus + ", mem " + mem
}
