package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/flotilla-sim/flotilla/sim"
)

// UDPConfig configures a UDP transport.
type UDPConfig struct {
	// Listen is the local address to bind, e.g. "127.0.0.1:9000". Empty
	// binds an ephemeral port on all interfaces, enough to send and to
	// receive replies. Sends leave from this same socket, so peers see this
	// address as the source.
	Listen string
	// Peers maps node ids to their UDP addresses. Sends go to these
	// addresses; a datagram whose source is one of them arrives from that
	// node, any other datagram arrives from sim.External.
	Peers map[sim.NodeID]string
	// Codec encodes and decodes one message per datagram. Required.
	Codec sim.Codec
	// Logger receives debug logs about dropped datagrams; nil means
	// slog.Default().
	Logger *slog.Logger
}

// UDP is a datagram Transport: each message is one datagram, encoded with
// the configured codec. Datagrams that do not decode are dropped (logged at
// debug level). UDP is unreliable and unordered, which the machines it
// carries must already tolerate.
type UDP struct {
	conn  *net.UDPConn
	codec sim.Codec
	log   *slog.Logger
	peers map[sim.NodeID]netip.AddrPort
	ids   map[netip.AddrPort]sim.NodeID
	buf   []byte
}

// ListenUDP resolves the peers and binds the socket.
func ListenUDP(cfg UDPConfig) (*UDP, error) {
	if cfg.Codec == nil {
		return nil, errors.New("runtime: UDPConfig.Codec is nil")
	}
	u := &UDP{
		codec: cfg.Codec,
		log:   cfg.Logger,
		peers: make(map[sim.NodeID]netip.AddrPort, len(cfg.Peers)),
		ids:   make(map[netip.AddrPort]sim.NodeID, len(cfg.Peers)),
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	for id, a := range cfg.Peers {
		ua, err := net.ResolveUDPAddr("udp", a)
		if err != nil {
			return nil, fmt.Errorf("runtime: address of node %d: %w", id, err)
		}
		ap := normalize(ua.AddrPort())
		u.peers[id] = ap
		u.ids[ap] = id
	}
	listen := cfg.Listen
	if listen == "" {
		listen = ":0"
	}
	la, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("runtime: listen address: %w", err)
	}
	u.conn, err = net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("runtime: %w", err)
	}
	return u, nil
}

func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// LocalAddr is the bound address (useful with an ephemeral port).
func (u *UDP) LocalAddr() *net.UDPAddr { return u.conn.LocalAddr().(*net.UDPAddr) }

// Close releases the socket. Run does this itself when its context ends.
func (u *UDP) Close() error { return u.conn.Close() }

// Run implements Transport.
func (u *UDP) Run(ctx context.Context, deliver func(sim.NodeID, sim.Message) bool) error {
	stop := context.AfterFunc(ctx, func() { u.conn.Close() })
	defer stop()
	buf := make([]byte, 65536)
	for {
		n, src, err := u.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			u.log.Debug("udp read", "err", err)
			continue
		}
		// A fresh copy: a codec may alias its input in the message.
		msg, err := u.codec.Decode(append([]byte(nil), buf[:n]...))
		if err != nil {
			u.log.Debug("udp: undecodable datagram dropped", "from", src, "len", n, "err", err)
			continue
		}
		from, ok := u.ids[normalize(src)]
		if !ok {
			from = sim.External
		}
		if !deliver(from, msg) {
			u.conn.Close()
			return nil
		}
	}
}

// Send implements Transport: it encodes msg and writes one datagram to the
// address of node to.
func (u *UDP) Send(to sim.NodeID, msg sim.Message) error {
	ap, ok := u.peers[to]
	if !ok {
		return fmt.Errorf("runtime: no UDP address for node %d", to)
	}
	var err error
	u.buf, err = u.codec.Encode(u.buf[:0], msg)
	if err != nil {
		return fmt.Errorf("runtime: encode for node %d: %w", to, err)
	}
	if _, err := u.conn.WriteToUDPAddrPort(u.buf, ap); err != nil {
		return fmt.Errorf("runtime: udp send to node %d: %w", to, err)
	}
	return nil
}
