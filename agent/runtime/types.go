package runtime

import (
	"time"
)

// Command is what a task runs: exactly one of Shell (run with /bin/sh -c)
// or Argv (executed directly, argv[0] looked up in the task's PATH).
type Command struct {
	Shell string   `json:"shell,omitempty"`
	Argv  []string `json:"argv,omitempty"`
}

// Resources are the task's isolation limits.
type Resources struct {
	// MilliCPUs sets cpu shares (1024 per cpu, minimum 2); 0 leaves the
	// kernel default.
	MilliCPUs int64 `json:"milliCPUs,omitempty"`
	// MemBytes is the memory hard limit (swap is not allowed beyond it); 0 = none.
	MemBytes int64 `json:"memBytes,omitempty"`
	// Pids caps the number of processes and threads; 0 = none.
	Pids int64 `json:"pids,omitempty"`
	// CFSQuota additionally caps cpu time at MilliCPUs (period 100ms).
	CFSQuota bool `json:"cfsQuota,omitempty"`
}

// TaskSpec describes one task to launch.
type TaskSpec struct {
	// ID is the task's unique ID (the Task object's UID). It names the
	// sandbox, checkpoint and cgroup, so it must be a safe path component.
	ID string
	// Name is the human-readable task name, exported as AGORA_TASK_NAME.
	Name    string
	Command Command
	// Env is added to the task's environment. Keys reserved by the runtime
	// (AGORA_*, MESOS_SANDBOX, PORTS, PORT<n>) are rejected.
	Env map[string]string
	// User to run as, if Config.AllowedUsers allows it; "" means the
	// tenant's own uid (Config.TaskUIDs) or else Config.DefaultUser.
	User string
	// Tenant is who the task belongs to (the agent passes the Task's
	// namespace/framework): with Config.TaskUIDs, tasks of one tenant share
	// a uid and tasks of different tenants never do. Required then.
	Tenant string
	// WorkingDir: "" is the sandbox; a relative path is inside the sandbox
	// (it may not escape it); an absolute path is a host path (a path
	// inside Config.RootFS when that is set).
	WorkingDir string
	Resources  Resources
	// Ports assigned to the task, exported as PORT0..PORTn and PORTS.
	Ports []uint32
	// KillGracePeriod between SIGTERM and SIGKILL; 0 means Config's default.
	KillGracePeriod time.Duration
	HealthCheck     *HealthCheck
}

// HealthCheck probes a running task. Exactly one of Command, HTTP, TCP is set.
type HealthCheck struct {
	// Command runs like the task (same user, env, working dir and root
	// filesystem, and inside the task's cgroup); exit 0 is healthy.
	Command *Command   `json:"command,omitempty"`
	HTTP    *HTTPCheck `json:"http,omitempty"`
	TCP     *TCPCheck  `json:"tcp,omitempty"`
	// Interval between probes (default 10s).
	Interval time.Duration `json:"interval,omitempty"`
	// Timeout of one probe (default 5s).
	Timeout time.Duration `json:"timeout,omitempty"`
	// GracePeriod after start during which failures do not count (Mesos'
	// grace period; default 0).
	GracePeriod time.Duration `json:"gracePeriod,omitempty"`
	// ConsecutiveFailures after which the task is killed (default 3).
	ConsecutiveFailures int `json:"consecutiveFailures,omitempty"`
}

// HTTPCheck is healthy on a 2xx or 3xx answer to GET http://Host:Port/Path.
type HTTPCheck struct {
	Host string `json:"host,omitempty"` // default 127.0.0.1
	Port uint32 `json:"port"`
	Path string `json:"path,omitempty"`
}

// TCPCheck is healthy when a TCP connection to Host:Port opens.
type TCPCheck struct {
	Host string `json:"host,omitempty"` // default 127.0.0.1
	Port uint32 `json:"port"`
}

// Reasons attached to an ExitStatus, for the controller to map onto the
// API's task reasons.
const (
	ReasonMemoryLimit    = "MemoryLimit"          // OOM-killed at the memory limit
	ReasonKilled         = "Killed"               // Kill was called
	ReasonHealthCheck    = "HealthCheckFailed"    // killed after failing health checks
	ReasonLaunchFailed   = "LaunchFailed"         // the command could not be started
	ReasonSupervisorGone = "SupervisorTerminated" // the supervisor died without a status
	ReasonHostRebooted   = "HostRebooted"         // the boot id changed
)

// Usage is the task's resource usage at the end.
type Usage struct {
	CPUSeconds   float64 `json:"cpuSeconds"`
	PeakMemBytes int64   `json:"peakMemBytes"`
}

// ExitStatus is how a task ended.
type ExitStatus struct {
	// ExitCode is the exit code, or -1 when the task was ended by a signal.
	ExitCode int `json:"exitCode"`
	// Signal that ended the task, 0 if it exited.
	Signal int `json:"signal,omitempty"`
	// OOM is true when the kernel OOM-killed a process of the task's cgroup.
	OOM bool `json:"oom,omitempty"`
	// Killed is true when Kill (or a failing health check) ended the task.
	Killed     bool      `json:"killed,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	Usage      Usage     `json:"usage"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Succeeded reports whether the task finished (exit 0, not killed, no OOM).
func (e ExitStatus) Succeeded() bool {
	return e.ExitCode == 0 && e.Signal == 0 && !e.OOM && !e.Killed
}

// EventType tells what an Event reports.
type EventType string

const (
	EventRunning EventType = "Running" // the task's process started
	EventHealth  EventType = "Health"  // the task's health changed
	EventExited  EventType = "Exited"  // the task ended; Exit is set
	EventLost    EventType = "Lost"    // the task's fate is unknown (supervisor died)
)

// Event is a task state change.
type Event struct {
	Type   EventType
	TaskID string
	Time   time.Time
	// PID and StartedAt are set for EventRunning.
	PID       int
	StartedAt time.Time
	// Healthy is set for EventHealth.
	Healthy bool
	// Exit is set for EventExited (and, with what is known, EventLost).
	Exit    *ExitStatus
	Message string
}

// TaskInfo describes a started task.
type TaskInfo struct {
	ID        string
	PID       int
	StartedAt time.Time
	Sandbox   string
	// Cgroups maps controller to cgroup directory ("" for the v2 hierarchy;
	// v1 named hierarchies under "name=X", e.g. "name=systemd").
	Cgroups map[string]string
}

// TaskState is a recovered task's state.
type TaskState string

const (
	StateRunning TaskState = "Running" // reattached; an Exited event will follow
	StateExited  TaskState = "Exited"  // ended while the agent was away; Exit is set
	StateLost    TaskState = "Lost"    // rebooted or vanished without a recorded status
)

// RecoveredTask is one checkpointed task found by Recover.
type RecoveredTask struct {
	TaskInfo
	Name    string
	State   TaskState
	Exit    *ExitStatus
	Message string
}
