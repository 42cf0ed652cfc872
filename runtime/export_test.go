package runtime

// SetTestHookHalfClose sets testHookHalfClose until the returned function
// restores it.
func SetTestHookHalfClose(f func()) (restore func()) {
	testHookHalfClose = f
	return func() { testHookHalfClose = nil }
}
