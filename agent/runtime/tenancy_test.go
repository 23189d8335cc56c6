package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptraceProbeEnv makes the test binary attach to a pid with ptrace(2) as a
// debugger would, and report the outcome (see TestMain).
const ptraceProbeEnv = "RUNTIME_TEST_PTRACE_PID"

func ptraceProbe(pidText string) int {
	pid, err := strconv.Atoi(pidText)
	if err != nil {
		fmt.Println("bad pid", pidText)
		return 2
	}
	goruntime.LockOSThread() // ptrace requests are per thread
	if err := unix.PtraceAttach(pid); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("attached")
	return 0
}

// probeScript runs each probe (name, then a command) and prints one line
// per probe: "<name>: ok: <output>" or "<name>: failed: <output>".
func probeScript(probes ...[2]string) string {
	var b strings.Builder
	b.WriteString(`probe() { n=$1; shift; if o=$("$@" 2>&1); then echo "$n: ok: $o"; else echo "$n: failed: $o"; fi; }` + "\n")
	for _, p := range probes {
		fmt.Fprintf(&b, "probe %s %s\n", p[0], p[1])
	}
	return b.String()
}

// probeResults maps each probe's name to its line.
func probeResults(t *testing.T, info *TaskInfo) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(sandboxFile(t, info, "stdout"), "\n") {
		if name, rest, ok := strings.Cut(line, ": "); ok {
			out[name] = rest
		}
	}
	return out
}

// procIDs returns the Uid, Gid and Groups lines of /proc/<pid>/status.
func procIDs(t *testing.T, pid int) (uids, gids, groups string) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "Uid":
			uids = strings.Join(strings.Fields(v), " ")
		case "Gid":
			gids = strings.Join(strings.Fields(v), " ")
		case "Groups":
			groups = strings.TrimSpace(v)
		}
	}
	return uids, gids, groups
}

// probeBinary copies the test binary where any uid may run it.
func probeBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "agora-probe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	p := filepath.Join(dir, "probe")
	dst, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// tenancyEnv is a test env whose runtime gives each tenant its own uid.
func tenancyEnv(t *testing.T) (*testEnv, Config) {
	e := newTestEnv(t)
	// On cgroup v2 the task changes into its sandbox after dropping root:
	// the path there must be open to any uid.
	_ = os.Chmod(filepath.Dir(e.workDir), 0o755)
	cfg := e.config("node-a")
	cfg.TaskUIDs = &IDRange{First: testUIDBase + 1000, Last: testUIDBase + 1099}
	return e, cfg
}

func newRuntime(t *testing.T, cfg Config) (*Runtime, *collector) {
	t.Helper()
	rt, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rt.Close)
	return rt, collect(rt)
}

