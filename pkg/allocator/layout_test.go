package allocator

import (
	"testing"
	"unsafe"
)

// TestAgentLayout keeps the agent in Go's 1024-byte size class: its objects
// start at multiples of 1024 within 8 KiB spans, so an agent never
// straddles a page and a visit pays at most one TLB miss for it. Growing
// past 1024 bytes (the 1152 class) would break that.
func TestAgentLayout(t *testing.T) {
	if s := unsafe.Sizeof(agent{}); s <= 896 || s > 1024 {
		t.Errorf("agent is %d bytes; keep it in 897-1024 (see the comment on agent)", s)
	}
}
