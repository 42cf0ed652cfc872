//go:build unix

package sysio

import (
	"errors"
	"syscall"
	"testing"
)

// On a non-blocking socket pair: what Write puts in, Read gets out; an
// empty socket answers EAGAIN instead of sleeping.
func TestReadWriteNonBlocking(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	for _, fd := range fds {
		if err := syscall.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 16)
	if _, err := Read(fds[1], buf); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("read of an empty socket: %v, want EAGAIN", err)
	}
	if n, err := Write(fds[0], []byte("hello")); n != 5 || err != nil {
		t.Fatalf("write: %d, %v", n, err)
	}
	if n, err := Read(fds[1], buf); n != 5 || err != nil || string(buf[:n]) != "hello" {
		t.Fatalf("read: %q, %v", buf[:n], err)
	}
	if n, err := Read(fds[1], nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v", n, err)
	}
}
