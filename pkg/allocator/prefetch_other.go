//go:build !amd64 && !arm64

package allocator

// prefetchLines does nothing here: this architecture has no prefetch in
// this package (prefetch_amd64.s, prefetch_arm64.s), and a plain load would
// stall the processor where a prefetch does not.
func prefetchLines(p uintptr, n int) {}
