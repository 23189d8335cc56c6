package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"

	agorav1 "github.com/agora-sched/agora/api/v1alpha1"
	"github.com/agora-sched/agora/pkg/resources"
)

// HostOptions say how to size a bare host (no Kubernetes Node).
type HostOptions struct {
	// HostRoot is where the host's / is mounted ("" or "/" when the agent
	// runs on the host): /proc and /sys/fs/cgroup are read under it.
	HostRoot string
	// WorkDir is the sandboxes' directory; disk is its filesystem's size.
	WorkDir string
	// MemReserve is kept back for the OS and the agent.
	MemReserve int64
	// Ports offered to tasks.
	Ports resources.Ranges
}

// DetectHost measures the host: cpus from the agent's cgroup cpu limit or
// cpuset (else the CPU count), memory from /proc/meminfo minus MemReserve,
// disk of WorkDir's filesystem, and the given ports.
func DetectHost(o HostOptions) (resources.Resources, error) {
	root := o.HostRoot
	if root == "" {
		root = "/"
	}
	milli := int64(goruntime.NumCPU()) * resources.CPU // honours the cpuset (sched affinity)
	if q := cgroupCPULimit(root); q > 0 && q < milli {
		milli = q
	}
	memTotal, err := memTotal(filepath.Join(root, "proc", "meminfo"))
	if err != nil {
		return resources.Resources{}, err
	}
	mem := max(0, memTotal-o.MemReserve)
	var disk int64
	if o.WorkDir != "" {
		if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
			return resources.Resources{}, err
		}
		var st unix.Statfs_t
		if err := unix.Statfs(o.WorkDir, &st); err != nil {
			return resources.Resources{}, fmt.Errorf("statfs %s: %w", o.WorkDir, err)
		}
		disk = int64(st.Blocks) * int64(st.Bsize)
	}
	r := resources.Scalars(milli, mem, disk, 0).WithPorts(o.Ports)
	return r, r.Validate()
}

func memTotal(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * resources.KiB, err
		}
	}
	return 0, fmt.Errorf("%s: no MemTotal", path)
}

// cgroupCPULimit returns the CFS quota of this process's cgroup in
// millicpus, or 0 when there is none (or it cannot be read).
func cgroupCPULimit(root string) int64 {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	cg := filepath.Join(root, "sys", "fs", "cgroup")
	for line := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			// v2: cpu.max is "max 100000" or "<quota> <period>".
			b, err := os.ReadFile(filepath.Join(cg, parts[2], "cpu.max"))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) == 2 && f[0] != "max" {
				return quotaMilli(f[0], f[1])
			}
		case strings.Contains(","+parts[1]+",", ",cpu,"):
			dir := filepath.Join(cg, parts[1], parts[2])
			if _, err := os.Stat(dir); err != nil {
				dir = filepath.Join(cg, "cpu", parts[2])
			}
			q, err1 := os.ReadFile(filepath.Join(dir, "cpu.cfs_quota_us"))
			p, err2 := os.ReadFile(filepath.Join(dir, "cpu.cfs_period_us"))
			if err1 == nil && err2 == nil {
				return quotaMilli(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
			}
		}
	}
	return 0
}

func quotaMilli(quota, period string) int64 {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0
	}
	return q * resources.CPU / p
}

// ParseAttributes reads Mesos' attribute text form, "rack:r1;zone:a;
// level:3;ids:[1-10,20-30]": a number is a scalar, [..] holds ranges,
// anything else is text.
func ParseAttributes(s string) ([]agorav1.Attribute, error) {
	var out []agorav1.Attribute
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("attribute %q: want name:value", part)
		}
		a := agorav1.Attribute{Name: name}
		switch {
		case strings.HasPrefix(value, "["):
			r, err := resources.Parse("ports:" + value)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: ranges: %w", part, err)
			}
			for _, p := range r.Ports {
				a.Ranges = append(a.Ranges, agorav1.PortRange{Begin: int32(p.Begin), End: int32(p.End)})
			}
		case isNumber(value):
			q, err := resource.ParseQuantity(value)
			if err != nil {
				return nil, fmt.Errorf("attribute %q: %w", part, err)
			}
			a.Scalar = &q
		default:
			v := value
			a.Text = &v
		}
		out = append(out, a)
	}
	return out, nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// ParseReserved reads static reservations, one per role:
// "role:cpus:1;mem:1Gi" (the role, then the resources in text form).
func ParseReserved(specs []string) ([]agorav1.RoleResources, error) {
	var out []agorav1.RoleResources
	seen := map[string]bool{}
	for _, s := range specs {
		role, res, ok := strings.Cut(strings.TrimSpace(s), ":")
		if !ok || role == "" {
			return nil, fmt.Errorf("reservation %q: want role:resources, e.g. eng:cpus:1;mem:1Gi", s)
		}
		if seen[role] {
			return nil, fmt.Errorf("reservation %q: role %s reserved twice", s, role)
		}
		seen[role] = true
		r, err := resources.Parse(res)
		if err != nil {
			return nil, fmt.Errorf("reservation %q: %w", s, err)
		}
		out = append(out, agorav1.RoleResources{Role: role, Resources: agorav1.FromModel(r)})
	}
	return out, nil
}

// CheckReserved verifies that the reservations fit in total together.
func CheckReserved(total resources.Resources, reserved []agorav1.RoleResources) error {
	var sum resources.Resources
	for _, r := range reserved {
		m, err := r.Resources.Model()
		if err != nil {
			return err
		}
		if sum.Ports.Overlaps(m.Ports) {
			return fmt.Errorf("reservation of %s: ports overlap another reservation", r.Role)
		}
		sum = sum.Add(m)
	}
	if !total.Contains(sum) {
		return errors.New("the reservations together exceed the agent's total " + total.String())
	}
	return nil
}
