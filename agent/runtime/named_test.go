package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestParseLayoutNamedHierarchies: name= mounts without a controller are
// named hierarchies, not controllers; bind mounts and sub-trees are handled
// as for controllers, and a v1 cgroup has a directory in each.
func TestParseLayoutNamedHierarchies(t *testing.T) {
	mi := hybridMountinfo +
		"41 30 0:36 / /mnt/systemd-bind rw - cgroup cgroup rw,name=systemd\n" +
		"42 22 0:38 /kubepods/pod1 /run/agoratest rw - cgroup cgroup rw,xattr,name=agoratest\n" +
		"43 22 0:39 / /run/cpux rw - cgroup cgroup rw,net_cls,name=withctl\n" +
		"44 22 0:40 / /run/empty rw - cgroup cgroup rw,name=\n"
	l, err := parseLayout(strings.NewReader(mi), noFile)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"name=systemd": "/sys/fs/cgroup/systemd", "name=agoratest": "/run/agoratest"}
	if len(l.Named) != len(want) {
		t.Errorf("named hierarchies = %v, want %v", l.Named, want)
	}
	for n, m := range want {
		if l.Named[n] != m {
			t.Errorf("%s at %q, want %q", n, l.Named[n], m)
		}
	}
	if l.Has("name=systemd") || l.Has("systemd") || l.Has("name=withctl") {
		t.Errorf("a named hierarchy taken for a controller: %s", l)
	}
	if l.Controllers["net_cls"] != "/run/cpux" {
		t.Errorf("net_cls of a name=,net_cls mount at %q", l.Controllers["net_cls"])
	}
	if l.MountRoots["name=agoratest"] != "/kubepods/pod1" || l.MountRoots["name=systemd"] != "" {
		t.Errorf("mount roots: %v", l.MountRoots)
	}
	if err := l.checkHostView(); err != nil {
		t.Errorf("a named hierarchy's sub-tree refused: %v", err)
	}
	if s := l.String(); !strings.Contains(s, " name=systemd=/sys/fs/cgroup/systemd") {
		t.Errorf("String() = %s", s)
	}
	paths := newCgroup(l, "agora/node-a/task/t1").Paths()
	if got := paths["name=systemd"]; got != "/sys/fs/cgroup/systemd/agora/node-a/task/t1" {
		t.Errorf("name=systemd dir = %q; paths %v", got, paths)
	}
	if got := paths["memory"]; got != "/sys/fs/cgroup/memory/agora/node-a/task/t1" {
		t.Errorf("memory dir = %q", got)
	}

	// A v2 host has no named hierarchy to handle.
	v2 := "30 22 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n" +
		"39 30 0:36 / /run/systemd-v1 rw - cgroup cgroup rw,name=systemd\n"
	l, err = parseLayout(strings.NewReader(v2), func(string) ([]byte, error) { return []byte("cpu memory pids"), nil })
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 2 || len(l.Named) != 0 {
		t.Errorf("v2 layout with named hierarchies: %s %v", l, l.Named)
	}
}

// namedTestEnv is a v1 test env with at least one named hierarchy: the
// host's (name=systemd...), or else one mounted for the test.
func namedTestEnv(t *testing.T) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups")
	}
	l, err := DetectLayout()
	if err != nil {
		t.Skipf("no usable cgroup layout: %v", err)
	}
	if l.Version != 1 {
		t.Skip("named hierarchies are cgroup v1")
	}
	if len(l.Named) == 0 {
		mnt := t.TempDir()
		if err := unix.Mount("cgroup", mnt, "cgroup", 0, "none,name=agoratest"); err != nil {
			t.Skipf("no named hierarchy mounted, and mounting one failed: %v", err)
		}
		// Registered after TempDir and before the env's cgroup cleanup:
		// unmounted once the test's cgroups are gone, before the dir is.
		t.Cleanup(func() { unmountHierarchy(t, mnt, "name=agoratest") })
		if l, err = DetectLayout(); err != nil {
			t.Fatal(err)
		}
		if l.Named["name=agoratest"] != mnt {
			t.Fatalf("mounted name=agoratest at %s, layout: %s", mnt, l)
		}
	}
	return newTestEnvWithLayout(t, l)
}

