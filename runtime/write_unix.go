//go:build unix

package runtime

import (
	"errors"
	"github.com/flotilla-sim/flotilla/internal/sysio"
	"net"
	"syscall"
)

// writeNonblocking writes as much of b to conn as its socket buffer takes
// without waiting and returns how much that was. Go keeps its sockets in
// non-blocking mode, so a write(2) on the raw descriptor returns EAGAIN
// instead of blocking; the net.Conn methods would park the goroutine.
// A nil rc writes nothing (n == 0, no error): the caller's blocking path
// writes it.
func writeNonblocking(rc syscall.RawConn, b []byte) (n int, err error) {
	if rc == nil {
		return 0, nil
	}
	rerr := rc.Write(func(fd uintptr) bool {
		for n < len(b) {
			m, e := sysio.Write(int(fd), b[n:])
			switch {
			case e == nil && m > 0:
				n += m
			case e == nil:
				return true // no progress: leave it to the blocking path
			case errors.Is(e, syscall.EINTR):
			case errors.Is(e, syscall.EAGAIN):
				return true // full: the rest is the caller's to queue
			default:
				err = e
				return true
			}
		}
		return true
	})
	if err == nil {
		err = rerr
	}
	return n, err
}

// rawConnOf is conn's raw descriptor access, nil if it has none.
func rawConnOf(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