// TestTenantsCannotReachEachOther runs tasks of two frameworks with the
// real runtime. The task of tenant A tries to signal, trace and read the
// task of tenant B and is refused by the kernel each time (EPERM, EACCES),
// while a second task of tenant B, running as the same uid, may do what A
// may not: the probes work, the uids make the difference. Each tenant's
// uid is its own (gid the same, no supplementary groups) and survives an
// agent restart.
func TestTenantsCannotReachEachOther(t *testing.T) {
	_, cfg := tenancyEnv(t)
	rt, ev := newRuntime(t, cfg)
	probeBin := probeBinary(t)

	victim := launch(t, rt, TaskSpec{ID: "b-victim", Name: "victim", Tenant: "team-b/web",
		Command: Command{Shell: `echo secret > secret.txt && touch ready && exec sleep 120`}})
	waitFor(t, "victim ready", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(victim.Sandbox, "ready"))
		return err == nil
	})
	uidB := checkTenantIDs(t, cfg, victim)

	env := map[string]string{"VICTIM_PID": strconv.Itoa(victim.PID), "VICTIM_SANDBOX": victim.Sandbox, "PROBE": probeBin}
	reads := [][2]string{
		{"secret", `cat "$VICTIM_SANDBOX/secret.txt"`},
		{"list", `ls "$VICTIM_SANDBOX"`},
		{"environ", `cat "/proc/$VICTIM_PID/environ"`},
		{"id", `sh -c 'echo $(id -u) $(id -g) $(id -G)'`},
	}
	attacker := launch(t, rt, TaskSpec{ID: "a-attacker", Name: "attacker", Tenant: "team-a/batch", Env: env,
		Command: Command{Shell: probeScript(append([][2]string{
			{"kill0", `kill -0 "$VICTIM_PID"`},
			{"term", `kill -TERM "$VICTIM_PID"`},
			{"ptrace", `env ` + ptraceProbeEnv + `="$VICTIM_PID" "$PROBE"`},
			{"listall", `ls "${VICTIM_SANDBOX%/*}"`},
		}, reads...)...)}})
	friend := launch(t, rt, TaskSpec{ID: "b-friend", Name: "friend", Tenant: "team-b/web", Env: env,
		Command: Command{Shell: probeScript(append([][2]string{{"kill0", `kill -0 "$VICTIM_PID"`}}, reads...)...)}})
	for _, info := range []*TaskInfo{attacker, friend} {
		if ex := ev.wait(t, info.ID, EventExited, 20*time.Second).Exit; !ex.Succeeded() {
			t.Fatalf("%s: exit %+v, stderr %q", info.ID, *ex, sandboxFile(t, info, "stderr"))
		}
	}

	a := probeResults(t, attacker)
	t.Logf("tenant A's probes: %q", a)
	uidA := strings.Fields(strings.TrimPrefix(a["id"], "ok: "))
	if len(uidA) != 3 || uidA[0] != uidA[1] || uidA[1] != uidA[2] || uidA[0] == strconv.Itoa(int(uidB)) {
		t.Errorf("tenant A ran as uid gid groups %q; want its own uid as gid and only group (B has %d)", a["id"], uidB)
	}
	for name, want := range map[string]string{
		"kill0": "Operation not permitted", "term": "Operation not permitted", "ptrace": "operation not permitted",
		"secret": "Permission denied", "list": "Permission denied", "listall": "Permission denied",
		"environ": "Permission denied",
	} {
		if !strings.HasPrefix(a[name], "failed: ") || !strings.Contains(a[name], want) {
			t.Errorf("tenant A's %s probe: %q; want it refused with %q", name, a[name], want)
		}
	}
	if !alive(victim.PID) {
		t.Fatal("tenant A's SIGTERM reached tenant B's task")
	}
	f := probeResults(t, friend)
	for _, name := range []string{"kill0", "secret", "list", "environ"} {
		if !strings.HasPrefix(f[name], "ok: ") {
			t.Errorf("tenant B's second task, same uid, %s probe: %q; want it allowed", name, f[name])
		}
	}
	if want := fmt.Sprintf("ok: %d %d %d", uidB, uidB, uidB); f["id"] != want {
		t.Errorf("tenant B's second task: %q, want %q", f["id"], want)
	}

	checkUIDsSurviveRestart(t, cfg, rt, uidA[0], victim)
}

