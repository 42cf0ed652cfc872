package sysio

import (
	"syscall"
	"unsafe"
)

// Read is read(2) on a non-blocking descriptor, which never sleeps: it
// returns EAGAIN instead. It is made as a raw system call, without the
// scheduler's bookkeeping for a call that may block (which, with a system
// call per request, keeps waking the runtime's monitor thread and costs a
// tenth of a server's CPU). Only for descriptors in non-blocking mode, as
// Go's sockets are.
func Read(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// Write is write(2) on a non-blocking descriptor; see Read.
func Write(fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
