package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const rootMarker = "/agora-rootfs-marker"

// testRoot is a root filesystem built for one test, as a DaemonSet agent
// sees the host's at /host.
type testRoot struct {
	dir    string
	marker string // content of rootMarker, which exists only in this root
}

// rootOpts varies the test root.
type rootOpts struct {
	skipWorkDir bool              // leave WorkDir out of the root
	files       map[string]string // extra files (mounted over read-only ones)
}

// buildRootFS makes a root filesystem from the host's /bin, /lib, /lib64,
// /usr and /etc, bind-mounted read-only (symlinks such as a merged-/usr
// /bin -> usr/bin are copied as links), plus a marker file that exists
// only there, and workDir bind-mounted at its own path.
func buildRootFS(t *testing.T, workDir string, opts rootOpts) *testRoot {
	t.Helper()
	dir := t.TempDir()
	// Tasks running as nobody must be able to traverse their "/".
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var mounts []string
	t.Cleanup(func() {
		for _, m := range slices.Backward(mounts) {
			if err := syscall.Unmount(m, 0); err != nil {
				// A task still inside: detach rather than leave it mounted.
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
					t.Errorf("unmount %s: %v", m, err)
				}
			}
		}
	})
	bind := func(src, dst string, ro bool) {
		t.Helper()
		if err := syscall.Mount(src, dst, "", syscall.MS_BIND, ""); err != nil {
			t.Fatalf("bind %s: %v", src, err)
		}
		mounts = append(mounts, dst)
		if !ro {
			return
		}
		// A bind ignores MS_RDONLY; a remount applies it. Flags the source
		// has (nosuid, nodev) must be kept or a remount may be refused.
		var st syscall.Statfs_t
		flags := uintptr(syscall.MS_BIND | syscall.MS_REMOUNT | syscall.MS_RDONLY)
		if syscall.Statfs(src, &st) == nil {
			flags |= uintptr(st.Flags) & (syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC)
		}
		if err := syscall.Mount("", dst, "", flags, ""); err != nil {
			t.Fatalf("remount %s read-only: %v", dst, err)
		}
	}
	for _, p := range []string{"/bin", "/lib", "/lib64", "/usr", "/etc"} {
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, p)
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		bind(p, dst, true)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	r := &testRoot{dir: dir, marker: "inside the root " + hex.EncodeToString(b)}
	if err := os.WriteFile(filepath.Join(dir, rootMarker), []byte(r.marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, content := range opts.files {
		dst := filepath.Join(dir, name)
		if _, err := os.Stat(dst); err == nil {
			// Inside a read-only bind: mount a file over it.
			src := filepath.Join(t.TempDir(), filepath.Base(name))
			if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			bind(src, dst, false)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if !opts.skipWorkDir {
		dst := filepath.Join(dir, workDir)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		bind(workDir, dst, false)
	}
	return r
}

// rootEnvs returns the test environments to run a root test in: the
// host's layout (the v1 shim on v1 hosts) and a real cgroup2 hierarchy
// (clone into cgroup), when the host has one besides.
func rootEnvs(t *testing.T, fn func(t *testing.T, e *testEnv)) {
	t.Run("host-layout", func(t *testing.T) { fn(t, newTestEnv(t)) })
	l, err := DetectLayout()
	if err == nil && l.Version == 1 && l.Unified != "" {
		t.Run("v2", func(t *testing.T) { fn(t, v2TestEnv(t)) })
	}
}

// TestRootFSTask: with RootFS, the task sees the root's files, finds its
// command through PATH inside the root (even through an absolute symlink
// that only makes sense there), and runs in its working dir inside it.
func TestRootFSTask(t *testing.T) {
	if _, err := os.Stat(rootMarker); err == nil {
		t.Skipf("%s exists outside the test root", rootMarker)
	}
	rootEnvs(t, func(t *testing.T, e *testEnv) {
		root := buildRootFS(t, e.workDir, rootOpts{files: map[string]string{
			"/agora-only-bin/rootonly": "#!/bin/sh\necho \"rootonly in $(pwd)\"\n",
		}})
		if err := os.Symlink("/agora-only-bin", filepath.Join(root.dir, "agora-abs-link")); err != nil {
			t.Fatal(err)
		}
		cfg := e.config("node-root")
		cfg.RootFS = root.dir
		rt, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rt.Close)
		ev := collect(rt)

		cat := launch(t, rt, TaskSpec{ID: "cat", Name: "cat", Command: Command{Argv: []string{"cat", rootMarker}}})
		only := launch(t, rt, TaskSpec{ID: "only", Name: "only", Command: Command{Argv: []string{"rootonly"}},
			Env: map[string]string{"PATH": "/agora-abs-link:/usr/bin:/bin"}})
		wd := launch(t, rt, TaskSpec{ID: "wd", Name: "wd", Command: Command{Shell: "pwd"}, WorkingDir: "/agora-only-bin"})
		for _, id := range []string{"cat", "only", "wd"} {
			if ex := ev.wait(t, id, EventExited, 10*time.Second).Exit; !ex.Succeeded() {
				t.Errorf("%s: exit %+v", id, *ex)
			}
		}
		if got := strings.TrimSpace(sandboxFile(t, cat, "stdout")); got != root.marker {
			t.Errorf("cat %s printed %q, want %q (stderr %q)", rootMarker, got, root.marker, sandboxFile(t, cat, "stderr"))
		}
		// Default cwd: the sandbox, at the agent's path inside the root.
		if got, want := strings.TrimSpace(sandboxFile(t, only, "stdout")), "rootonly in "+only.Sandbox; got != want {
			t.Errorf("rootonly printed %q, want %q (stderr %q)", got, want, sandboxFile(t, only, "stderr"))
		}
		if got := strings.TrimSpace(sandboxFile(t, wd, "stdout")); got != "/agora-only-bin" {
			t.Errorf("pwd printed %q, want /agora-only-bin", got)
		}
		// Outside the root neither exists: a clear launch error.
		if _, err := rt.Launch(t.Context(), TaskSpec{ID: "missing", Command: Command{Argv: []string{"agora-not-there"}}}); err == nil ||
			!strings.Contains(err.Error(), "inside RootFS") {
			t.Errorf("launch of a missing command: %v, want not found inside RootFS", err)
		}
		for _, id := range []string{"cat", "only", "wd"} {
			if err := rt.Forget(id); err != nil {
				t.Error(err)
			}
		}
	})
}

// TestRootFSUser: users come from the root's /etc/passwd and /etc/group,
// which here give nobody a uid, gid and supplementary group that the
// agent's own files do not.
func TestRootFSUser(t *testing.T) {
	rootEnvs(t, func(t *testing.T, e *testEnv) {
		root := buildRootFS(t, e.workDir, rootOpts{files: map[string]string{
			"/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:54321:54320:nobody:/nonexistent:/bin/sh\n",
			"/etc/group":  "root:x:0:\nagora-nobody:x:54320:\nagora-extra:x:54322:daemon,nobody\nagora-other:x:54323:daemon\n",
		}})
		cfg := e.config("node-root")
		cfg.RootFS = root.dir
		rt, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(rt.Close)
		ev := collect(rt)
		info := launch(t, rt, TaskSpec{ID: "who", Name: "who", User: "nobody",
			Command: Command{Shell: `echo "$(id -u) $(id -g) $(id -G) $HOME"`}})
		if ex := ev.wait(t, "who", EventExited, 10*time.Second).Exit; !ex.Succeeded() {
			t.Fatalf("exit %+v, stderr %q", *ex, sandboxFile(t, info, "stderr"))
		}
		if got, want := strings.TrimSpace(sandboxFile(t, info, "stdout")), "54321 54320 54320 54322 /nonexistent"; got != want {
			t.Errorf("uid gid groups home = %q, want %q", got, want)
		}
		if err := rt.Forget("who"); err != nil {
			t.Error(err)
		}
	})
}

// TestRootFSHealthCheck: a command health check runs inside the root too.
func TestRootFSHealthCheck(t *testing.T) {
	if _, err := os.Stat(rootMarker); err == nil {
		t.Skipf("%s exists outside the test root", rootMarker)
	}
	e := newTestEnv(t)
	root := buildRootFS(t, e.workDir, rootOpts{})
	cfg := e.config("node-root")
	cfg.RootFS = root.dir
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	ev := collect(rt)
	launch(t, rt, TaskSpec{ID: "svc", Name: "svc", Command: Command{Shell: "exec sleep 30"}, User: "nobody",
		HealthCheck: &HealthCheck{
			Command:  &Command{Shell: `test -e ` + rootMarker + ` && test "$(pwd)" = "$AGORA_SANDBOX"`},
			Interval: 100 * time.Millisecond, Timeout: 2 * time.Second,
		}})
	if h := ev.wait(t, "svc", EventHealth, 5*time.Second); !h.Healthy {
		t.Errorf("health: %+v", h)
	}
	if err := rt.Kill("svc", 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, "svc", EventExited, 10*time.Second)
	if err := rt.Forget("svc"); err != nil {
		t.Error(err)
	}
}

// TestRootFSWithoutWorkDir: New refuses a RootFS in which WorkDir is
// missing or is another directory, saying how to mount it.
func TestRootFSWithoutWorkDir(t *testing.T) {
	e := newTestEnv(t)
	root := buildRootFS(t, e.workDir, rootOpts{skipWorkDir: true})
	cfg := e.config("node-root")
	cfg.RootFS = root.dir
	_, err := New(cfg)
	if err == nil || !strings.Contains(err.Error(), "not visible inside RootFS") || !strings.Contains(err.Error(), "same path") {
		t.Errorf("New without WorkDir in the root: %v", err)
	}
	// The same path, but not the same directory (not a bind of it).
	if err := os.MkdirAll(filepath.Join(root.dir, e.workDir), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg)
	if err == nil || !strings.Contains(err.Error(), "different directory") || !strings.Contains(err.Error(), "hostPath") {
		t.Errorf("New with another directory at WorkDir's path: %v", err)
	}
}
