package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/agora-sched/agora/internal/queue"
)

// DefaultKillGracePeriod is Mesos' default kill grace period.
const DefaultKillGracePeriod = 3 * time.Second

// Config configures a Runtime.
type Config struct {
	// AgentName names this agent's share of the host: its cgroups live
	// under <CgroupRoot>/<AgentName> and its sandboxes and checkpoints in
	// an <AgentName> sub-directory, so agents on one host never meet.
	AgentName string
	// CgroupRoot is the parent of all agents' cgroups, relative to each
	// hierarchy's mount (default "agora"; outside Kubernetes' kubepods).
	CgroupRoot string
	// WorkDir holds the sandboxes.
	WorkDir string
	// CheckpointDir holds the checkpoints; it must survive agent restarts
	// (a hostPath in the DaemonSet).
	CheckpointDir string
	// RootFS, when set, is a root filesystem the tasks (and their command
	// health checks) run chrooted into, with the working dir resolved
	// inside it, argv[0] looked up in PATH inside it, and users resolved
	// from its /etc/passwd and /etc/group; "" runs them in the agent's
	// own filesystem. It is how an agent in a container runs tasks in the
	// host's root (mounted at, say, /host). Paths (WorkDir, sandboxes)
	// are given as the agent sees them, so WorkDir must be the same
	// directory at the same path inside RootFS (a hostPath mounted at its
	// own path); New checks this. The supervisors stay outside.
	RootFS string
	// TaskUIDs, when set, runs each task that names no user as its
	// tenant's (TaskSpec.Tenant's) own uid from this range, with the same
	// gid and no supplementary groups, so tasks of different tenants
	// cannot signal, trace or read one another. A tenant keeps its uid
	// across restarts; the table lives in CheckpointDir, shared by the
	// agents that share that directory (agents on one host with separate
	// CheckpointDirs need disjoint ranges). Nil runs them as DefaultUser.
	TaskUIDs *IDRange
	// DefaultUser runs tasks that name no user when TaskUIDs is nil; ""
	// is the agent's own user.
	DefaultUser string
	// AllowedUsers decides whether a task may name a user. Nil allows
	// only DefaultUser, and only without TaskUIDs. Tasks that name no
	// user need no permission.
	AllowedUsers func(user string) error
	// SelfExe is the agent binary, re-executed as supervisor and shim
	// (default: os.Executable()).
	SelfExe string
	// KillGracePeriod is the default for tasks without one (default 3s).
	KillGracePeriod time.Duration
	// Layout overrides cgroup layout detection (tests).
	Layout *Layout
	// Logf receives diagnostics; nil discards them.
	Logf func(format string, args ...any)
}

// Runtime runs tasks on this node.
type Runtime struct {
	cfg          Config
	layout       *Layout
	cgroupParent string // relative to each hierarchy
	sandboxDir   string
	ckptDir      string
	uids         *uidTable // nil without Config.TaskUIDs
	events       *queue.Unbounded[Event]

	mu        sync.Mutex
	tasks     map[string]*task
	launching map[string]bool
	closed    bool
	stop      chan struct{}
}

// task is a launched or recovered task.
type task struct {
	id        string
	ckDir     string
	launch    *launchSpec
	cg        cgroup
	supPID    int
	supTicks  uint64
	pid       int
	startedAt time.Time

	done       chan struct{} // closed once the end is known and reported
	exit       *ExitStatus   // set before done is closed
	stopHealth func()
	killing    bool // guarded by Runtime.mu
}

