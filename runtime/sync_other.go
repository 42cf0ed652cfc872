//go:build !linux

package runtime

import "os"

// datasync flushes f.
func datasync(f *os.File) error { return f.Sync() }
