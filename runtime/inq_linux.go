//go:build linux && !386

package runtime

import (
	"syscall"
	"unsafe"
)

// tcpInq is TCP_INQ (Linux 4.18): recvmsg then reports, in a control
// message, how much is left to read, and says 1 once the peer's FIN has
// arrived even when no data is left.
const tcpInq = 36

// inqSpace is the room a TCP_INQ control message needs.
var inqSpace = syscall.CmsgSpace(4)

// enableInq asks the socket for TCP_INQ reports; false if it cannot.
func enableInq(fd int) bool {
	return syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, tcpInq, 1) == nil
}

// sysReadInq is sysio.Read with TCP_INQ (see enableInq; oob has inqSpace
// bytes): more is false only when the kernel said that the socket was
// empty after this read, with no end of stream pending either, so that a
// reader on an edge-triggered poller may wait without another read.
func sysReadInq(fd int, b, oob []byte) (n int, more bool, err error) {
	if len(b) == 0 {
		return 0, true, nil
	}
	iov := syscall.Iovec{Base: &b[0]}
	iov.SetLen(len(b))
	msg := syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: &oob[0]}
	msg.SetControllen(len(oob))
	r, _, e := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), 0)
	if e != 0 {
		return 0, false, e
	}
	more = true
	if int(msg.Controllen) >= syscall.CmsgLen(4) && msg.Flags&syscall.MSG_CTRUNC == 0 {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Level == syscall.IPPROTO_TCP && h.Type == tcpInq {
			more = *(*int32)(unsafe.Pointer(&oob[syscall.CmsgLen(0)])) != 0
		}
	}
	return int(r), more, nil
}