// New checks the configuration, detects the cgroup layout and prepares
// the directories. Call Recover next, before launching anything.
func New(cfg Config) (*Runtime, error) {
	if err := validateName("agent name", cfg.AgentName); err != nil {
		return nil, err
	}
	if cfg.CgroupRoot == "" {
		cfg.CgroupRoot = "agora"
	}
	for _, part := range strings.Split(cfg.CgroupRoot, "/") {
		if err := validateName("cgroup root component", part); err != nil {
			return nil, err
		}
	}
	if cfg.WorkDir == "" || cfg.CheckpointDir == "" {
		return nil, errors.New("runtime: WorkDir and CheckpointDir are required")
	}
	var err error
	for _, p := range []*string{&cfg.WorkDir, &cfg.CheckpointDir} {
		if *p, err = filepath.Abs(*p); err != nil {
			return nil, err
		}
	}
	if cfg.RootFS != "" {
		if cfg.RootFS, err = filepath.Abs(cfg.RootFS); err != nil {
			return nil, err
		}
		// WorkDir is created here as New would below, so that a fresh
		// node fails only for a real mount problem.
		if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
			return nil, err
		}
		if err := checkRootFS(cfg.RootFS, cfg.WorkDir); err != nil {
			return nil, err
		}
	}
	if cfg.SelfExe == "" {
		if cfg.SelfExe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("runtime: find own executable: %w", err)
		}
	}
	if cfg.KillGracePeriod <= 0 {
		cfg.KillGracePeriod = DefaultKillGracePeriod
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	layout := cfg.Layout
	if layout == nil {
		if layout, err = DetectLayout(); err != nil {
			return nil, err
		}
	}
	if err := layout.checkHostView(); err != nil {
		return nil, err
	}
	if _, _, err := bootInfo(); err != nil {
		return nil, fmt.Errorf("runtime: boot id: %w", err)
	}
	r := &Runtime{
		cfg:          cfg,
		layout:       layout,
		cgroupParent: filepath.Join(cfg.CgroupRoot, cfg.AgentName),
		sandboxDir:   filepath.Join(cfg.WorkDir, cfg.AgentName),
		ckptDir:      filepath.Join(cfg.CheckpointDir, cfg.AgentName),
		events:       queue.New[Event](),
		tasks:        map[string]*task{},
		launching:    map[string]bool{},
		stop:         make(chan struct{}),
	}
	if err := makeSandboxParent(r.sandboxDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.ckptDir, 0o700); err != nil {
		return nil, err
	}
	if cfg.TaskUIDs != nil {
		if err := cfg.TaskUIDs.validate(); err != nil {
			return nil, fmt.Errorf("runtime: TaskUIDs: %w", err)
		}
		if err := checkIDMap(*cfg.TaskUIDs); err != nil {
			return nil, fmt.Errorf("runtime: %w", err)
		}
		if r.uids, err = openUIDTable(cfg.CheckpointDir, *cfg.TaskUIDs, cfg.RootFS); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Layout reports the cgroup layout in use.
func (r *Runtime) Layout() *Layout { return r.layout }

// Events delivers task state changes. It is closed by Close.
func (r *Runtime) Events() <-chan Event { return r.events.C() }

// SandboxDir returns the sandbox directory a task has (or would have).
func (r *Runtime) SandboxDir(id string) (string, error) {
	if err := validateName("task ID", id); err != nil {
		return "", err
	}
	return filepath.Join(r.sandboxDir, id), nil
}

// Close stops watching and health-checking. Tasks keep running, and their
// supervisors keep checkpointing; a new Runtime recovers them. The agent's
// own cgroups are removed where no task is left in them.
func (r *Runtime) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.stop)
	for _, t := range r.tasks {
		if t.stopHealth != nil {
			t.stopHealth()
		}
	}
	r.mu.Unlock()
	r.events.Close()
	r.removeEmptyParents()
}

// removeEmptyParents removes the agent's task and supervisor cgroups and
// its own, deepest first, in every hierarchy. rmdir refuses a cgroup that
// still holds processes or child cgroups, so running (or unforgotten)
// tasks keep theirs; the next Runtime creates them again as it launches.
func (r *Runtime) removeEmptyParents() {
	for _, rel := range []string{
		filepath.Join(r.cgroupParent, taskCgroupDir),
		filepath.Join(r.cgroupParent, supervisorCgroupDir),
		r.cgroupParent,
	} {
		for _, dir := range newCgroup(r.layout, rel).Paths() {
			_ = os.Remove(dir)
		}
	}
}

