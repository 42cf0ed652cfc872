// Package kvclient is the Go client of the key-value server (cmd/kvserver):
// context-aware Get, Set and Delete over one TCP connection, using the
// runtime's frames and the kvsm wire codec.
//
// Client talks to one server (the standalone server). Session talks to a
// replicated cluster (kvserver -cluster): it finds the leader, retries,
// and makes writes exactly-once with a client id and sequence numbers, the
// protocol of the kvsm.Client machine. Bench load-tests either.
//
// A Client is safe for concurrent use. Requests are pipelined: each carries
// an id, any number may be in flight, and responses are matched to callers
// by id. A writer goroutine sends the frames queued by concurrent callers
// together. Cancelling a call's context abandons that call only; the
// connection stays usable.
package kvclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	goruntime "runtime"
	"sync"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/runtime"
)

// ErrClosed is returned for requests on a client whose connection has been
// closed or has failed.
var ErrClosed = errors.New("kvclient: connection closed")

// ServerError is a request the server refused.
type ServerError struct {
	Status kvsm.Status
	Msg    string
}

func (e *ServerError) Error() string {
	if e.Msg == "" {
		return "kvclient: server: " + e.Status.String()
	}
	return "kvclient: server: " + e.Status.String() + ": " + e.Msg
}

// Client is a connection to a KV server.
type Client struct {
	conn net.Conn

	wmu  sync.Mutex    // guards wbuf
	wbuf []byte        // frames waiting for the writer goroutine
	kick chan struct{} // wakes the writer goroutine

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan any // kvsm.Response or cluster.Status
	err     error               // set once the connection has failed
	done    chan struct{}
}

// dialTCP connects to addr. Go's TCP connections send without delay
// (TCP_NODELAY) by default, which a request-response protocol wants.
func dialTCP(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kvclient: %w", err)
	}
	return conn, nil
}

// Dial connects to the server at addr (host:port).
func Dial(ctx context.Context, addr string) (*Client, error) {
	conn, err := dialTCP(ctx, addr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, pending: make(map[uint64]chan any), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	go c.readLoop()
	go c.writeLoop()
	return c, nil
}

// Close closes the connection; requests in flight fail with ErrClosed.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	<-c.done
	return nil
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
		c.conn.Close()
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
	}
	c.mu.Unlock()
}

func (c *Client) readLoop() {
	defer close(c.done)
	r := bufio.NewReaderSize(c.conn, 64<<10)
	for {
		p, err := runtime.ReadFrame(r, nil, 0)
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
			return
		}
		var (
			msg any
			id  uint64
		)
		if len(p) > 0 && p[0] == statusTag {
			m, err := cluster.Codec{}.Decode(p)
			st, ok := m.(cluster.Status)
			if err != nil || !ok {
				c.fail(fmt.Errorf("kvclient: bad status from server: %v", err))
				return
			}
			msg, id = st, st.ID
		} else {
			resp, err := kvsm.DecodeResponse(p)
			if err != nil {
				c.fail(fmt.Errorf("kvclient: bad response from server: %w", err))
				return
			}
			msg, id = resp, resp.ID
		}
		c.mu.Lock()
		ch, ok := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ok {
			ch <- msg // buffered; the caller may have given up
		}
	}
}

const statusTag = 'T' // first byte of an encoded cluster.Status

// do sends req and waits for its response.
func (c *Client) do(ctx context.Context, req kvsm.Request) (kvsm.Response, error) {
	m, err := c.roundTrip(ctx, func(dst []byte, id uint64) ([]byte, error) {
		req.ID = id
		return kvsm.AppendRequest(dst, &req)
	})
	if err != nil {
		return kvsm.Response{}, err
	}
	resp, ok := m.(kvsm.Response)
	if !ok {
		return kvsm.Response{}, fmt.Errorf("kvclient: server answered a request with %T", m)
	}
	return resp, nil
}

