package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

// This host's mountinfo: v1 controllers, cpu and cpuacct mounted apart,
// and a v2 hierarchy holding only hugetlb.
const hybridMountinfo = `22 1 0:20 / /sys rw,nosuid - sysfs sysfs rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

func noFile(string) ([]byte, error) { return nil, os.ErrNotExist }

func TestParseLayoutHybridIsV1(t *testing.T) {
	l, err := parseLayout(strings.NewReader(hybridMountinfo), noFile)
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 1 || l.Unified != "/sys/fs/cgroup/unified" {
		t.Fatalf("layout = %s", l)
	}
	for c, want := range map[string]string{"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
		"memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids", "freezer": "/sys/fs/cgroup/freezer"} {
		if l.Controllers[c] != want {
			t.Errorf("%s at %q, want %q", c, l.Controllers[c], want)
		}
	}
	if l.Has("systemd") || l.Has("name=systemd") {
		t.Error("named hierarchy taken for a controller")
	}
}

func TestParseLayoutJointCPUAndSubtree(t *testing.T) {
	mi := `31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:31 /kubepods/pod1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 30 0:33 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
37 30 0:33 / /mnt/my\040freezer rw - cgroup cgroup rw,freezer
`
	l, err := parseLayout(strings.NewReader(mi), noFile)
	if err != nil {
		t.Fatal(err)
	}
	if l.Controllers["cpu"] != "/sys/fs/cgroup/cpu,cpuacct" || l.Controllers["cpuacct"] != "/sys/fs/cgroup/cpu,cpuacct" {
		t.Errorf("joint mount: %s", l)
	}
	if l.MountRoots["memory"] != "/kubepods/pod1" {
		t.Errorf("memory mount root: %v", l.MountRoots)
	}
	if err := l.checkHostView(); err == nil || !strings.Contains(err.Error(), "/kubepods/pod1") {
		t.Errorf("a container's sub-tree view was accepted: %v", err)
	}
	if l.Controllers["freezer"] != "/sys/fs/cgroup/freezer" {
		t.Errorf("bind mount elsewhere won over /sys/fs/cgroup: %s", l.Controllers["freezer"])
	}
}

func TestParseLayoutV2AndMissing(t *testing.T) {
	mi := "30 22 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
	l, err := parseLayout(strings.NewReader(mi), func(p string) ([]byte, error) {
		if p != "/sys/fs/cgroup/cgroup.controllers" {
			t.Errorf("read %s", p)
		}
		return []byte("cpuset cpu io memory pids\n"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 2 || !l.Has("memory") || !l.Has("cpu") || l.Has("freezer") {
		t.Errorf("v2 layout: %s", l)
	}
	_, err = parseLayout(strings.NewReader("31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"), noFile)
	if err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("missing controllers: %v", err)
	}
}

// TestV2FakeCgroupfs runs the v2 code path against a fake cgroupfs (the
// v2 hierarchy of the test machines has no cpu or memory controller).
func TestV2FakeCgroupfs(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// TestMode lets the library create files, as the kernel would.
	cgroups.TestMode = true
	defer func() { cgroups.TestMode = false }()
	l := &Layout{Version: 2, Unified: root, Controllers: map[string]string{"cpu": root, "memory": root, "pids": root}}
	cg := newCgroup(l, "agora/node-a/task/t1")
	dir := filepath.Join(root, "agora/node-a/task/t1")
	if got := cg.Paths(); len(got) != 1 || got[""] != dir {
		t.Fatalf("paths = %v", got)
	}
	// The kernel fills a new cgroup's cgroup.controllers; so does the test.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cg.Create(limitsFor(Resources{MilliCPUs: 1500, MemBytes: 64 << 20, Pids: 32, CFSQuota: true})); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	// Every ancestor enables the controllers for its children.
	for _, anc := range []string{root, root + "/agora", root + "/agora/node-a", root + "/agora/node-a/task"} {
		if got := read(filepath.Join(anc, "cgroup.subtree_control")); got != "+cpu +memory +pids" {
			t.Errorf("%s subtree_control = %q", anc, got)
		}
	}
	want := map[string]string{
		"cpu.weight":      strconv.FormatUint(cgroups.ConvertCPUSharesToCgroupV2Value(1536), 10),
		"cpu.max":         "150000 100000",
		"memory.max":      "67108864",
		"memory.swap.max": "0",
		"pids.max":        "32",
	}
	for f, w := range want {
		if got := read(filepath.Join(dir, f)); got != w {
			t.Errorf("%s = %q, want %q", f, got, w)
		}
	}

	// Usage and OOM detection read the v2 files.
	files := map[string]string{
		"cpu.stat":      "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n",
		"memory.peak":   "1234567\n",
		"memory.events": "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n",
		"cgroup.procs":  "",
	}
	for f, c := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if u := cg.Usage(); u.CPUSeconds != 2.5 || u.PeakMemBytes != 1234567 {
		t.Errorf("usage = %+v", u)
	}
	if kills, hit, err := cg.OOMKills(); kills != 1 || !hit || err != nil {
		t.Errorf("oom = %d %v %v", kills, hit, err)
	}
	if err := cg.KillAll(0); err != nil {
		t.Errorf("KillAll on an empty cgroup: %v", err)
	}

	// The task is cloned straight into the cgroup, as its user.
	ls := &launchSpec{CgroupVersion: 2, Cgroup: cg.Paths(), Env: []string{"PATH=/bin:/usr/bin"}, Dir: "/",
		SetUser: true, UID: 65534, GID: 65534}
	cmd, err := taskCommand(ls, []string{"sh", "-c", "true"})
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.cgroupFD.Close()
	a := cmd.SysProcAttr
	if !a.UseCgroupFD || a.CgroupFD <= 0 || a.Credential == nil || a.Credential.Uid != 65534 || !strings.HasSuffix(cmd.Path, "/sh") {
		t.Errorf("v2 command: path %s attr %+v", cmd.Path, a)
	}

	// A limit needing a controller the hierarchy lacks is a clear error;
	// the supervisor's allowance just skips it.
	noMem := &Layout{Version: 2, Unified: root, Controllers: map[string]string{"cpu": root}}
	err = newCgroup(noMem, "agora/node-a/task/t2").Create(limitsFor(Resources{MemBytes: 64 << 20}))
	if err == nil || !strings.Contains(err.Error(), `"memory" is not available`) {
		t.Errorf("missing memory controller: %v", err)
	}
	if sl := (&Runtime{layout: noMem}).supervisorLimits(); sl.MemBytes != 0 || sl.Pids != 0 || sl.CPUShares == 0 {
		t.Errorf("supervisor limits without memory/pids: %+v", sl)
	}
}

func TestLimitsFor(t *testing.T) {
	for _, c := range []struct {
		r    Resources
		want limits
	}{
		{Resources{MilliCPUs: 1000}, limits{CPUShares: 1024}},
		{Resources{MilliCPUs: 1, CFSQuota: true}, limits{CPUShares: 2, CPUQuotaUs: 1000}},
		{Resources{MilliCPUs: 250, CFSQuota: true, MemBytes: 1 << 30, Pids: 100}, limits{CPUShares: 256, CPUQuotaUs: 25000, MemBytes: 1 << 30, Pids: 100}},
		{Resources{}, limits{}},
	} {
		if got := limitsFor(c.r); got != c.want {
			t.Errorf("limitsFor(%+v) = %+v, want %+v", c.r, got, c.want)
		}
	}
}

func TestBuildEnvReservedWins(t *testing.T) {
	spec := &TaskSpec{ID: "id1", Name: "n", Env: map[string]string{"PATH": "/x", "A": "b"}, Ports: []uint32{5, 6}}
	env := buildEnv(spec, "/sb", "/home/u")
	for _, want := range []string{"PATH=/x", "A=b", "HOME=/home/u", "AGORA_TASK_NAME=n", "AGORA_SANDBOX=/sb",
		"MESOS_SANDBOX=/sb", "PORT0=5", "PORT1=6", "PORTS=5,6"} {
		if !contains(env, want) {
			t.Errorf("env lacks %s: %v", want, env)
		}
	}
	for _, k := range []string{"PORT", "PORTAL", "PORT_X"} {
		if reservedEnv(k) {
			t.Errorf("%s reserved", k)
		}
	}
	for _, k := range []string{"PORT0", "PORT12", "PORTS", "AGORA_X", "MESOS_SANDBOX"} {
		if !reservedEnv(k) {
			t.Errorf("%s not reserved", k)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCheckpointAtomicAndProc(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, recordFile)
	rec := &taskRecord{BootID: "b", SupervisorPID: 1, Exit: &ExitStatus{ExitCode: 3}}
	if err := writeJSONAtomic(p, rec); err != nil {
		t.Fatal(err)
	}
	got, err := readRecord(dir)
	if err != nil || got.Exit == nil || got.Exit.ExitCode != 3 {
		t.Fatalf("read back %+v %v", got, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
	if r, err := readRecord(t.TempDir()); r != nil || err != nil {
		t.Errorf("missing record: %+v %v", r, err)
	}
	// Start ticks identify this process; a made-up value does not.
	ticks, err := procStartTicks(os.Getpid())
	if err != nil || ticks == 0 {
		t.Fatal(ticks, err)
	}
	if !sameProcess(os.Getpid(), ticks) || sameProcess(os.Getpid(), ticks+1) {
		t.Error("sameProcess")
	}
	if st := ticksToTime(ticks); st.IsZero() || st.After(time.Now()) {
		t.Errorf("start time %v", st)
	}
	// Kill requests mark the status as killed, but never hide an OOM.
	k := &killRecord{Reason: ReasonKilled}
	if s := finalStatus(ExitStatus{Signal: 9}, k); !s.Killed || s.Reason != ReasonKilled {
		t.Errorf("killed: %+v", s)
	}
	if s := finalStatus(ExitStatus{Signal: 9, OOM: true, Reason: ReasonMemoryLimit}, k); s.Reason != ReasonMemoryLimit {
		t.Errorf("oom: %+v", s)
	}
}
