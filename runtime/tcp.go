package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"github.com/flotilla-sim/flotilla/sim"
)

// TCPConfig configures a TCP server transport.
type TCPConfig struct {
	// Listen is the address to listen on, e.g. ":12345" or "127.0.0.1:0".
	Listen string
	// Codec encodes and decodes one message per frame. Required.
	Codec sim.Codec
	// Logger receives connection logs (debug level); nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxFrame limits inbound frames; 0 means DefaultMaxFrame.
	MaxFrame int
	// FirstClientID is the node id given to the first accepted connection;
	// later connections get the following ids. 0 means 1<<20, clear of any
	// server ids.
	FirstClientID sim.NodeID
	// SendQueue is how many batches of outbound frames may wait for a slow
	// connection before it is dropped; 0 means 1024.
	SendQueue int
	// DecodeInPlace says that Codec.Decode copies whatever it keeps of its
	// input (kvsm.Codec does), so frames are decoded straight from the
	// connection's read buffer instead of from a copy of each.
	DecodeInPlace bool
}

// TCPServer is a Transport for a server whose clients connect over TCP.
// Every accepted connection is a client node with its own id; its frames
// arrive from that id and the machine answers by sending to it. Frames use
// the format of WriteFrame.
//
// Sends to a connection are encoded at once and buffered; Flush writes each
// connection's buffer, so all replies of a batch to one client leave in one
// write. Flush never blocks on a connection: it writes straight to the
// socket (non-blocking) when the connection has nothing queued and the
// socket takes it all, and otherwise queues the rest for the connection's
// writer goroutine. A frame that does not decode, or is over the limit,
// closes that connection only; so does a client that does not read its
// replies fast enough to keep its send queue below SendQueue batches.
// Sends to a closed or unknown connection are dropped.
type TCPServer struct {
	ln      net.Listener
	codec   sim.Codec
	log     *slog.Logger
	max     int
	queue   int
	inPlace bool

	mu    sync.Mutex
	conns map[sim.NodeID]*tcpConn
	next  sim.NodeID

	dirty []*tcpConn // connections with buffered frames; used while the machine is stepped

	// deliverAll, if set (before Run), delivers all the messages of one
	// read together, possibly stepping the machine on the reader's
	// goroutine (see inlineDeliverer).
	deliverAll func(sim.NodeID, []sim.Message) bool
}

type tcpConn struct {
	id      sim.NodeID
	c       net.Conn
	raw     syscall.RawConn // nil: writes go through the writer goroutine
	pending []byte          // used while the machine is stepped

	wmu     sync.Mutex
	written *sync.Cond    // on wmu: signalled when busy clears or the conn is dropped
	closed  bool          // dropped (under wmu)
	busy    bool          // the writer goroutine owns the socket: Flush queues
	queued  []byte        // frames for the writer goroutine
	batches int           // Flushes whose frames wait in queued
	wake    chan struct{} // tells the writer goroutine that busy was set

	once sync.Once
	done chan struct{}
}

// close ends the connection: both directions are shut down, which wakes
// its reader and writer goroutines; the reader closes the socket when it
// exits. Closing it here instead would wait for the reader to leave its
// read, and the caller may be that reader, delivering a message.
func (c *tcpConn) close() {
	c.once.Do(func() {
		c.wmu.Lock()
		c.closed = true
		c.written.Broadcast()
		c.wmu.Unlock()
		close(c.done)
		if tc, ok := c.c.(*net.TCPConn); ok {
			tc.CloseRead()
			tc.CloseWrite()
			return
		}
		c.c.Close()
	})
}

// ListenTCP starts listening; connections are accepted once Run runs.
func ListenTCP(cfg TCPConfig) (*TCPServer, error) {
	if cfg.Codec == nil {
		return nil, errors.New("runtime: TCPConfig.Codec is nil")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	s := &TCPServer{ln: ln, codec: cfg.Codec, log: cfg.Logger, max: cfg.MaxFrame, queue: cfg.SendQueue, inPlace: cfg.DecodeInPlace,
		conns: make(map[sim.NodeID]*tcpConn), next: cfg.FirstClientID}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.max <= 0 {
		s.max = DefaultMaxFrame
	}
	if s.queue <= 0 {
		s.queue = 1024
	}
	if s.next == 0 {
		s.next = 1 << 20
	}
	return s, nil
}

// Addr is the listening address (useful with an ephemeral port).
func (s *TCPServer) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

// Close stops listening. Run does this itself when its context ends.
func (s *TCPServer) Close() error { return s.ln.Close() }

// Run implements Transport: it accepts connections until ctx is done, then
// closes the listener and every connection and waits for their goroutines.
func (s *TCPServer) Run(ctx context.Context, deliver func(sim.NodeID, sim.Message) bool) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		s.ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.close()
		}
		s.mu.Unlock()
	})
	defer func() {
		stop()
		wg.Wait()
	}()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if retry, err := acceptFailed(ctx, err); !retry {
				return err
			}
			continue
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		c := &tcpConn{id: s.next, c: nc, raw: rawConnOf(nc), wake: make(chan struct{}, 1), done: make(chan struct{})}
		c.written = sync.NewCond(&c.wmu)
		s.next++
		s.conns[c.id] = c
		s.mu.Unlock()
		s.log.Debug("client connected", "node", c.id, "remote", nc.RemoteAddr())
		wg.Add(2)
		go func() { defer wg.Done(); s.read(c, deliver) }()
		go func() { defer wg.Done(); s.write(c) }()
	}
}