func (r *Runtime) lookup(id string) (*task, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tasks[id]
	if !ok {
		return nil, fmt.Errorf("task %q: %w", id, ErrUnknownTask)
	}
	return t, nil
}

// ErrUnknownTask is returned for task IDs the Runtime does not track.
var ErrUnknownTask = errors.New("unknown task")

// ErrTaskRunning is returned by Forget for a task that has not ended.
var ErrTaskRunning = errors.New("task is still running")

// finish reports a task's end once its supervisor is gone. It runs on the
// watcher goroutine.
func (r *Runtime) finish(t *task) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return // no longer watching; the next Runtime's Recover reports it
	}
	rec, err := readRecord(t.ckDir)
	var ev Event
	if err == nil && rec != nil && rec.Exit != nil {
		exit := finalStatus(*rec.Exit, readKill(t.ckDir))
		ev = Event{Type: EventExited, Exit: &exit}
	} else {
		// The supervisor died without a status (killed, OOM, crashed):
		// the exit code is lost; make sure nothing of the task survives.
		if err := t.cg.KillAll(leftoverKillTimeout); err != nil {
			r.cfg.Logf("task %s: kill after supervisor loss: %v", t.id, err)
		}
		exit := ExitStatus{ExitCode: -1, Reason: ReasonSupervisorGone, Usage: t.cg.Usage(), FinishedAt: time.Now(),
			Message: "the task's supervisor ended without recording an exit status"}
		if err != nil {
			exit.Message += ": " + err.Error()
		}
		ev = Event{Type: EventLost, Exit: &exit, Message: exit.Message}
	}
	ev.TaskID, ev.Time = t.id, time.Now()
	r.mu.Lock()
	t.exit = ev.Exit
	if t.stopHealth != nil {
		t.stopHealth()
	}
	r.mu.Unlock()
	close(t.done)
	r.events.Push(ev)
}

// Forget removes a finished task's checkpoint and cgroups, after the agent
// has written its final status to the API. The sandbox stays until GC.
func (r *Runtime) Forget(id string) error {
	if err := validateName("task ID", id); err != nil {
		return err
	}
	ckDir := filepath.Join(r.ckptDir, id)
	r.mu.Lock()
	t := r.tasks[id]
	launching := r.launching[id]
	r.mu.Unlock()
	if launching {
		return fmt.Errorf("task %q: %w (launching)", id, ErrTaskRunning)
	}
	var l *launchSpec
	if t != nil {
		select {
		case <-t.done:
		default:
			return fmt.Errorf("task %q: %w", id, ErrTaskRunning)
		}
		l = t.launch
	} else {
		var err error
		if l, err = readLaunch(ckDir); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("task %q: %w", id, ErrUnknownTask)
		} else if err != nil {
			l = nil // unreadable: still remove the checkpoint
		}
		boot, _, _ := bootInfo()
		if rec, _ := readRecord(ckDir); l != nil && rec != nil && rec.Exit == nil && rec.BootID == boot &&
			sameProcess(rec.SupervisorPID, rec.SupervisorStartTicks) {
			return fmt.Errorf("task %q: %w (call Recover to reattach)", id, ErrTaskRunning)
		}
	}
	var errs []error
	if l != nil {
		tcg := cgroupFromPaths(l.CgroupVersion, l.Cgroup)
		if err := tcg.KillAll(leftoverKillTimeout); err != nil {
			errs = append(errs, err)
		}
		errs = append(errs, tcg.Destroy(), cgroupFromPaths(l.CgroupVersion, l.SupervisorCgroup).Destroy())
		// The retention period of the sandbox starts now.
		now := time.Now()
		_ = os.Chtimes(l.Sandbox, now, now)
	}
	if l != nil && l.Tenant != "" && r.uids != nil {
		r.uids.Touch(l.Tenant) // its uid is kept as long as the sandbox
	}
	errs = append(errs, os.RemoveAll(ckDir))
	r.mu.Lock()
	delete(r.tasks, id)
	r.mu.Unlock()
	return errors.Join(errs...)
}