// Status asks the server (a clustered kvserver) for its Raft status.
func (c *Client) Status(ctx context.Context) (cluster.Status, error) {
	m, err := c.roundTrip(ctx, func(dst []byte, id uint64) ([]byte, error) {
		return cluster.Codec{}.Encode(dst, cluster.StatusRequest{ID: id})
	})
	if err != nil {
		return cluster.Status{}, err
	}
	st, ok := m.(cluster.Status)
	if !ok {
		return cluster.Status{}, fmt.Errorf("kvclient: server answered a status request with %T (not a clustered server?)", m)
	}
	return st, nil
}

// roundTrip sends the message enc appends (given its id) and waits for
// the answer with that id.
func (c *Client) roundTrip(ctx context.Context, enc func(dst []byte, id uint64) ([]byte, error)) (any, error) {
	ch := make(chan any, 1)
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()

	if err := c.write(func(dst []byte) ([]byte, error) { return enc(dst, id) }); err != nil {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			err := c.err
			c.mu.Unlock()
			return nil, err
		}
		return m, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// write queues a frame for the writer goroutine, which sends whatever
// has queued up since its last write in one syscall: pipelined requests
// from concurrent callers share writes.
func (c *Client) write(enc func(dst []byte) ([]byte, error)) error {
	c.wmu.Lock()
	b, err := runtime.AppendFrameWith(c.wbuf, enc)
	c.wbuf = b
	c.wmu.Unlock()
	if err != nil {
		return fmt.Errorf("kvclient: %w", err)
	}
	select {
	case c.kick <- struct{}{}:
	default: // the writer is already due to run
	}
	return nil
}

func (c *Client) writeLoop() {
	var spare []byte
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		// Let callers that are ready to run queue their requests too, so
		// that one write carries them all.
		goruntime.Gosched()
		c.wmu.Lock()
		buf := c.wbuf
		c.wbuf = spare[:0]
		c.wmu.Unlock()
		if len(buf) > 0 {
			if _, err := c.conn.Write(buf); err != nil {
				c.fail(fmt.Errorf("%w: %w", ErrClosed, err))
				return
			}
		}
		spare = buf // double buffering: callers fill the other one
	}
}

func check(resp kvsm.Response) error {
	if resp.Status == kvsm.StatusOK {
		return nil
	}
	return &ServerError{Status: resp.Status, Msg: string(resp.Value)}
}

// Get returns the value of key; ok is false if the key is not set.
func (c *Client) Get(ctx context.Context, key string) (value []byte, ok bool, err error) {
	return getVia(ctx, c.do, key)
}

// Set sets key to value. When it returns nil the write is durable on a
// server run with -data.
func (c *Client) Set(ctx context.Context, key string, value []byte) error {
	return setVia(ctx, c.do, key, value)
}

// roundTrip sends a request and waits for its response.
type roundTrip func(context.Context, kvsm.Request) (kvsm.Response, error)

// getVia is a get over do: the value, or ok false for a missing key.
func getVia(ctx context.Context, do roundTrip, key string) ([]byte, bool, error) {
	resp, err := do(ctx, kvsm.Request{Op: kvsm.OpGet, Key: []byte(key)})
	if err != nil {
		return nil, false, err
	}
	if resp.Status == kvsm.StatusNotFound {
		return nil, false, nil
	}
	if err := check(resp); err != nil {
		return nil, false, err
	}
	return resp.Value, true, nil
}

// setVia is a set over do.
func setVia(ctx context.Context, do roundTrip, key string, value []byte) error {
	resp, err := do(ctx, kvsm.Request{Op: kvsm.OpSet, Key: []byte(key), Value: value})
	if err != nil {
		return err
	}
	return check(resp)
}

// Delete removes key; deleting a missing key succeeds.
func (c *Client) Delete(ctx context.Context, key string) error {
	resp, err := c.do(ctx, kvsm.Request{Op: kvsm.OpDelete, Key: []byte(key)})
	if err != nil {
		return err
	}
	return check(resp)
}
