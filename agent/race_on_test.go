//go:build race

package agent_test

// raceEnabled: the race-instrumented test binary, re-executed as a task's
// supervisor, does not fit the runtime's 16 MiB supervisor cgroup.
const raceEnabled = true