func (s *TCPServer) drop(c *tcpConn, why string, err error) {
	c.close()
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
	s.log.Debug("client connection closed", "node", c.id, "why", why, "err", err)
}

// testHookHalfClose, if set, runs when a client's reader has seen the end
// of the client's stream and is about to wait for the machine: tests use it
// to know the half close happened while the machine was busy.
var testHookHalfClose func()

func (s *TCPServer) read(c *tcpConn, deliver func(sim.NodeID, sim.Message) bool) {
	why, err := s.readConn(c, deliver)
	if why == "read" && errors.Is(err, io.EOF) && s.deliverAll != nil {
		// The client closed its side after its last request (a half
		// close): requests queued while the machine was busy still get
		// their replies before this side closes.
		if testHookHalfClose != nil {
			testHookHalfClose()
		}
		s.deliverAll(c.id, nil)
		c.waitWritten()
	}
	s.drop(c, why, err)
	c.c.Close()
}

// waitWritten waits until the writer goroutine has written everything
// queued for it, or the connection is dropped.
func (c *tcpConn) waitWritten() {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for c.busy && !c.closed {
		c.written.Wait()
	}
}

// readBuffered is readConn through a bufio.Reader, for connections
// without raw access.
func (s *TCPServer) readBuffered(c *tcpConn, deliver func(sim.NodeID, sim.Message) bool) (why string, err error) {
	r := bufio.NewReaderSize(c.c, 64<<10)
	var buf []byte
	for {
		p, err := ReadFrame(r, buf, s.max)
		if err != nil {
			return "read", err
		}
		if s.inPlace && cap(p) <= 64<<10 {
			buf = p[:0]
		}
		msg, err := s.codec.Decode(p)
		if err != nil {
			return "undecodable frame", err
		}
		if !deliver(c.id, msg) {
			return "shutdown", nil
		}
	}
}

// write is the connection's writer goroutine: it writes what Flush could
// not, blocking as long as the client takes to read it, until the queue is
// empty and Flush may write directly again.
func (s *TCPServer) write(c *tcpConn) {
	var buf []byte
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		for {
			c.wmu.Lock()
			if len(c.queued) == 0 {
				c.busy = false
				c.written.Broadcast()
				c.wmu.Unlock()
				break
			}
			buf, c.queued = c.queued, buf[:0]
			c.batches = 0
			c.wmu.Unlock()
			if _, err := c.c.Write(buf); err != nil {
				s.drop(c, "write", err)
				return
			}
		}
	}
}

// Send implements Transport.
func (s *TCPServer) Send(to sim.NodeID, msg sim.Message) error {
	s.mu.Lock()
	c := s.conns[to]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("runtime: no connection for node %d", to)
	}
	start := len(c.pending)
	var err error
	c.pending, err = AppendFrameWith(c.pending, func(dst []byte) ([]byte, error) { return s.codec.Encode(dst, msg) })
	if err != nil {
		return fmt.Errorf("runtime: encode for node %d: %w", to, err)
	}
	if n := len(c.pending) - start - FrameHeaderSize; n > s.max {
		c.pending = c.pending[:start]
		return fmt.Errorf("runtime: %w: %d bytes for node %d", ErrFrameTooLarge, n, to)
	}
	if start == 0 {
		s.dirty = append(s.dirty, c)
	}
	return nil
}

// Flush implements Flusher: it writes every connection's buffered frames,
// or queues them for the connection's writer goroutine.
func (s *TCPServer) Flush() {
	for i, c := range s.dirty {
		s.flush(c)
		s.dirty[i] = nil
	}
	s.dirty = s.dirty[:0]
}

// keepPending is the largest send buffer a connection keeps for reuse.
const keepPending = 64 << 10

func (s *TCPServer) flush(c *tcpConn) {
	b := c.pending
	if cap(b) <= keepPending {
		c.pending = b[:0] // written or copied below before the next Send
	} else {
		c.pending = nil
	}
	if why, err := c.queueOrWrite(b, s.queue); why != "" {
		s.drop(c, why, err)
	}
}

// queueOrWrite writes b to the socket now if the writer goroutine is idle
// and the socket takes it without blocking; whatever is left is copied to
// the writer goroutine's queue. It returns why the connection must be
// dropped, if it must.
func (c *tcpConn) queueOrWrite(b []byte, limit int) (why string, err error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.busy {
		if c.batches >= limit {
			return "send queue full", nil
		}
		c.queued = append(c.queued, b...)
		c.batches++
		return "", nil
	}
	n, err := writeNonblocking(c.raw, b)
	if err != nil {
		return "write", err
	}
	if n == len(b) {
		return "", nil
	}
	c.busy = true
	c.queued = append(c.queued, b[n:]...)
	c.batches = 1
	c.wake <- struct{}{} // never blocks: only the change to busy sends
	return "", nil
}

// acceptFailed sorts an Accept error for a serving loop: a timeout is
// retried; a closed listener (or a cancelled ctx) ends the loop cleanly;
// anything else ends it with the error.
func acceptFailed(ctx context.Context, err error) (retry bool, _ error) {
	if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
		return false, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, nil
	}
	return false, fmt.Errorf("runtime: accept: %w", err)
}

// deliverInline makes TCPServer an inlineDeliverer: its readers hold no
// lock while they deliver, and Send and Flush never block.
func (s *TCPServer) deliverInline(deliverAll func(sim.NodeID, []sim.Message) bool) {
	s.deliverAll = deliverAll
}
