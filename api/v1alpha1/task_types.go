package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// OfferReference names the offer a task is launched on.
type OfferReference struct {
	// Name of the Offer in the task's namespace.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// UID of the Offer, so a task never lands on a newer offer of the same name.
	// +kubebuilder:validation:MinLength=1
	UID string `json:"uid"`
}

// EnvVar is an environment variable of a task.
type EnvVar struct {
	// Name of the variable.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`
	// Value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	Value string `json:"value,omitempty"`
}

// The apiserver runs every rule of a Task on each of its status writes, and
// a rule's cost is mostly its field lookups on objects (each copies the
// object's schema): so the Task's rules sit on the fields they check where
// they can, and the parents keep only what those cannot see, a removal.
// +kubebuilder:validation:XValidation:rule="has(self.shell) != has(self.argv)",message="set exactly one of command.shell or command.argv"

// CommandInfo is what a task runs: a shell command or an argv (Mesos'
// CommandInfo with shell true or false). Exactly one of shell or argv is set.
type CommandInfo struct {
	// Shell is run with /bin/sh -c.
	// +optional
	// +kubebuilder:validation:MaxLength=32768
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="command.shell must not be empty"
	Shell *string `json:"shell,omitempty"`

	// Argv is run directly; argv[0] is looked up in PATH.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.size() > 0 && self[0].size() > 0",message="command.argv must name a program in its first item"
	Argv []string `json:"argv,omitempty"`

	// Env adds environment variables. Variables the agent sets (AGORA_*,
	// MESOS_SANDBOX, PORT*) cannot be overridden.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:XValidation:rule="self.all(e, !e.name.startsWith('AGORA_') && e.name != 'MESOS_SANDBOX' && !e.name.matches('^PORTS?[0-9]*$'))",message="env must not set AGORA_*, MESOS_SANDBOX or PORT* variables: the agent sets them"
	Env []EnvVar `json:"env,omitempty"`

	// User to run as; defaults to the framework's user, then the agent's
	// default unprivileged user. The agent's policy decides which are allowed.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^[a-z_][a-z0-9_-]*[$]?$`
	User string `json:"user,omitempty"`

	// WorkingDir of the task; defaults to its sandbox.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') || !self.split('/').exists(p, p == '..')",message="workingDir must be absolute or stay inside the sandbox (no '..')"
	WorkingDir string `json:"workingDir,omitempty"`
}

// KillPolicy says how a task is killed.
type KillPolicy struct {
	// GracePeriod between SIGTERM and SIGKILL. Defaults to 3s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$')",message="killPolicy.gracePeriod must be a duration with a unit, e.g. 500ms, 3s or 1m"
	// +kubebuilder:validation:XValidation:rule="!self.matches('^[-+]?(0|(([0-9]+([.][0-9]*)?|[.][0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$') || (duration(self) >= duration('0s') && duration(self) <= duration('1h'))",message="killPolicy.gracePeriod must be between 0s and 1h"
	GracePeriod *metav1.Duration `json:"gracePeriod,omitempty"`
}

// HealthCheckType is the kind of a health check.
// +kubebuilder:validation:Enum=Command;HTTP;TCP
type HealthCheckType string

// Health check kinds.
const (
	HealthCheckCommand HealthCheckType = "Command"
	HealthCheckHTTP    HealthCheckType = "HTTP"
	HealthCheckTCP     HealthCheckType = "TCP"
)

// HealthCheck is Mesos' task health check.
// +kubebuilder:validation:XValidation:rule="self.type != 'Command' || has(self.command)",message="a Command health check needs command"
// +kubebuilder:validation:XValidation:rule="self.type == 'Command' || has(self.port)",message="an HTTP or TCP health check needs port"
type HealthCheck struct {
	// Type is Command, HTTP or TCP.
	Type HealthCheckType `json:"type"`
	// Command run for a Command check; exit 0 is healthy.
	// +optional
	Command *CommandInfo `json:"command,omitempty"`
	// Port checked on localhost for HTTP and TCP checks.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`
	// Path requested by an HTTP check; 2xx and 3xx are healthy.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	Path string `json:"path,omitempty"`
	// DelaySeconds before the first check.
	// +optional
	// +kubebuilder:validation:Minimum=0
	DelaySeconds int32 `json:"delaySeconds,omitempty"`
	// IntervalSeconds between checks. Defaults to 10.
	// +optional
	// +kubebuilder:validation:Minimum=1
	IntervalSeconds int32 `json:"intervalSeconds,omitempty"`
	// TimeoutSeconds of one check. Defaults to 20.
	// +optional
	// +kubebuilder:validation:Minimum=1
	TimeoutSeconds int32 `json:"timeoutSeconds,omitempty"`
	// ConsecutiveFailures after which the task is killed. Defaults to 3.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
	// GracePeriodSeconds after start during which failures are not counted.
	// +optional
	// +kubebuilder:validation:Minimum=0
	GracePeriodSeconds int32 `json:"gracePeriodSeconds,omitempty"`
}