// checkTenantIDs checks the running task's credentials and sandbox and
// returns its uid.
func checkTenantIDs(t *testing.T, cfg Config, info *TaskInfo) uint32 {
	t.Helper()
	uids, gids, groups := procIDs(t, info.PID)
	f := strings.Fields(uids)
	uid, _ := strconv.ParseUint(f[0], 10, 32)
	if !cfg.TaskUIDs.contains(uint32(uid)) || uids != strings.Repeat(f[0]+" ", 3)+f[0] {
		t.Errorf("task %s: real, effective, saved, fs uids %q; want one uid of %s", info.ID, uids, cfg.TaskUIDs)
	}
	if gids != uids || groups != "" {
		t.Errorf("task %s: gids %q, groups %q; want the uid as every gid and no supplementary groups", info.ID, gids, groups)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(info.Sandbox, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uint32(uid) || st.Gid != uint32(uid) || st.Mode&0o7777 != 0o700 {
		t.Errorf("sandbox %s: owner %d:%d mode %o; want %d:%d 0700", info.Sandbox, st.Uid, st.Gid, st.Mode&0o7777, uid, uid)
	}
	if err := syscall.Stat(filepath.Dir(info.Sandbox), &st); err != nil || st.Mode&0o7777 != 0o711 {
		t.Errorf("sandboxes' directory: mode %o (%v); want 0711", st.Mode&0o7777, err)
	}
	return uint32(uid)
}

// checkUIDsSurviveRestart restarts the runtime (as an agent restart
// does): the running task is recovered, and tenant A's next task gets the
// same uid as its first.
func checkUIDsSurviveRestart(t *testing.T, cfg Config, old *Runtime, uidA string, victim *TaskInfo) {
	t.Helper()
	old.Close()
	rt, ev := newRuntime(t, cfg)
	recs, err := rt.Recover()
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, r := range recs {
		if r.State == StateRunning {
			running++
		}
	}
	if running != 1 {
		t.Fatalf("recovered %+v; want the victim running", recs)
	}
	again := launch(t, rt, TaskSpec{ID: "a-again", Name: "again", Tenant: "team-a/batch", Command: Command{Shell: "id -u"}})
	if ex := ev.wait(t, again.ID, EventExited, 10*time.Second).Exit; !ex.Succeeded() {
		t.Fatalf("exit %+v", *ex)
	}
	if got := strings.TrimSpace(sandboxFile(t, again, "stdout")); got != uidA {
		t.Errorf("after a restart tenant A runs as uid %s, before as %s", got, uidA)
	}
	if err := rt.Kill(victim.ID, -1); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, victim.ID, EventExited, 10*time.Second)
	for _, id := range []string{"a-attacker", "b-friend", "b-victim", "a-again"} {
		if err := rt.Forget(id); err != nil {
			t.Errorf("Forget %s: %v", id, err)
		}
	}
}

// TestTenantUserPolicy: with per-tenant uids, a task may name a user only
// where the policy allows it (naming the default user would make tenants
// share it again), and a task without a tenant is refused.
func TestTenantUserPolicy(t *testing.T) {
	_, cfg := tenancyEnv(t)
	cfg.AllowedUsers = nil
	rt, _ := newRuntime(t, cfg)
	sh := Command{Shell: "id -u"}
	for _, c := range []struct {
		spec TaskSpec
		want string
	}{
		{TaskSpec{ID: "no-tenant", Command: sh}, "names no tenant"},
		{TaskSpec{ID: "nobody", Tenant: "ns/fw", User: "nobody", Command: sh}, `user "nobody" is not allowed: tasks run as their framework's own uid`},
		{TaskSpec{ID: "root", Tenant: "ns/fw", User: "root", Command: sh}, `user "root" is not allowed`},
	} {
		if _, err := rt.Launch(context.Background(), c.spec); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want an error mentioning %q", c.spec.ID, err, c.want)
		}
	}
	rt.Close()

	policy, err := ParseAllowedUsers("nobody")
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowedUsers = policy
	rt, ev := newRuntime(t, cfg)
	info := launch(t, rt, TaskSpec{ID: "named", Tenant: "ns/fw", User: "nobody", Command: sh})
	if ex := ev.wait(t, info.ID, EventExited, 10*time.Second).Exit; !ex.Succeeded() {
		t.Fatalf("exit %+v, stderr %q", *ex, sandboxFile(t, info, "stderr"))
	}
	if got := strings.TrimSpace(sandboxFile(t, info, "stdout")); got != "65534" {
		t.Errorf("a task naming an allowed user ran as uid %s, want nobody's 65534", got)
	}
	if _, err := rt.Launch(context.Background(), TaskSpec{ID: "root", Tenant: "ns/fw", User: "root", Command: sh}); err == nil ||
		!strings.Contains(err.Error(), "not among the allowed users (nobody)") {
		t.Errorf("root with --allowed-users=nobody: %v", err)
	}
	if err := rt.Forget(info.ID); err != nil {
		t.Error(err)
	}
}

// TestGCReleasesIdleTenants: GC forgets the uid of a tenant idle for
// longer than minTenantIdle, but never one a checkpointed task still uses.
func TestGCReleasesIdleTenants(t *testing.T) {
	_, cfg := tenancyEnv(t)
	rt, ev := newRuntime(t, cfg)
	done := launch(t, rt, TaskSpec{ID: "done", Tenant: "old/fw", Command: Command{Shell: "true"}})
	live := launch(t, rt, TaskSpec{ID: "live", Tenant: "live/fw", Command: Command{Shell: "exec sleep 60"}})
	ev.wait(t, done.ID, EventExited, 10*time.Second)
	if err := rt.Forget(done.ID); err != nil {
		t.Fatal(err)
	}
	if res, err := rt.GC(time.Hour); err != nil || len(res.Tenants) != 0 {
		t.Fatalf("GC released %v (%v) right after the tasks ran", res.Tenants, err)
	}
	old := time.Now().Add(-minTenantIdle - time.Hour)
	for _, tenant := range []string{"old/fw", "live/fw"} {
		if err := os.Chtimes(rt.uids.entryPath(tenant), old, old); err != nil {
			t.Fatal(err)
		}
	}
	res, err := rt.GC(time.Hour)
	if err != nil || len(res.Tenants) != 1 || res.Tenants[0] != "old/fw" {
		t.Errorf("GC released %v (%v); want only the idle old/fw, not live/fw whose task runs", res.Tenants, err)
	}
	if err := rt.Kill(live.ID, -1); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, live.ID, EventExited, 10*time.Second)
	if err := rt.Forget(live.ID); err != nil {
		t.Error(err)
	}
}
