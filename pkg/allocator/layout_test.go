package allocator

import (
	"testing"
	"unsafe"
)

// TestAgentLayout keeps the agent's hot fields on the cache lines the
// comment on agent promises. Go allocates a struct of 481 to 512 bytes in
// the 512-byte size class, whose objects start at multiples of 512 within a
// page, so field offsets are cache-line offsets; classes above 512 are
// multiples of 64 too, but the classes of 449-480 bytes are not.
func TestAgentLayout(t *testing.T) {
	var ag agent
	lines := []struct {
		line   uintptr
		fields map[string]uintptr
	}{
		{0, map[string]uintptr{"free": unsafe.Offsetof(ag.free), "reachable": unsafe.Offsetof(ag.reachable),
			"hasGPUs": unsafe.Offsetof(ag.hasGPUs), "hasReserved": unsafe.Offsetof(ag.hasReserved),
			"heldPorts": unsafe.Offsetof(ag.heldPorts), "filtered": unsafe.Offsetof(ag.filtered),
			"baseOK": unsafe.Offsetof(ag.baseOK)}},
		{1, map[string]uintptr{"heldBy": unsafe.Offsetof(ag.heldBy), "held": unsafe.Offsetof(ag.held),
			"name": unsafe.Offsetof(ag.name)}},
		{2, map[string]uintptr{"recs": unsafe.Offsetof(ag.recs), "hasFilter": unsafe.Offsetof(ag.hasFilter),
			"nextExpiry": unsafe.Offsetof(ag.nextExpiry), "idx": unsafe.Offsetof(ag.idx)}},
		{3, map[string]uintptr{"base": unsafe.Offsetof(ag.base)}},
		{4, map[string]uintptr{"covered": unsafe.Offsetof(ag.covered), "heldRanges": unsafe.Offsetof(ag.heldRanges),
			"reserved": unsafe.Offsetof(ag.reserved), "roleAlloc": unsafe.Offsetof(ag.roleAlloc)}},
	}
	sizes := map[string]uintptr{"free": unsafe.Sizeof(ag.free), "base": unsafe.Sizeof(ag.base), "name": unsafe.Sizeof(ag.name),
		"heldBy": 24, "held": 24, "recs": 24, "hasFilter": 24, "covered": 24, "heldRanges": 24,
		"nextExpiry": 8, "idx": 8, "reserved": 8, "roleAlloc": 8}
	for _, l := range lines {
		for name, off := range l.fields {
			size := max(sizes[name], 1)
			if off/64 != l.line || (off+size-1)/64 != l.line {
				t.Errorf("agent.%s at bytes %d-%d, want it within cache line %d", name, off, off+size-1, l.line)
			}
		}
	}
	if s := unsafe.Sizeof(ag); s <= 480 || s > 512 {
		t.Errorf("agent is %d bytes; keep it in 481-512 so that it is allocated 64-byte aligned", s)
	}
}
