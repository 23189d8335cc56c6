package allocator

import (
	"testing"
	"unsafe"
)

// TestPrefetchNeverFaults: the pipelines prefetch through guesses (stale
// handles, the line after a slice's end), so a prefetch of any address
// must return quietly.
func TestPrefetchNeverFaults(t *testing.T) {
	var ag agent
	for _, c := range []struct {
		p uintptr
		n int
	}{
		{0, 1}, {1, 3}, {^uintptr(0) &^ 63, 1}, {uintptr(unsafe.Pointer(&ag)), headLines}, {uintptr(unsafe.Pointer(&ag)), 0}, {uintptr(unsafe.Pointer(&ag)), -1},
	} {
		prefetchLines(c.p, c.n)
	}
	prefetchHead(nil)
	prefetchRecover(nil, nil, true)
}

// TestPrefetchRangeLines: a range is prefetched by every line it spans,
// whatever its alignment.
func TestPrefetchRangeLines(t *testing.T) {
	for _, c := range []struct {
		off, size uintptr
		lines     int
	}{
		{0, 1, 1}, {0, 64, 1}, {0, 65, 2}, {63, 2, 2}, {8, 64, 2}, {32, 32, 1}, {472, 64, 2},
	} {
		if got := linesOf(c.off, c.size); got != c.lines {
			t.Errorf("%d bytes at offset %d: %d lines, want %d", c.size, c.off, got, c.lines)
		}
	}
}
