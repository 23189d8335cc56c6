// Package batch is an example framework on Agora's SDK, like mesos-execute
// for many commands: it runs each command once as a task, packs as many
// tasks into each offer as fit, and returns a summary when all have ended.
package batch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/sdk"
)

// Options say what to run.
type Options struct {
	// Commands are shell commands, one task each.
	Commands []string
	// Resources of every task.
	Resources agorav1.Resources
	// Annotations put on every task (e.g. for tooling or simulated agents).
	Annotations map[string]string
	// Retries is how often a task that never started (TASK_DROPPED, or
	// TASK_LOST with REASON_INVALID_OFFERS: its offer went away) is launched
	// again. Tasks that ran are never retried, as with mesos-execute.
	Retries int
	// Keep leaves the ended Task objects in place instead of acknowledging
	// (deleting) them.
	Keep bool
	// Teardown deletes the Framework when done (mesos-execute stops its
	// driver without failover). Only for a framework used by this run alone.
	Teardown bool
	// Out receives progress lines; nil discards them.
	Out io.Writer
}

// Result is how one command ended.
type Result struct {
	Command  string
	Task     string
	Agent    string
	State    agorav1.TaskState
	Reason   string
	Message  string
	ExitCode *int32
}

// Failed reports whether the command did not finish successfully.
func (r Result) Failed() bool { return r.State != agorav1.TaskFinished }

// job is one command's progress.
type job struct {
	command  string
	attempts int
	task     string // current task name, "" while pending
	done     bool
	result   Result
}

type runner struct {
	o          Options
	runID      string
	jobs       []*job
	byTask     map[string]*job
	remaining  int
	suppressed bool
	err        error
}

// Run registers (or adopts) the framework described by cfg, runs every
// command, and returns when all have ended or ctx is done.
func Run(ctx context.Context, cfg sdk.Config, o Options) (Summary, error) {
	if len(o.Commands) == 0 {
		return Summary{}, errors.New("batch: no commands to run")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	d, err := sdk.Connect(ctx, cfg)
	if err != nil {
		return Summary{}, err
	}
	defer d.Close()
	r := &runner{o: o, runID: RandomID(), byTask: map[string]*job{}, remaining: len(o.Commands)}
	for _, c := range o.Commands {
		r.jobs = append(r.jobs, &job{command: c})
	}
	// A framework adopted from an earlier run may have been left suppressed
	// or with decline filters: ask for offers again, both ways.
	if err := d.Unsuppress(ctx); err != nil {
		return Summary{}, err
	}
	if err := d.Revive(ctx); err != nil {
		return Summary{}, err
	}
	fmt.Fprintf(o.Out, "batch: framework %s/%s: %d tasks of %s\n", d.Namespace(), d.Name(), len(r.jobs), describe(o.Resources))
	runErr := d.Run(ctx, r)
	s := r.summary()
	if runErr == nil {
		runErr = r.err
	}
	if runErr == nil && o.Teardown {
		tctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		runErr = d.Teardown(tctx)
	}
	return s, runErr
}

// OfferReceived packs pending tasks into the offer.
func (r *runner) OfferReceived(ctx context.Context, d *sdk.Driver, offer *agorav1.Offer) {
	pool, err := sdk.NewPool(offer)
	if err != nil {
		_ = d.Decline(ctx, offer, agorav1.DefaultRefuseSeconds)
		return
	}
	var infos []sdk.TaskInfo
	var launched []*job
	for i, j := range r.jobs {
		if j.done || j.task != "" || !pool.Take(r.o.Resources) {
			continue
		}
		j.task = fmt.Sprintf("%s-%s-%d-%d", d.Name(), r.runID, i, j.attempts)
		r.byTask[j.task] = j
		launched = append(launched, j)
		infos = append(infos, sdk.TaskInfo{Name: j.task, Resources: r.o.Resources, Command: sdk.Shell(j.command),
			Labels: map[string]string{"batch.agora.dev/run": r.runID}, Annotations: r.o.Annotations})
	}
	if len(infos) == 0 {
		if r.pending() > 0 {
			// The tasks do not fit here; the agent is offered again once
			// it has more free (a filter only blocks subsets).
			_ = d.Decline(ctx, offer, agorav1.DefaultRefuseSeconds)
			return
		}
		// Nothing left to launch: stop offers until a task needs a retry.
		_ = d.Decline(ctx, offer, 300)
		if !r.suppressed {
			r.suppressed = d.Suppress(ctx) == nil
		}
		return
	}
	created, err := d.Accept(ctx, offer, infos, sdk.Filters{})
	if err != nil {
		// Jobs whose Task was not created go back to pending; the ones
		// created on a gone offer end TASK_DROPPED/LOST and are retried.
		ok := map[string]bool{}
		for _, t := range created {
			ok[t.Name] = true
		}
		for _, j := range launched {
			if !ok[j.task] {
				delete(r.byTask, j.task)
				j.task = ""
				j.attempts++
			}
		}
		if !errors.Is(err, sdk.ErrOfferGone) {
			fmt.Fprintf(r.o.Out, "batch: accepting offer %s: %v\n", offer.Name, err)
		}
		return
	}
	fmt.Fprintf(r.o.Out, "batch: launched %d tasks on %s\n", len(created), offer.Spec.AgentName)
}

// OfferRescinded needs nothing: offers are answered as they arrive.
func (r *runner) OfferRescinded(context.Context, *sdk.Driver, *agorav1.Offer) {}

// TaskUpdate records ends and retries tasks that never started.
func (r *runner) TaskUpdate(ctx context.Context, d *sdk.Driver, t *agorav1.Task) {
	j, ok := r.byTask[t.Name]
	if !ok || j.done {
		return // an earlier run's task, or a retried attempt's leftover
	}
	fmt.Fprintf(r.o.Out, "batch: %s %s%s\n", t.Name, t.Status.State, suffix(t.Status.Reason))
	if !sdk.IsTerminal(t.Status.State) {
		return
	}
	if !r.o.Keep {
		_ = d.Acknowledge(ctx, t)
	}
	if neverStarted(t) && j.attempts < r.o.Retries {
		delete(r.byTask, t.Name)
		j.task = ""
		j.attempts++
		if r.suppressed {
			// Offers were declined with a long filter while suppressed.
			r.suppressed = d.Unsuppress(ctx) != nil || d.Revive(ctx) != nil
		}
		return
	}
	j.done = true
	j.result = Result{Command: j.command, Task: t.Name, Agent: t.Spec.AgentName, State: t.Status.State,
		Reason: t.Status.Reason, Message: t.Status.Message, ExitCode: t.Status.ExitCode}
	r.remaining--
	if r.remaining == 0 {
		d.Stop()
	}
}

func (r *runner) pending() int {
	n := 0
	for _, j := range r.jobs {
		if !j.done && j.task == "" {
			n++
		}
	}
	return n
}

func (r *runner) summary() Summary {
	s := Summary{}
	for _, j := range r.jobs {
		res := j.result
		if !j.done {
			res = Result{Command: j.command, Task: j.task}
		}
		s.Results = append(s.Results, res)
	}
	return s
}

// neverStarted: the master dropped the task because its offer was gone.
func neverStarted(t *agorav1.Task) bool {
	return t.Status.State == agorav1.TaskDropped ||
		(t.Status.State == agorav1.TaskLost && t.Status.Reason == "REASON_INVALID_OFFERS")
}

func suffix(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}

func describe(r agorav1.Resources) string {
	m, err := r.Model()
	if err != nil {
		return "invalid resources"
	}
	return m.String()
}

// RandomID is a short random identifier that keeps task names of separate
// runs apart.
func RandomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