// unmountHierarchy unmounts a named hierarchy the test mounted and makes
// sure the kernel dropped it. The kernel frees an unmounted hierarchy in
// the background, but keeps it if it still had cgroups when unmounted,
// even ones just removed and not yet freed: it is then mounted again and
// unmounted once more.
func unmountHierarchy(t *testing.T, mnt, name string) {
	gone := func() bool {
		for range 100 {
			b, _ := os.ReadFile("/proc/self/cgroup")
			if !strings.Contains(string(b), ":"+name+":") {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	for i := 0; ; i++ {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			return
		}
		if gone() {
			return
		}
		if i == 3 {
			t.Errorf("cgroup hierarchy %s still exists after unmounting it", name)
			return
		}
		if err := unix.Mount("cgroup", mnt, "cgroup", 0, "none,"+name); err != nil {
			t.Errorf("mount %s again to release it: %v", name, err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// TestNamedHierarchies: on v1 the supervisor and the task are in their own
// cgroups of every named hierarchy (as /proc/<pid>/cgroup shows), not in
// the agent's; Forget removes those cgroups and GC stray empty ones.
func TestNamedHierarchies(t *testing.T) {
	e := namedTestEnv(t)
	t.Logf("layout: %s", e.layout)
	rt, ev := e.runtime("node-n")
	const id = "named-1"
	info := launch(t, rt, TaskSpec{ID: id, Name: "named",
		Command: Command{Shell: `cat /proc/self/cgroup > cg.txt; exec sleep 30`},
		// A health check runs through the shim too.
		HealthCheck: &HealthCheck{Command: &Command{Shell: "cat /proc/self/cgroup > hc.txt"}, Interval: 100 * time.Millisecond, Timeout: 5 * time.Second},
	})
	rec, err := readRecord(filepath.Join(e.ckDir, "node-n", id))
	if err != nil || rec == nil {
		t.Fatalf("record: %+v %v", rec, err)
	}
	waitFor(t, "health check output", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(info.Sandbox, "hc.txt"))
		return len(b) > 0
	})
	procCg := func(pid int) string {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for n, mnt := range e.layout.Named {
		root := e.layout.MountRoots[n]
		if root == "" {
			root = "/"
		}
		for _, c := range []struct {
			who, sub, cgroup string
			pid              int
		}{
			{"task", taskCgroupDir, procCg(info.PID), info.PID},
			{"task (its own view)", taskCgroupDir, sandboxFile(t, info, "cg.txt"), info.PID},
			{"health check", taskCgroupDir, sandboxFile(t, info, "hc.txt"), 0},
			{"supervisor", supervisorCgroupDir, procCg(rec.SupervisorPID), rec.SupervisorPID},
		} {
			rel := filepath.Join(root, e.root, "node-n", c.sub, id)
			if !strings.Contains(c.cgroup, ":"+n+":"+rel+"\n") {
				t.Errorf("%s is not in %s:%s:\n%s", c.who, n, rel, c.cgroup)
			}
			dir := filepath.Join(mnt, e.root, "node-n", c.sub, id)
			if c.pid != 0 && !strings.Contains(readCg(t, dir, "cgroup.procs")+"\n", fmt.Sprintf("%d\n", c.pid)) {
				t.Errorf("%s pid %d not in %s", c.who, c.pid, dir)
			}
		}
		if want := filepath.Join(mnt, e.root, "node-n", taskCgroupDir, id); info.Cgroups[n] != want {
			t.Errorf("TaskInfo.Cgroups[%q] = %q, want %q", n, info.Cgroups[n], want)
		}
	}

	if err := rt.Kill(id, -1); err != nil {
		t.Fatal(err)
	}
	if ex := ev.wait(t, id, EventExited, 10*time.Second).Exit; ex.Signal != int(syscall.SIGKILL) {
		t.Errorf("exit = %+v, want SIGKILL", *ex)
	}
	waitFor(t, "supervisor exit", 5*time.Second, func() bool { return !alive(rec.SupervisorPID) })
	if err := rt.Forget(id); err != nil {
		t.Fatal(err)
	}
	for n, mnt := range e.layout.Named {
		for _, sub := range []string{taskCgroupDir, supervisorCgroupDir} {
			d := filepath.Join(mnt, e.root, "node-n", sub, id)
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("%s cgroup %s still exists after Forget: %v", n, d, err)
			}
		}
		// An empty cgroup of an unknown task is GC'd there too.
		stray := filepath.Join(mnt, e.root, "node-n", taskCgroupDir, "stray")
		if err := os.MkdirAll(stray, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := rt.GC(time.Hour); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(stray); !os.IsNotExist(err) {
			t.Errorf("GC kept %s: %v", stray, err)
		}
	}
}
