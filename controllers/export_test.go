package controllers

// SetRebuildPageSize makes the rebuild read its lists in pages of n, so
// that tests with a handful of objects read several pages; the returned
// func restores the default.
func SetRebuildPageSize(n int64) (restore func()) {
	old := rebuildPageSize.Swap(n)
	return func() { rebuildPageSize.Store(old) }
}