// The fields carry their own immutability rules (see CommandInfo for why).
// +kubebuilder:validation:XValidation:rule="has(self.healthCheck) == has(oldSelf.healthCheck)",message="spec.healthCheck is immutable"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.kill) || !oldSelf.kill || (has(self.kill) && self.kill)",message="a kill request cannot be withdrawn"

// TaskSpec is written by the framework when it launches the task; only Kill
// can change afterwards.
type TaskSpec struct {
	// FrameworkName is the Framework (in this namespace) that owns the task.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.frameworkName is immutable"
	FrameworkName string `json:"frameworkName"`

	// OfferRef is the offer the task is launched on.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.offerRef is immutable"
	OfferRef OfferReference `json:"offerRef"`

	// AgentName is the agent of that offer; agents watch their tasks by it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.agentName is immutable"
	AgentName string `json:"agentName"`

	// Resources the task uses; they must fit in the offer.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.resources are immutable"
	// +kubebuilder:validation:XValidation:rule="(has(self.cpus) && quantity(string(self.cpus)).isGreaterThan(quantity('0'))) || (has(self.mem) && quantity(string(self.mem)).isGreaterThan(quantity('0')))",message="a task needs some cpus or mem"
	Resources Resources `json:"resources"`

	// Command the task runs.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.command is immutable"
	Command CommandInfo `json:"command"`

	// KillPolicy says how the task is killed.
	// +optional
	KillPolicy *KillPolicy `json:"killPolicy,omitempty"`

	// HealthCheck, if set, is run by the agent; the task is killed after
	// consecutive failures.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec.healthCheck is immutable"
	HealthCheck *HealthCheck `json:"healthCheck,omitempty"`

	// Kill asks for the task to be killed (Mesos KILL). It cannot be undone.
	// +optional
	Kill bool `json:"kill,omitempty"`
}

// TaskState is Mesos' task state.
// +kubebuilder:validation:Enum=TASK_STAGING;TASK_STARTING;TASK_RUNNING;TASK_KILLING;TASK_FINISHED;TASK_FAILED;TASK_KILLED;TASK_ERROR;TASK_LOST;TASK_DROPPED;TASK_UNREACHABLE;TASK_GONE;TASK_GONE_BY_OPERATOR;TASK_UNKNOWN
type TaskState string

// Task states (Mesos 1.x).
const (
	TaskStaging        TaskState = "TASK_STAGING"
	TaskStarting       TaskState = "TASK_STARTING"
	TaskRunning        TaskState = "TASK_RUNNING"
	TaskKilling        TaskState = "TASK_KILLING"
	TaskFinished       TaskState = "TASK_FINISHED"
	TaskFailed         TaskState = "TASK_FAILED"
	TaskKilled         TaskState = "TASK_KILLED"
	TaskError          TaskState = "TASK_ERROR"
	TaskLost           TaskState = "TASK_LOST"
	TaskDropped        TaskState = "TASK_DROPPED"
	TaskUnreachable    TaskState = "TASK_UNREACHABLE"
	TaskGone           TaskState = "TASK_GONE"
	TaskGoneByOperator TaskState = "TASK_GONE_BY_OPERATOR"
	TaskUnknown        TaskState = "TASK_UNKNOWN"
)

// TaskStatusSource says who reported a state (Mesos' TaskStatus.Source).
// +kubebuilder:validation:Enum=SOURCE_MASTER;SOURCE_AGENT;SOURCE_EXECUTOR
type TaskStatusSource string

// Sources of task states.
const (
	SourceMaster   TaskStatusSource = "SOURCE_MASTER"
	SourceAgent    TaskStatusSource = "SOURCE_AGENT"
	SourceExecutor TaskStatusSource = "SOURCE_EXECUTOR"
)

// Reasons for task states (Mesos' TaskStatus.Reason), the ones Agora uses.
const (
	ReasonInvalidOffers               = "REASON_INVALID_OFFERS"
	ReasonTaskInvalid                 = "REASON_TASK_INVALID"
	ReasonAgentRemoved                = "REASON_AGENT_REMOVED"
	ReasonAgentUnreachable            = "REASON_AGENT_UNREACHABLE"
	ReasonAgentRestarted              = "REASON_AGENT_RESTARTED"
	ReasonAgentReregistered           = "REASON_AGENT_REREGISTERED"
	ReasonContainerLimitationMemory   = "REASON_CONTAINER_LIMITATION_MEMORY"
	ReasonContainerLaunchFailed       = "REASON_CONTAINER_LAUNCH_FAILED"
	ReasonCommandExecutorFailed       = "REASON_COMMAND_EXECUTOR_FAILED"
	ReasonFrameworkRemoved            = "REASON_FRAMEWORK_REMOVED"
	ReasonTaskKilledDuringLaunch      = "REASON_TASK_KILLED_DURING_LAUNCH"
	ReasonTaskHealthCheckStatusUpdate = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
	ReasonTaskUnauthorized            = "REASON_TASK_UNAUTHORIZED"
	ReasonResourcesUnknown            = "REASON_RESOURCES_UNKNOWN"
	ReasonExecutorTerminated          = "REASON_EXECUTOR_TERMINATED"
	ReasonReconciliation              = "REASON_RECONCILIATION"
)

