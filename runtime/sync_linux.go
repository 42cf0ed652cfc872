package runtime

import (
	"os"
	"syscall"
)

// preallocate reserves n bytes of f from off on, extending its size, so
// that records written there later change no file metadata and an fdatasync
// commits only their data.
func preallocate(f *os.File, off, n int64) error {
	return syscall.Fallocate(int(f.Fd()), 0, off, n)
}

// datasync flushes f's data and the metadata needed to read it back.
func datasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
