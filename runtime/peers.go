package runtime

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// TCPPeersConfig configures a TCPPeers transport.
type TCPPeersConfig struct {
	// ID is this node's id, announced to the peers it dials.
	ID sim.NodeID
	// Listen is the address peers connect to, e.g. ":15000".
	Listen string
	// Peers maps the other nodes' ids to their Listen addresses. An entry
	// for ID itself is ignored.
	Peers map[sim.NodeID]string
	// Codec encodes and decodes one message per frame. Required.
	Codec sim.Codec
	// Logger receives connection logs (debug level); nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxFrame limits inbound frames; 0 means DefaultMaxFrame.
	MaxFrame int
	// SendQueue is how many batches of frames may wait for one peer (while
	// it is unreachable or slow) before newer ones are dropped; 0 means 1024.
	SendQueue int
}

// TCPPeers is a Transport between the servers of a cluster, over TCP with
// the frames of WriteFrame. Each node dials every peer and keeps one
// outbound connection to each, redialling with backoff when it breaks; what
// it receives arrives on the connections its peers dialled. A dialled
// connection starts with a hello frame: "FLPEER" and the dialler's id
// (int32, big-endian). An inbound connection whose hello is missing or names
// an unknown node is closed.
//
// Delivery is best effort, as the machines expect: while a peer is
// unreachable its frames queue up to SendQueue batches and the rest are
// dropped; frames queued on a connection that breaks are lost.
type TCPPeers struct {
	cfg   TCPPeersConfig
	ln    net.Listener
	log   *slog.Logger
	peers map[sim.NodeID]*peerOut
	dirty []*peerOut // touched only by whoever steps the host's machine
	// deliverAll, if set (before Run), steps the host's machine on the
	// reading goroutine (see inlineDeliverer).
	deliverAll func(sim.NodeID, []sim.Message) bool

	mu    sync.Mutex
	conns map[net.Conn]struct{} // inbound, for shutdown
}

type peerOut struct {
	id      sim.NodeID
	addr    string
	queue   chan []byte
	pending []byte // touched only by whoever steps the host's machine
}

const helloMagic = "FLPEER"

