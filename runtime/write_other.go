//go:build !unix

package runtime

import (
	"net"
	"syscall"
)

// writeNonblocking writes nothing here: the caller's blocking path (a
// writer goroutine) writes b.
func writeNonblocking(syscall.RawConn, []byte) (int, error) { return 0, nil }

// rawConnOf returns nil: writes take the blocking path.
func rawConnOf(net.Conn) syscall.RawConn { return nil }
