package runtime

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestBadSpecs: specs that cannot or must not run are refused with an
// error that names the problem, and leave nothing behind.
func TestBadSpecs(t *testing.T) {
	e := newTestEnv(t)
	rt, _ := e.runtime("node-a")
	sh := Command{Shell: "true"}
	cases := []struct {
		name string
		spec TaskSpec
		want string
	}{
		{"empty command", TaskSpec{ID: "t1"}, "command is empty"},
		{"shell and argv", TaskSpec{ID: "t1", Command: Command{Shell: "true", Argv: []string{"true"}}}, "both Shell and Argv"},
		{"empty argv0", TaskSpec{ID: "t1", Command: Command{Argv: []string{""}}}, "argv[0] is empty"},
		{"missing binary", TaskSpec{ID: "t1", Command: Command{Argv: []string{"no-such-binary-xyz"}}}, "not found"},
		{"disallowed user", TaskSpec{ID: "t1", Command: sh, User: "root"}, `user "root" is not allowed`},
		{"unknown user", TaskSpec{ID: "t1", Command: sh, User: "nobody-such"}, "nobody-such"},
		{"dot-dot id", TaskSpec{ID: "..", Command: sh}, "escape"},
		{"slash id", TaskSpec{ID: "../etc", Command: sh}, "may only contain"},
		{"nested id", TaskSpec{ID: "a/b", Command: sh}, "may only contain"},
		{"empty id", TaskSpec{Command: sh}, "task ID is empty"},
		{"hidden id", TaskSpec{ID: ".x", Command: sh}, "must start with"},
		{"working dir escape", TaskSpec{ID: "t1", Command: sh, WorkingDir: "../../etc"}, "escapes the sandbox"},
		{"reserved env", TaskSpec{ID: "t1", Command: sh, Env: map[string]string{"PORT0": "1"}}, "PORT0 is reserved"},
		{"reserved env 2", TaskSpec{ID: "t1", Command: sh, Env: map[string]string{"AGORA_SANDBOX": "/"}}, "AGORA_SANDBOX is reserved"},
		{"reserved env 3", TaskSpec{ID: "t1", Command: sh, Env: map[string]string{"MESOS_SANDBOX": "/"}}, "MESOS_SANDBOX is reserved"},
		{"bad env name", TaskSpec{ID: "t1", Command: sh, Env: map[string]string{"A=B": "1"}}, "invalid"},
		{"negative memory", TaskSpec{ID: "t1", Command: sh, Resources: Resources{MemBytes: -1}}, "negative"},
		{"tiny memory", TaskSpec{ID: "t1", Command: sh, Resources: Resources{MemBytes: 1024}}, "minimum"},
		{"quota without cpus", TaskSpec{ID: "t1", Command: sh, Resources: Resources{CFSQuota: true}}, "needs MilliCPUs"},
		{"bad port", TaskSpec{ID: "t1", Command: sh, Ports: []uint32{70000}}, "out of range"},
		{"two health checks", TaskSpec{ID: "t1", Command: sh, HealthCheck: &HealthCheck{TCP: &TCPCheck{Port: 1}, HTTP: &HTTPCheck{Port: 1}}}, "exactly one"},
	}
	for _, c := range cases {
		_, err := rt.Launch(context.Background(), c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", c.name, err, c.want)
		}
	}
	// Nothing was left: no checkpoint, no cgroup.
	if ents, _ := os.ReadDir(filepath.Join(e.ckDir, "node-a")); len(ents) != 0 {
		t.Errorf("checkpoints left: %v", ents)
	}
	for _, d := range newCgroup(e.layout, filepath.Join(e.root, "node-a", taskCgroupDir)).Paths() {
		if ents, _ := os.ReadDir(d); countDirs(ents) != 0 {
			t.Errorf("cgroups left in %s", d)
		}
	}
	// A failure inside the supervisor (here: stdout cannot be opened)
	// comes back as Launch's error, and nothing is left to Forget.
	sb, _ := rt.SandboxDir("t-sup")
	if err := os.MkdirAll(filepath.Join(sb, "stdout"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Launch(context.Background(), TaskSpec{ID: "t-sup", Command: sh}); err == nil || !strings.Contains(err.Error(), "stdout") {
		t.Errorf("supervisor failure: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.ckDir, "node-a", "t-sup")); !os.IsNotExist(err) {
		t.Errorf("checkpoint left after a failed launch: %v", err)
	}
	if err := rt.Forget("t-sup"); err == nil {
		t.Error("Forget of a failed launch succeeded")
	}

	// Bad configurations.
	for _, cfg := range []Config{
		{AgentName: "../x", WorkDir: "w", CheckpointDir: "c"},
		{AgentName: "a", WorkDir: "", CheckpointDir: "c"},
		{AgentName: "a", CgroupRoot: "x/../..", WorkDir: "w", CheckpointDir: "c"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func countDirs(ents []os.DirEntry) int {
	n := 0
	for _, e := range ents {
		if e.IsDir() {
			n++
		}
	}
	return n
}

// TestSandboxSymlinksNotFollowed: the agent (root) chowns and chmods the
// sandbox and a relative working dir for the task's user. A symlink found
// in their place (left in a sandbox that already existed) is refused, not
// followed, so a task can never be handed a directory outside the work dir.
func TestSandboxSymlinksNotFollowed(t *testing.T) {
	e := newTestEnv(t)
	rt, _ := e.runtime("node-a")
	outside := t.TempDir()
	if err := os.Chmod(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	sb, _ := rt.SandboxDir("t-wd")
	if err := os.MkdirAll(sb, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(sb, "wd")); err != nil {
		t.Fatal(err)
	}
	sb2, _ := rt.SandboxDir("t-sb")
	if err := os.Symlink(outside, sb2); err != nil {
		t.Fatal(err)
	}
	// The supervisor (root) opens stdout and stderr in the sandbox.
	sb3, _ := rt.SandboxDir("t-out")
	target := filepath.Join(outside, "file")
	if err := os.WriteFile(target, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(sb3, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(sb3, "stdout")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		spec TaskSpec
		want string
	}{
		{TaskSpec{ID: "t-wd", WorkingDir: "wd/sub", User: "nobody", Command: Command{Shell: "true"}}, "is not a directory"},
		{TaskSpec{ID: "t-sb", User: "nobody", Command: Command{Shell: "true"}}, "is not a directory"},
		{TaskSpec{ID: "t-out", User: "nobody", Command: Command{Shell: "echo escaped"}}, "symbolic links"},
	} {
		if _, err := rt.Launch(context.Background(), c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want the symlink refused (%q)", c.spec.ID, err, c.want)
		}
	}
	if data, _ := os.ReadFile(target); len(data) != 0 {
		t.Errorf("the task's stdout went through a symlink: %q", data)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(outside, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 0 || st.Mode&0o7777 != 0o755 {
		t.Errorf("the directory outside: owner %d mode %o; want root's and 0755, untouched", st.Uid, st.Mode&0o7777)
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); !os.IsNotExist(err) {
		t.Errorf("a directory was created outside the sandbox: %v", err)
	}
}