// ListenTCPPeers starts listening for peers; it dials them once Run runs.
func ListenTCPPeers(cfg TCPPeersConfig) (*TCPPeers, error) {
	if cfg.Codec == nil {
		return nil, errors.New("runtime: TCPPeersConfig.Codec is nil")
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.SendQueue <= 0 {
		cfg.SendQueue = 1024
	}
	p := &TCPPeers{cfg: cfg, log: cfg.Logger, peers: make(map[sim.NodeID]*peerOut), conns: make(map[net.Conn]struct{})}
	if p.log == nil {
		p.log = slog.Default()
	}
	for id, a := range cfg.Peers {
		if id == cfg.ID {
			continue
		}
		p.peers[id] = &peerOut{id: id, addr: a, queue: make(chan []byte, cfg.SendQueue)}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	p.ln = ln
	return p, nil
}

// AddPeer adds (or readdresses) peer id; call it before Run. It lets
// nodes that listen on ephemeral ports learn each other's addresses.
func (p *TCPPeers) AddPeer(id sim.NodeID, addr string) {
	if id == p.cfg.ID {
		return
	}
	if po, ok := p.peers[id]; ok {
		po.addr = addr
		return
	}
	p.peers[id] = &peerOut{id: id, addr: addr, queue: make(chan []byte, p.cfg.SendQueue)}
}

// Addr is the listening address.
func (p *TCPPeers) Addr() *net.TCPAddr { return p.ln.Addr().(*net.TCPAddr) }

// Close stops listening. Run does this itself when its context ends.
func (p *TCPPeers) Close() error { return p.ln.Close() }

// Owns reports whether id is one of the peers (see Combine).
func (p *TCPPeers) Owns(id sim.NodeID) bool { _, ok := p.peers[id]; return ok }

// Run implements Transport.
func (p *TCPPeers) Run(ctx context.Context, deliver func(sim.NodeID, sim.Message) bool) error {
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() {
		p.ln.Close()
		p.mu.Lock()
		for c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	defer func() {
		stop()
		wg.Wait()
	}()
	for _, po := range p.peers {
		wg.Add(1)
		go func() { defer wg.Done(); p.dialLoop(ctx, po) }()
	}
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if retry, err := acceptFailed(ctx, err); !retry {
				return err
			}
			continue
		}
		p.mu.Lock()
		if ctx.Err() != nil {
			p.mu.Unlock()
			c.Close()
			return nil
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.readPeer(c, deliver)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
			c.Close()
			p.log.Debug("peer connection closed", "node", p.cfg.ID, "remote", c.RemoteAddr(), "err", err)
		}()
	}
}

func (p *TCPPeers) readPeer(c net.Conn, deliver func(sim.NodeID, sim.Message) bool) error {
	r := bufio.NewReaderSize(c, 64<<10)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	hello, err := ReadFrame(r, nil, 64)
	if err != nil {
		return err
	}
	c.SetReadDeadline(time.Time{})
	if len(hello) != len(helloMagic)+4 || string(hello[:len(helloMagic)]) != helloMagic {
		return errors.New("bad hello")
	}
	from := sim.NodeID(int32(binary.BigEndian.Uint32(hello[len(helloMagic):])))
	if _, ok := p.peers[from]; !ok {
		return fmt.Errorf("hello from unknown node %d", from)
	}
	var msgs []sim.Message
	for {
		// Read every frame that has arrived (at least one), then hand them
		// over together: stepped inline they are one batch, one sync.
		for len(msgs) == 0 || frameBuffered(r) {
			b, err := ReadFrame(r, nil, p.cfg.MaxFrame)
			if err != nil {
				if len(msgs) > 0 { // what came before the failure
					p.deliverMsgs(from, msgs, deliver)
				}
				return err
			}
			msg, err := p.cfg.Codec.Decode(b)
			if err != nil {
				p.log.Debug("undecodable frame from peer dropped", "node", p.cfg.ID, "from", from, "err", err)
				continue // the stream is still in step; only this message is bad
			}
			msgs = append(msgs, msg)
		}
		if !p.deliverMsgs(from, msgs, deliver) {
			return nil
		}
		clear(msgs)
		msgs = msgs[:0]
	}
}

// deliverMsgs hands msgs to the host: inline if the host allows it, else
// one by one.
func (p *TCPPeers) deliverMsgs(from sim.NodeID, msgs []sim.Message, deliver func(sim.NodeID, sim.Message) bool) bool {
	if p.deliverAll != nil {
		return p.deliverAll(from, msgs)
	}
	return deliverEach(deliver, from, msgs)
}

// deliverEach delivers msgs one by one, stopping when deliver refuses one;
// it reports whether all were delivered.
func deliverEach(deliver func(sim.NodeID, sim.Message) bool, from sim.NodeID, msgs []sim.Message) bool {
	for _, m := range msgs {
		if !deliver(from, m) {
			return false
		}
	}
	return true
}

// frameBuffered reports whether r holds a whole frame already, so reading
// it will not block.
func frameBuffered(r *bufio.Reader) bool {
	if r.Buffered() < FrameHeaderSize {
		return false
	}
	h, _ := r.Peek(FrameHeaderSize)
	return uint64(r.Buffered()) >= FrameHeaderSize+uint64(binary.BigEndian.Uint32(h))
}

// deliverInline implements inlineDeliverer: a peer's reader steps the
// machine itself when nobody else is.
func (p *TCPPeers) deliverInline(deliverAll func(sim.NodeID, []sim.Message) bool) {
	p.deliverAll = deliverAll
}

// dialLoop keeps a connection to one peer and writes its queue to it.
func (p *TCPPeers) dialLoop(ctx context.Context, po *peerOut) {
	backoff := 20 * time.Millisecond
	var d net.Dialer
	hello := binary.BigEndian.AppendUint32([]byte(helloMagic), uint32(int32(p.cfg.ID)))
	for ctx.Err() == nil {
		c, err := d.DialContext(ctx, "tcp", po.addr)
		if err != nil {
			p.log.Debug("dial to peer failed; retrying", "node", p.cfg.ID, "peer", po.id, "addr", po.addr, "backoff", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 20 * time.Millisecond
		p.log.Debug("connected to peer", "node", p.cfg.ID, "peer", po.id, "addr", po.addr)
		err = p.writePeer(ctx, c, po, hello)
		c.Close()
		p.log.Debug("peer connection lost", "node", p.cfg.ID, "peer", po.id, "err", err)
	}
}

func (p *TCPPeers) writePeer(ctx context.Context, c net.Conn, po *peerOut, hello []byte) error {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := WriteFrame(c, hello); err != nil {
		return err
	}
	// Notice a peer that goes away even while there is nothing to send:
	// it never writes on this connection, so a read returns only on close.
	closed := make(chan struct{})
	go func() {
		var b [1]byte
		c.Read(b[:])
		close(closed)
	}()
	var bufs net.Buffers
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return errors.New("closed by peer")
		case b := <-po.queue:
			bufs = append(bufs[:0], b)
		more:
			for len(bufs) < 64 {
				select {
				case b := <-po.queue:
					bufs = append(bufs, b)
				default:
					break more
				}
			}
			if _, err := bufs.WriteTo(c); err != nil {
				return err
			}
		}
	}
}

// Send implements Transport.
func (p *TCPPeers) Send(to sim.NodeID, msg sim.Message) error {
	po, ok := p.peers[to]
	if !ok {
		return fmt.Errorf("runtime: node %d is not a peer", to)
	}
	start := len(po.pending)
	var err error
	po.pending, err = AppendFrameWith(po.pending, func(dst []byte) ([]byte, error) { return p.cfg.Codec.Encode(dst, msg) })
	if err != nil {
		return fmt.Errorf("runtime: encode for node %d: %w", to, err)
	}
	if start == 0 {
		p.dirty = append(p.dirty, po)
	}
	return nil
}

// Flush implements Flusher.
func (p *TCPPeers) Flush() {
	for i, po := range p.dirty {
		select {
		case po.queue <- po.pending:
		default:
			p.log.Debug("peer send queue full; batch dropped", "node", p.cfg.ID, "peer", po.id)
		}
		po.pending = nil
		p.dirty[i] = nil
	}
	p.dirty = p.dirty[:0]
}

// Owner is implemented by transports that can say which node ids they
// reach; Combine routes sends by it.
type Owner interface {
	Owns(id sim.NodeID) bool
}

// Owns reports whether id is a connected client (see Combine).
func (s *TCPServer) Owns(id sim.NodeID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.conns[id]
	return ok
}

// Owns reports whether id has an address (see Combine).
func (u *UDP) Owns(id sim.NodeID) bool { _, ok := u.peers[id]; return ok }

// Combine joins transports into one, e.g. TCPPeers for the cluster and
// TCPServer for clients. Run runs them all; Send goes to the first
// transport that Owns the destination; Flush flushes them all. Every
// transport must implement Owner.
func Combine(ts ...Transport) Transport { return combined(ts) }

type combined []Transport

func (cs combined) Run(ctx context.Context, deliver func(sim.NodeID, sim.Message) bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(cs))
	for _, t := range cs {
		go func() { errs <- t.Run(ctx, deliver) }()
	}
	var first error
	for range cs {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel() // one failed: stop the others
		}
	}
	return first
}

// deliverInline implements inlineDeliverer for the parts that do.
func (cs combined) deliverInline(deliverAll func(sim.NodeID, []sim.Message) bool) {
	for _, t := range cs {
		if i, ok := t.(inlineDeliverer); ok {
			i.deliverInline(deliverAll)
		}
	}
}

func (cs combined) Send(to sim.NodeID, msg sim.Message) error {
	for _, t := range cs {
		if o, ok := t.(Owner); ok && o.Owns(to) {
			return t.Send(to, msg)
		}
	}
	return fmt.Errorf("runtime: no transport reaches node %d", to)
}

func (cs combined) Flush() {
	for _, t := range cs {
		if f, ok := t.(Flusher); ok {
			f.Flush()
		}
	}
}
