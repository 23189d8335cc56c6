// Package resources is Agora's resource model: the scalar resources of
// Mesos (cpus, mem, disk, gpus) as exact integers, and port ranges.
//
// It is pure Go with no Kubernetes dependency, so the allocator, the master
// and the agent can all share it and test it in isolation.
//
// Values are treated as immutable: every operation returns a new value and
// never modifies its inputs, so Ranges slices may be shared freely between
// Resources values without copying.
package resources

import "fmt"

// Kind names one scalar resource.
type Kind int

// The scalar kinds. CPUs are counted in millicpus (Mesos keeps three decimal
// places), Mem and Disk in bytes, GPUs in whole devices.
const (
	CPUs Kind = iota
	Mem
	Disk
	GPUs
	NumScalars // number of scalar kinds; not a kind itself
)

var kindNames = [NumScalars]string{"cpus", "mem", "disk", "gpus"}

// String returns the Mesos name of the kind: "cpus", "mem", "disk" or "gpus".
func (k Kind) String() string {
	if k >= 0 && k < NumScalars {
		return kindNames[k]
	}
	return "kind(" + itoa(int64(k)) + ")"
}

// ParseKind returns the scalar kind named by its Mesos name.
func ParseKind(name string) (Kind, error) {
	for k, n := range kindNames {
		if n == name {
			return Kind(k), nil
		}
	}
	return -1, fmt.Errorf("resources: unknown scalar resource %q (want one of cpus, mem, disk, gpus)", name)
}

// Units for building values in code.
const (
	MilliCPU int64 = 1
	CPU      int64 = 1000

	Byte int64 = 1
	KiB  int64 = 1 << 10
	MiB  int64 = 1 << 20
	GiB  int64 = 1 << 30
	TiB  int64 = 1 << 40
	PiB  int64 = 1 << 50
	EiB  int64 = 1 << 60
)

// MaxScalar bounds every scalar so that sums of many values cannot overflow
// int64; Validate and Parse reject larger values.
const MaxScalar int64 = 1 << 61

// KindSet is a set of scalar kinds, e.g. the kinds a quota limit applies to.
type KindSet uint8

// AllScalars holds every scalar kind.
const AllScalars KindSet = 1<<NumScalars - 1

// KindsOf returns the set holding ks.
func KindsOf(ks ...Kind) KindSet {
	var s KindSet
	for _, k := range ks {
		s |= 1 << k
	}
	return s
}

// Has reports whether k is in the set.
func (s KindSet) Has(k Kind) bool { return s&(1<<k) != 0 }

// String lists the kinds, e.g. "{cpus,mem}".
func (s KindSet) String() string {
	out := "{"
	for k := Kind(0); k < NumScalars; k++ {
		if s.Has(k) {
			if len(out) > 1 {
				out += ","
			}
			out += k.String()
		}
	}
	return out + "}"
}

func itoa(v int64) string {
	var buf [24]byte
	return string(appendInt(buf[:0], v))
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		u := uint64(-v)
		return appendUint(b, u)
	}
	return appendUint(b, uint64(v))
}

func appendUint(b []byte, u uint64) []byte {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	return append(b, buf[i:]...)
}
