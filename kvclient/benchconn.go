package kvclient

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/runtime"
)

// serialConn is a connection to a standalone server that runs one request
// at a time on the caller's goroutine: it writes the request and reads the
// response itself, with no goroutines and no per-request allocations of
// its own. Bench uses it for a strict closed loop (one request in flight per
// connection), where Client's writer and reader goroutines would only add
// two goroutine hand-offs per request on the client's side of the shared
// CPU. It is not safe for concurrent use.
type serialConn struct {
	conn net.Conn
	raw  syscall.RawConn // nil: exchange through r
	r    *bufio.Reader
	wbuf []byte
	rbuf []byte // raw: rbuf[:rlen] is read and not yet consumed
	rlen int
	id   uint64

	watched context.Context // the context whose end expires the connection
	stop    func() bool     // unregisters the expiry for watched
}

// dialSerial connects to addr.
func dialSerial(ctx context.Context, addr string) (*serialConn, error) {
	conn, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &serialConn{conn: conn, r: bufio.NewReaderSize(conn, 4<<10), stop: func() bool { return false }}
	if sc, ok := conn.(syscall.Conn); ok && rawExchange {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
		}
	}
	return c, nil
}

// exchange writes the request frame b and returns the payload of the
// response frame, valid until the next call.
func (c *serialConn) exchange(b []byte) ([]byte, error) {
	if c.raw != nil {
		return c.exchangeRaw(b)
	}
	if _, err := c.conn.Write(b); err != nil {
		return nil, err
	}
	p, err := runtime.ReadFrame(c.r, c.rbuf, 0)
	if err != nil {
		return nil, err
	}
	if cap(p) > cap(c.rbuf) {
		c.rbuf = p[:0]
	}
	return p, nil
}

// expire makes the connection's blocked and later reads and writes fail.
func (c *serialConn) expire() { c.conn.SetDeadline(time.Unix(1, 0)) }

func (c *serialConn) do(ctx context.Context, req kvsm.Request) (kvsm.Response, error) {
	if err := ctx.Err(); err != nil {
		return kvsm.Response{}, err
	}
	if ctx != c.watched {
		// A call is abandoned when its context ends; the stream is then
		// out of step, so the connection is expired for good. Bench runs
		// every call of a connection under one context: this is once.
		c.stop()
		c.watched, c.stop = ctx, context.AfterFunc(ctx, c.expire)
	}
	c.id++
	req.ID = c.id
	b, err := runtime.AppendFrameWith(c.wbuf[:0], func(dst []byte) ([]byte, error) { return kvsm.AppendRequest(dst, &req) })
	c.wbuf = b
	if err != nil {
		return kvsm.Response{}, fmt.Errorf("kvclient: %w", err)
	}
	p, err := c.exchange(b)
	if err != nil {
		return kvsm.Response{}, c.failed(ctx, err)
	}
	resp, err := kvsm.DecodeResponse(p) // copies what it keeps
	if err != nil {
		return kvsm.Response{}, fmt.Errorf("kvclient: bad response from server: %w", err)
	}
	if resp.ID != req.ID {
		return kvsm.Response{}, fmt.Errorf("kvclient: response to request %d while waiting for %d", resp.ID, req.ID)
	}
	return resp, nil
}

// failed reports a connection error, as the context's error once the
// context has ended (that is why the deadline fired).
func (c *serialConn) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrClosed, err)
}

// Get implements kv.
func (c *serialConn) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return getVia(ctx, c.do, key)
}

// Set implements kv.
func (c *serialConn) Set(ctx context.Context, key string, value []byte) error {
	return setVia(ctx, c.do, key, value)
}

// Close implements kv.
func (c *serialConn) Close() error {
	c.stop()
	return c.conn.Close()
}
