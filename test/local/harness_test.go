//go:build linux

package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/agora-sched/agora/agent/runtime"
	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/localcluster"
)

// buildBinaries builds every command of the module into dir, so the test
// runs the binaries a user runs, not the packages linked into the test.
func buildBinaries(t *testing.T, root, dir string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the binaries: %v", err)
	}
	cmd := exec.Command(goBin, "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
}

// proc is one of Agora's binaries running as a child process.
type proc struct{ *localcluster.Proc }

// startProc runs bin with args, appending to logDir/<name>.log. Unlike
// localcluster.StartChild it keeps the pid, so a test can SIGKILL the
// process alone.
func startProc(name, bin, logDir string, args ...string) (*proc, error) {
	p, err := localcluster.StartProc(exec.Command(bin, args...), name, logDir, false)
	if err != nil {
		return nil, err
	}
	return &proc{p}, nil
}

// kill sends SIGKILL to the process alone, as a crash would end it; the
// agent's task supervisors run in their own sessions and survive.
func (p *proc) kill() {
	_ = p.Cmd.Process.Signal(syscall.SIGKILL)
	<-p.Done()
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	tail, err := p.Tail(n)
	if err != nil {
		return err.Error()
	}
	return tail
}

// agentDirs are one real agent's name and state directories.
type agentDirs struct{ name, work, checkpoints string }

// killLeftoverTasks kills what the agent's supervisors still run (tasks
// outlive their agent by design, but not this test) and forgets them, which
// removes their cgroups, as `agora local` does on exit.
func killLeftoverTasks(a agentDirs) (int, error) {
	rt, err := runtime.New(runtime.Config{AgentName: a.name, WorkDir: a.work, CheckpointDir: a.checkpoints})
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	tasks, err := rt.Recover()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tasks {
		if t.State == runtime.StateRunning && rt.Kill(t.ID, -1) == nil {
			n++
		}
	}
	var errs []error
	deadline := time.Now().Add(10 * time.Second)
	for _, t := range tasks {
		for {
			err := rt.Forget(t.ID)
			if !errors.Is(err, runtime.ErrTaskRunning) || time.Now().After(deadline) {
				if err != nil && !errors.Is(err, runtime.ErrUnknownTask) {
					errs = append(errs, err)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return n, errors.Join(errs...)
}

// removeAgentCgroups removes what is left of the agent's cgroup tree
// (agora/<agent> in every hierarchy), deepest first. It reports the
// directories it had to remove and those that still hold processes.
func removeAgentCgroups(agent string) (removed, busy []string, err error) {
	layout, err := runtime.DetectLayout()
	if err != nil {
		return nil, nil, err
	}
	mounts := map[string]bool{}
	for _, m := range layout.Controllers {
		mounts[m] = true
	}
	for _, m := range layout.Named { // name=systemd and the like
		mounts[m] = true
	}
	if layout.Unified != "" {
		mounts[layout.Unified] = true
	}
	for m := range mounts {
		top := filepath.Join(m, "agora", agent)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			if procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs")); len(bytes.TrimSpace(procs)) > 0 {
				busy = append(busy, d)
				continue
			}
			if err := os.Remove(d); err == nil {
				removed = append(removed, d)
			} else if !os.IsNotExist(err) {
				busy = append(busy, d)
			}
		}
	}
	return removed, busy, nil
}

// taskRecord is what the test saw of one Task over the whole run.
type taskRecord struct {
	name, fw, agent string
	binds           map[string]bool // distinct status.bindTime values
	starts          map[string]bool // distinct status.startTime values
	states          []agorav1.TaskState
	lastChange      time.Time // when the state last changed, on our clock
	last            *agorav1.Task
}

// recorder watches the Tasks of a namespace for the whole run, so a task
// bound or started twice, or a state that came and went, is seen even if
// the object is deleted later.
type recorder struct {
	mu     sync.Mutex
	tasks  map[string]*taskRecord // by UID
	gaps   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func startRecorder(ctx context.Context, c client.WithWatch, ns string) (*recorder, error) {
	var list agorav1.TaskList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &recorder{tasks: map[string]*taskRecord{}, cancel: cancel, done: make(chan struct{})}
	for i := range list.Items {
		r.observe(&list.Items[i])
	}
	rv := list.ResourceVersion
	go func() {
		defer close(r.done)
		for ctx.Err() == nil {
			w, err := c.Watch(ctx, &agorav1.TaskList{}, client.InNamespace(ns),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			rv = r.drain(ctx, w, rv)
			w.Stop()
			if rv == "" { // expired: relist, and say that events may be missing
				var l agorav1.TaskList
				if err := c.List(ctx, &l, client.InNamespace(ns)); err == nil {
					r.mu.Lock()
					r.gaps = append(r.gaps, "task watch expired; relisted at "+l.ResourceVersion)
					r.mu.Unlock()
					for i := range l.Items {
						r.observe(&l.Items[i])
					}
					rv = l.ResourceVersion
				}
			}
		}
	}()
	return r, nil
}

// drain applies the watch's events until it closes; it returns the
// resourceVersion to resume from ("" if it expired).
func (r *recorder) drain(ctx context.Context, w watch.Interface, rv string) string {
	for {
		select {
		case <-ctx.Done():
			return rv
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv
			}
			switch ev.Type {
			case watch.Error:
				if st, ok := ev.Object.(*metav1.Status); ok && st.Code == 410 {
					return ""
				}
				return rv
			case watch.Bookmark:
				if o, ok := ev.Object.(client.Object); ok {
					rv = o.GetResourceVersion()
				}
			default:
				if t, ok := ev.Object.(*agorav1.Task); ok {
					rv = t.ResourceVersion
					r.observe(t)
				}
			}
		}
	}
}

func (r *recorder) observe(t *agorav1.Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.tasks[string(t.UID)]
	if rec == nil {
		rec = &taskRecord{name: t.Name, fw: t.Spec.FrameworkName, agent: t.Spec.AgentName,
			binds: map[string]bool{}, starts: map[string]bool{}}
		r.tasks[string(t.UID)] = rec
	}
	if bt := t.Status.BindTime; bt != nil {
		rec.binds[bt.UTC().Format(time.RFC3339Nano)] = true
	}
	if st := t.Status.StartTime; st != nil {
		rec.starts[st.UTC().Format(time.RFC3339Nano)] = true
	}
	if s := t.Status.State; s != "" && (len(rec.states) == 0 || rec.states[len(rec.states)-1] != s) {
		rec.states = append(rec.states, s)
		rec.lastChange = time.Now()
	}
	rec.last = t.DeepCopy()
}

// snapshot copies the records (their last objects are not modified later).
func (r *recorder) snapshot() []taskRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]taskRecord, 0, len(r.tasks))
	for _, rec := range r.tasks {
		cp := *rec
		cp.states = slices.Clone(rec.states)
		out = append(out, cp)
	}
	return out
}

func (r *recorder) stop() {
	r.cancel()
	<-r.done
}

func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
