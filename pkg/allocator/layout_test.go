package allocator

import (
	"testing"
	"unsafe"
)

// TestAgentLayout keeps the agent as the comment on it describes. Go
// allocates a struct of 897 to 1024 bytes in the 1024-byte size class,
// whose objects start at multiples of 1024 within 8 KiB spans: an agent
// never straddles a page, and field offsets are cache-line offsets.
func TestAgentLayout(t *testing.T) {
	var ag agent
	if s := unsafe.Sizeof(ag); s <= 896 || s > 1024 {
		t.Errorf("agent is %d bytes; keep it in 897-1024", s)
	}
	line0 := map[string][2]uintptr{
		"freeS": {unsafe.Offsetof(ag.freeS), unsafe.Sizeof(ag.freeS)},
		"name":  {unsafe.Offsetof(ag.name), unsafe.Sizeof(ag.name)},
		"n":     {unsafe.Offsetof(ag.n), unsafe.Sizeof(ag.n)},
		"flags": {unsafe.Offsetof(ag.reachable), unsafe.Offsetof(ag.heldPorts) + 1 - unsafe.Offsetof(ag.reachable)},
	}
	for name, f := range line0 {
		if f[0]+f[1] > 64 {
			t.Errorf("agent.%s at bytes %d-%d, want it in the first cache line", name, f[0], f[0]+f[1]-1)
		}
	}
	if off := unsafe.Offsetof(ag.keys); off != 64 {
		t.Errorf("agent.keys at byte %d, want it to fill the second cache line", off)
	}
	if off := unsafe.Offsetof(ag.s); off+unsafe.Sizeof(ag.s) != unsafe.Sizeof(ag) {
		t.Errorf("agent.s at byte %d, want it last (the collector scans up to the last pointer)", off)
	}
}
