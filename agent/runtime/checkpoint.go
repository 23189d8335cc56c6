package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// A task's checkpoint is a directory <CheckpointDir>/<agent>/<task ID>/
// holding one file per writer, so no file ever has two writers:
//
//	launch.json  written once by the agent before the supervisor starts
//	task.json    written by the supervisor: pids, start times, exit status
//	kill.json    written by the agent when a kill is requested
//	supervisor.log  the supervisor's own stderr
const (
	launchFile = "launch.json"
	recordFile = "task.json"
	killFile   = "kill.json"
	supLogFile = "supervisor.log"
)

// launchSpec is everything the supervisor needs, resolved by the agent.
type launchSpec struct {
	TaskID    string `json:"taskID"`
	Name      string `json:"name"`
	AgentName string `json:"agentName"`
	// Tenant is TaskSpec.Tenant, so that the task's end keeps its tenant's
	// uid in use (Forget).
	Tenant string `json:"tenant,omitempty"`
	Argv   []string
	Env    []string
	Dir    string
	// SetUser is false when the task runs as the agent's own user.
	SetUser bool     `json:"setUser,omitempty"`
	User    string   `json:"user,omitempty"`
	UID     uint32   `json:"uid"`
	GID     uint32   `json:"gid"`
	Groups  []uint32 `json:"groups,omitempty"`
	Sandbox string   `json:"sandbox"`
	// RootFS is Config.RootFS at launch: recorded so that the supervisor
	// and health checks after a Recover use the task's root.
	RootFS string `json:"rootFS,omitempty"`
	// CgroupVersion and the paths let the supervisor act without layout
	// detection, and let Recover clean up what was created.
	CgroupVersion    int               `json:"cgroupVersion"`
	Cgroup           map[string]string `json:"cgroup"`
	SupervisorCgroup map[string]string `json:"supervisorCgroup"`
	SelfExe          string            `json:"selfExe"`
	HealthCheck      *HealthCheck      `json:"healthCheck,omitempty"`
	KillGracePeriod  time.Duration     `json:"killGracePeriod"`
	CreatedAt        time.Time         `json:"createdAt"`
}

// taskRecord is the supervisor's account of the task.
type taskRecord struct {
	BootID               string      `json:"bootID"`
	SupervisorPID        int         `json:"supervisorPID"`
	SupervisorStartTicks uint64      `json:"supervisorStartTicks"`
	TaskPID              int         `json:"taskPID,omitempty"`
	TaskStartTicks       uint64      `json:"taskStartTicks,omitempty"`
	StartedAt            time.Time   `json:"startedAt,omitzero"`
	Exit                 *ExitStatus `json:"exit,omitempty"`
}

// killRecord is a pending or past kill request; it survives agent restarts
// so a kill in its grace period is finished by the next agent.
type killRecord struct {
	RequestedAt time.Time     `json:"requestedAt"`
	Grace       time.Duration `json:"grace"`
	Reason      string        `json:"reason"`
}

// writeJSONAtomic writes v to path so that readers see the old or the new
// content, never a mix, even across a crash: temp file, fsync, rename,
// fsync of the directory.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a directory's entries (a rename, a new sub-directory)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func readLaunch(dir string) (*launchSpec, error) {
	var l launchSpec
	if err := readJSON(filepath.Join(dir, launchFile), &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// readRecord returns the supervisor's record, nil if not written yet.
func readRecord(dir string) (*taskRecord, error) {
	var r taskRecord
	err := readJSON(filepath.Join(dir, recordFile), &r)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func readKill(dir string) *killRecord {
	var k killRecord
	if readJSON(filepath.Join(dir, killFile), &k) != nil {
		return nil
	}
	return &k
}

// finalStatus merges the supervisor's exit status with a kill request:
// the supervisor only sees a signal, the agent knows why it was sent.
func finalStatus(exit ExitStatus, kill *killRecord) ExitStatus {
	if kill != nil && !exit.OOM && exit.Reason == "" {
		exit.Killed = true
		exit.Reason = kill.Reason
	}
	return exit
}
