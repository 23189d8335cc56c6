package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/agora-sched/agora/internal/mountinfo"
)

// The sysctls the kubelet sets at start (setupKernelTunables) and the ones
// the CNI bridge plugin turns on for its gateway; all are put back.
var watchedSysctls = []string{
	"vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
	"kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
	"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.default.forwarding",
}

// Host paths that the kubelet, containerd or libcni create whatever their
// configuration says, and the agent's work dir. Those that do not exist
// before the run are removed after it.
func watchedPaths(o *Options) []string {
	return []string{
		"/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd",
		"/run/netns", "/var/lib/kubelet", "/var/lib/containerd", "/opt/containerd",
		"/etc/cni", "/opt/cni", "/usr/libexec/kubernetes", o.AgentWorkDir,
	}
}

// HostState is what the run changes, recorded before it changes anything and
// kept in <data-dir>/host-state.json so that `localnode down` can restore
// the host after a crash.
type HostState struct {
	Sysctls map[string]string `json:"sysctls"`
	// RootPropagation is "shared", "slave" or "private" for the mount at /.
	RootPropagation string `json:"rootPropagation"`
	// Iptables holds iptables-save output per command (iptables, ip6tables).
	Iptables map[string]string `json:"iptables"`
	// NftTables lists `nft list tables` (iptables-nft creates tables such
	// as "ip mangle" on first use; new ones are deleted).
	NftTables []string `json:"nftTables"`
	// Absent lists watched paths that did not exist.
	Absent []string `json:"absent"`
	// ServiceIPOnLo is whether the apiserver's service IP was already on lo.
	ServiceIPOnLo bool `json:"serviceIPOnLo"`
	// AgentCgroupRootExisted per hierarchy mount point.
	AgentCgroupRootExisted map[string]bool `json:"agentCgroupRootExisted"`
}

func statePath(o *Options) string { return filepath.Join(o.DataDir, "host-state.json") }

func recordHost(o *Options) (*HostState, error) {
	s := &HostState{Sysctls: map[string]string{}, Iptables: map[string]string{}, AgentCgroupRootExisted: map[string]bool{}}
	for _, k := range watchedSysctls {
		v, err := readSysctl(k)
		if err != nil {
			continue // not on this kernel
		}
		s.Sysctls[k] = v
	}
	prop, err := mountPropagation("/")
	if err != nil {
		return nil, err
	}
	s.RootPropagation = prop
	for _, cmd := range []string{"iptables", "ip6tables"} {
		out, err := exec.Command(cmd + "-save").Output()
		if err != nil {
			return nil, fmt.Errorf("%s-save: %w", cmd, err)
		}
		s.Iptables[cmd] = string(out)
	}
	s.NftTables = nftTables()
	for _, p := range watchedPaths(o) {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			s.Absent = append(s.Absent, p)
		}
	}
	s.ServiceIPOnLo = hasAddr("lo", serviceIP)
	for _, h := range cgroupHierarchies() {
		_, err := os.Stat(filepath.Join(h, o.AgentCgroupRoot))
		s.AgentCgroupRootExisted[h] = err == nil
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return s, os.WriteFile(statePath(o), data, 0o600)
}

func loadHostState(o *Options) (*HostState, error) {
	data, err := os.ReadFile(statePath(o))
	if err != nil {
		return nil, err
	}
	var s HostState
	return &s, json.Unmarshal(data, &s)
}

func sysctlPath(k string) string {
	return filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
}

func readSysctl(k string) (string, error) {
	b, err := os.ReadFile(sysctlPath(k))
	return strings.TrimSpace(string(b)), err
}

func writeSysctl(k, v string) error { return os.WriteFile(sysctlPath(k), []byte(v), 0o644) }

// mountPropagation reads the propagation of the mount at target from the
// optional fields of /proc/self/mountinfo (the last mount there wins).
func mountPropagation(target string) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	prop := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 || fields[4] != target {
			continue
		}
		prop = "private"
		for _, opt := range fields[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				prop = "shared"
				break
			}
			if strings.HasPrefix(opt, "master:") {
				prop = "slave"
			}
		}
	}
	if prop == "" {
		return "", fmt.Errorf("no mount at %s", target)
	}
	return prop, sc.Err()
}

func setPropagation(target, prop string) error {
	flags := map[string]uintptr{"shared": syscall.MS_SHARED, "slave": syscall.MS_SLAVE, "private": syscall.MS_PRIVATE}[prop]
	if flags == 0 {
		return fmt.Errorf("unknown propagation %q", prop)
	}
	return syscall.Mount("", target, "", flags, "")
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	// mountinfo lists parents before children: reverse for unmounting.
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// cgroupHierarchies returns the v1 hierarchies mounted under /sys/fs/cgroup
// (the unified side hierarchy of hybrid hosts included), or /sys/fs/cgroup
// itself on a pure v2 host.
func cgroupHierarchies() []string {
	var out []string
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		if t := fields[sep+1]; (t == "cgroup" || t == "cgroup2") && strings.HasPrefix(fields[4], "/sys/fs/cgroup") {
			out = append(out, fields[4])
		}
	}
	return out
}