// ResourceUsage is what a task used, reported when it ends.
type ResourceUsage struct {
	// CPUSeconds of user and system time, a decimal string.
	// +optional
	CPUSeconds string `json:"cpuSeconds,omitempty"`
	// PeakMemBytes is the largest memory use seen.
	// +optional
	PeakMemBytes int64 `json:"peakMemBytes,omitempty"`
}

// The fields carry their own transition rules (see CommandInfo for why);
// these only keep them from being removed.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.state) || has(self.state) || !(oldSelf.state in ['TASK_FINISHED','TASK_FAILED','TASK_KILLED','TASK_ERROR','TASK_DROPPED','TASK_GONE','TASK_GONE_BY_OPERATOR','TASK_LOST'])",message="the state of a task in a terminal state or TASK_LOST cannot be removed"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.bindTime) || has(self.bindTime)",message="a task is bound once: status.bindTime cannot change"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.role) || has(self.role)",message="status.role is written once, with the bind"

// TaskStatus is written by the agent (STARTING to terminal, with the binding
// it was told of) and the master (master-sourced states).
type TaskStatus struct {
	// State is the task's Mesos state.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!(oldSelf in ['TASK_FINISHED','TASK_FAILED','TASK_KILLED','TASK_ERROR','TASK_DROPPED','TASK_GONE','TASK_GONE_BY_OPERATOR']) || self == oldSelf",message="a task in a terminal state cannot change state"
	// +kubebuilder:validation:XValidation:rule="oldSelf != 'TASK_LOST' || self in ['TASK_LOST','TASK_RUNNING']",message="a TASK_LOST task can only become TASK_RUNNING again (its agent came back)"
	State TaskState `json:"state,omitempty"`

	// Source of the latest state.
	// +optional
	Source TaskStatusSource `json:"source,omitempty"`

	// Reason for the latest state, e.g. REASON_INVALID_OFFERS.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.startsWith('REASON_')",message="reason must be a Mesos reason such as REASON_INVALID_OFFERS"
	Reason string `json:"reason,omitempty"`

	// Message in words.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Message string `json:"message,omitempty"`

	// BindTime is when the master bound the task to its offer's agent. The
	// bind itself is the task's entry in the agent's Assignment; the agent
	// copies its time here with its first status write, as does the master
	// when it writes a state on a bound task first (docs/design.md).
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a task is bound once: status.bindTime cannot change"
	BindTime *metav1.Time `json:"bindTime,omitempty"`

	// Role is the role of the offer the task was bound on, copied with
	// bindTime from the Assignment entry: the master books the task's
	// resources under it, even after the offer is gone.
	// +optional
	// +kubebuilder:validation:MaxLength=255
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="status.role is written once, with the bind"
	Role string `json:"role,omitempty"`

	// StartTime is when the task's process started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// CompletionTime is when the task reached a terminal state.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// ExitCode of the task's command, when it exited.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// Healthy is the latest health check result.
	// +optional
	Healthy *bool `json:"healthy,omitempty"`

	// Usage of resources, when the task ended.
	// +optional
	Usage *ResourceUsage `json:"usage,omitempty"`

	// Sandbox is the task's directory on the agent's node (stdout, stderr).
	// +optional
	Sandbox string `json:"sandbox,omitempty"`

	// LogEndpoint is the agent's log server ("https://host:port"), written
	// by the agent with the sandbox: `agora logs` reads the task's stdout
	// and stderr from there (GET /logs/<namespace>/<name>/<stdout|stderr>).
	// Empty when the agent serves no logs.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^https://[^/?#\s]+$`
	LogEndpoint string `json:"logEndpoint,omitempty"`

	// LogCertSHA256 is the SHA-256 fingerprint (lowercase hex) of the log
	// server's TLS certificate, written with LogEndpoint: clients pin it, so
	// a self-signed certificate is verified without a CA.
	// +optional
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	LogCertSHA256 string `json:"logCertSHA256,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=tsk,categories=agora
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Agent",type=string,JSONPath=`.spec.agentName`
// +kubebuilder:printcolumn:name="CPUs",type=string,JSONPath=`.spec.resources.cpus`
// +kubebuilder:printcolumn:name="Mem",type=string,JSONPath=`.spec.resources.mem`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:selectablefield:JSONPath=`.spec.agentName`
// +kubebuilder:selectablefield:JSONPath=`.spec.offerRef.name`
// +kubebuilder:selectablefield:JSONPath=`.spec.frameworkName`

// Task is work a framework launches on an offer (Mesos' TaskInfo with its
// latest TaskStatus).
type Task struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TaskSpec `json:"spec"`
	// +optional
	Status TaskStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// TaskList is a list of Tasks.
type TaskList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Task `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Task{}, &TaskList{})
}
