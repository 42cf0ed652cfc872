// Package syncbuf is a byte buffer that goroutines can share: tests use it
// to watch what a server, a child process or a logger writes while it runs.
package syncbuf

import (
	"bytes"
	"sync"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent use that signals writes.
// The zero value is an empty buffer ready to use.
type Buffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{} // holds one signal while a write is unnoticed
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.signal() <- struct{}{}:
	default:
	}
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitFor waits until cond holds of what was written, checking after every
// write, for at most timeout. It returns what was written and whether cond
// held.
func (b *Buffer) WaitFor(cond func(string) bool, timeout time.Duration) (string, bool) {
	b.mu.Lock()
	wrote := b.signal()
	b.mu.Unlock()
	deadline := time.After(timeout)
	for {
		if s := b.String(); cond(s) {
			return s, true
		}
		select {
		case <-wrote:
		case <-deadline:
			return b.String(), false
		}
	}
}

func (b *Buffer) signal() chan struct{} {
	if b.wrote == nil {
		b.wrote = make(chan struct{}, 1)
	}
	return b.wrote
}
