// Package echo is a frame echo server and checker over real TCP: the server
// sends every frame back unchanged; the checker round-trips messages of
// growing sizes and verifies each byte. It exercises the runtime's framing
// (runtime.WriteFrame / runtime.ReadFrame) end to end.
package echo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/runtime"
)

// DefaultSizes are the message sizes Check uses by default: 1, 10, 100, …,
// 10,000,000 bytes.
var DefaultSizes = []int{1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000}

// Serve echoes frames on every connection accepted from ln until ctx is
// done; it then closes ln and all connections and returns nil. A connection
// that sends a malformed or oversized frame is closed.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer func() {
		stop()
		wg.Wait()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("echo: accept: %w", err)
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			// echoConn returns only when the connection ends.
			if err := echoConn(c); !errors.Is(err, io.EOF) && ctx.Err() == nil {
				log.Info("echo connection closed", "remote", c.RemoteAddr(), "err", err)
			}
		}()
	}
}

func echoConn(c net.Conn) error {
	r := bufio.NewReaderSize(c, 64<<10)
	w := bufio.NewWriterSize(c, 64<<10)
	var buf []byte
	for {
		p, err := runtime.ReadFrame(r, buf, 0)
		if err != nil {
			return err
		}
		buf = p
		if err := runtime.WriteFrame(w, p); err != nil {
			return err
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}

// Result is one round trip made by Check.
type Result struct {
	Size    int
	Elapsed time.Duration
}

// Check connects to addr and round-trips one message of each size, checking
// that what comes back equals what was sent. It stops at the first failure.
func Check(ctx context.Context, addr string, sizes []int) ([]Result, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("echo: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	r := bufio.NewReaderSize(c, 64<<10)
	var res []Result
	for _, n := range sizes {
		msg := pattern(n)
		start := time.Now()
		if err := runtime.WriteFrame(c, msg); err != nil {
			return res, fmt.Errorf("echo: sending %d bytes: %w", n, ctxErr(ctx, err))
		}
		got, err := runtime.ReadFrame(r, nil, 0)
		if err != nil {
			return res, fmt.Errorf("echo: reading the %d byte echo: %w", n, ctxErr(ctx, err))
		}
		if !bytes.Equal(got, msg) {
			return res, fmt.Errorf("echo: %d byte message came back different (%d bytes)", n, len(got))
		}
		res = append(res, Result{Size: n, Elapsed: time.Since(start)})
	}
	return res, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// pattern is n bytes that differ from position to position, so a shifted or
// truncated echo never compares equal.
func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}
