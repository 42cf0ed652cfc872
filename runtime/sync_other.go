//go:build !linux

package runtime

import (
	"errors"
	"os"
)

// preallocate is not supported here: the journal appends.
func preallocate(*os.File, int64, int64) error { return errors.ErrUnsupported }

// datasync flushes f.
func datasync(f *os.File) error { return f.Sync() }
