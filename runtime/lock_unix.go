//go:build unix

package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrLocked is returned by OpenJournal when another process has the
// journal open.
var ErrLocked = errors.New("journal directory in use by another process")

// lockDir takes an exclusive advisory lock on dir/LOCK, held until the
// returned file is closed (or the process exits).
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("runtime: journal: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("runtime: journal %s: %w", dir, ErrLocked)
		}
		return nil, fmt.Errorf("runtime: journal: locking %s: %w", path, err)
	}
	return f, nil
}
