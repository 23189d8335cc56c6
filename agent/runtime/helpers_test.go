package runtime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// helperEnv switches the test binary into a helper role (the "agent"
// process that the recovery test SIGKILLs).
const helperEnv = "AGORA_RUNTIME_TEST_HELPER"

func TestMain(m *testing.M) {
	// The supervisor and shim are this test binary re-executed, exactly
	// as the agent binary is in production.
	if Main(os.Args) {
		return
	}
	if os.Getenv(helperEnv) == "agent" {
		os.Exit(agentHelper())
	}
	// Task environments cannot carry AGORA_* (reserved): the tenancy
	// test's probe uses its own variable.
	if pid := os.Getenv(ptraceProbeEnv); pid != "" {
		os.Exit(ptraceProbe(pid))
	}
	os.Exit(m.Run())
}

// helperConfig is passed to the agent helper process.
type helperConfig struct {
	Agent, CgroupRoot, WorkDir, CheckpointDir string
	Tasks                                     []TaskSpec
}

// agentHelper launches tasks like an agent, says "ready", and waits to be
// killed.
func agentHelper() int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv+"_CONFIG")), &hc); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	rt, err := New(Config{AgentName: hc.Agent, CgroupRoot: hc.CgroupRoot, WorkDir: hc.WorkDir, CheckpointDir: hc.CheckpointDir})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	for _, spec := range hc.Tasks {
		if _, err := rt.Launch(context.Background(), spec); err != nil {
			fmt.Println("error:", err)
			return 1
		}
	}
	fmt.Println("ready")
	select {}
}

// testEnv is one test's private cgroup root, work and checkpoint dirs.
type testEnv struct {
	t       *testing.T
	layout  *Layout
	root    string // cgroup root, relative
	workDir string
	ckDir   string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups and setuid (running as uid", os.Geteuid(), ")")
	}
	layout, err := DetectLayout()
	if err != nil {
		t.Skipf("no usable cgroup layout: %v", err)
	}
	return newTestEnvWithLayout(t, layout)
}

func newTestEnvWithLayout(t *testing.T, layout *Layout) *testEnv {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := &testEnv{
		t:       t,
		layout:  layout,
		root:    fmt.Sprintf("agora-test-%d-%s", os.Getpid(), hex.EncodeToString(b)),
		workDir: t.TempDir(),
		ckDir:   t.TempDir(),
	}
	// Registered after TempDir, so it runs before the dirs are removed.
	t.Cleanup(func() { destroyCgroupTree(t, layout, e.root) })
	// Sandboxes are handed to unprivileged users; the temp dirs must let
	// them through.
	for _, d := range []string{e.workDir, e.ckDir} {
		_ = os.Chmod(d, 0o755)
	}
	return e
}

func (e *testEnv) config(agent string) Config {
	return Config{
		AgentName:     agent,
		CgroupRoot:    e.root,
		WorkDir:       e.workDir,
		CheckpointDir: e.ckDir,
		DefaultUser:   "",
		AllowedUsers: func(u string) error {
			if u == "" || u == "nobody" {
				return nil
			}
			return fmt.Errorf("only the agent's user and nobody")
		},
		Layout: e.layout,
		Logf:   e.t.Logf,
	}
}

func (e *testEnv) runtime(agent string) (*Runtime, *collector) {
	e.t.Helper()
	rt, err := New(e.config(agent))
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.t.Cleanup(rt.Close)
	return rt, collect(rt)
}

// destroyCgroupTree kills everything under the test's cgroup root and
// removes it, deepest first, in every hierarchy.
func destroyCgroupTree(t *testing.T, layout *Layout, root string) {
	for _, top := range newCgroup(layout, root).Paths() {
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs)
		for _, d := range dirs {
			deadline := time.Now().Add(5 * time.Second)
			for {
				pids, _ := readProcs(d)
				if len(pids) == 0 || time.Now().After(deadline) {
					break
				}
				for _, p := range pids {
					_ = unix.Kill(p, unix.SIGKILL)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Logf("cleanup: %v", err)
			}
		}
	}
}

// collector keeps every event of a Runtime for the test to wait on.
type collector struct {
	mu     sync.Mutex
	events []Event
}

func collect(rt *Runtime) *collector {
	c := &collector{}
	go func() {
		for e := range rt.Events() {
			c.mu.Lock()
			c.events = append(c.events, e)
			c.mu.Unlock()
		}
	}()
	return c
}

// wait returns the first event for id of type typ, failing after timeout.
func (c *collector) wait(t *testing.T, id string, typ EventType, timeout time.Duration) Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		for _, e := range c.events {
			if e.TaskID == id && e.Type == typ {
				c.mu.Unlock()
				return e
			}
		}
		c.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t.Fatalf("no %s event for %s within %s; events: %+v", typ, id, timeout, c.events)
	return Event{}
}

func (c *collector) has(id string, typ EventType) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.TaskID == id && e.Type == typ {
			return true
		}
	}
	return false
}

func launch(t *testing.T, rt *Runtime, spec TaskSpec) *TaskInfo {
	t.Helper()
	info, err := rt.Launch(context.Background(), spec)
	if err != nil {
		t.Fatalf("Launch %s: %v", spec.ID, err)
	}
	return info
}

func readCg(t *testing.T, dir, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return strings.TrimSpace(string(b))
}

func readCgInt(t *testing.T, dir, file string) int64 {
	t.Helper()
	s := readCg(t, dir, file)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q: %v", file, s, err)
	}
	return n
}

// statKey returns key's value from a "key value" cgroup file.
func statKey(t *testing.T, dir, file, key string) int64 {
	t.Helper()
	for _, line := range strings.Split(readCg(t, dir, file), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func alive(pid int) bool {
	return unix.Kill(pid, 0) == nil && procState(pid) != 'Z'
}

func sandboxFile(t *testing.T, info *TaskInfo, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(info.Sandbox, name))
	if err != nil {
		t.Fatalf("sandbox file %s: %v", name, err)
	}
	return string(b)
}
