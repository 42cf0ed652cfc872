//go:build unix && (!linux || 386)

package runtime

import "github.com/flotilla-sim/flotilla/internal/sysio"

// inqSpace is 0: no TCP_INQ here.
const inqSpace = 0

// enableInq reports that the socket cannot tell what is left to read.
func enableInq(int) bool { return false }

// sysReadInq is sysio.Read; more is always true (read until EAGAIN).
func sysReadInq(fd int, b, _ []byte) (int, bool, error) {
	n, err := sysio.Read(fd, b)
	return n, true, err
}
