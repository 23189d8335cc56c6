//go:build amd64 || arm64

package allocator

// prefetchLines asks the processor to fetch the n cache lines from address
// p on into its caches, and returns without waiting for them. A prefetch
// never faults, whatever p is, and changes nothing but the caches.
func prefetchLines(p uintptr, n int)
