package kvclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// MachineClient runs the kvsm.Client machine — the client the simulator
// tests — on the runtime host, over TCP to the servers' client addresses.
// Do submits a call and waits for the machine to finish it. It is an
// alternative to Session that shares the simulated client's code
// (leader search, retries, sessions) line for line; Session is the same
// protocol written for Go callers, and what bench uses.
type MachineClient struct {
	calls chan kvsm.Call
	mu    sync.Mutex
	next  uint64
	wait  map[uint64]chan kvsm.Done
	done  chan struct{}
	err   error
}

// StartMachine starts the client machine; it runs until ctx ends. The
// machine ends a call with an unknown outcome once it has retried it for
// giveUp (0: it never gives up, and a call only ends when it is answered).
func StartMachine(ctx context.Context, servers map[sim.NodeID]string, giveUp time.Duration, log *slog.Logger) *MachineClient {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ids := make([]sim.NodeID, 0, len(servers))
	for id := range servers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	m := &MachineClient{calls: make(chan kvsm.Call), wait: map[uint64]chan kvsm.Done{}, done: make(chan struct{})}
	tr := &dialTransport{servers: servers, calls: m.calls, log: log, out: map[sim.NodeID]chan []byte{}}
	go func() {
		defer close(m.done)
		err := runtime.Run(ctx, runtime.Config{
			ID:        1 << 30, // a client: clear of server ids
			Machine:   kvsm.NewClient(kvsm.ClientConfig{Servers: ids, GiveUpAfter: giveUp}),
			Transport: tr,
			Logger:    log,
			OnObserve: func(o any) {
				d, ok := o.(kvsm.Done)
				if !ok {
					return
				}
				m.mu.Lock()
				ch := m.wait[d.ID]
				delete(m.wait, d.ID)
				m.mu.Unlock()
				if ch != nil {
					ch <- d
				}
			},
		})
		m.mu.Lock()
		m.err = err
		m.mu.Unlock()
	}()
	return m
}

// Do runs one call through the machine and returns its Done observation.
// If ctx ends first, Do returns ctx's error (a write may still complete).
func (m *MachineClient) Do(ctx context.Context, op kvsm.Op, key string, value []byte) (kvsm.Done, error) {
	ch := make(chan kvsm.Done, 1)
	m.mu.Lock()
	m.next++
	id := m.next
	m.wait[id] = ch
	m.mu.Unlock()
	select {
	case m.calls <- kvsm.Call{ID: id, Op: op, Key: []byte(key), Value: value}:
	case <-ctx.Done():
		return kvsm.Done{}, ctx.Err()
	case <-m.done:
		return kvsm.Done{}, fmt.Errorf("kvclient: client machine stopped: %v", m.err)
	}
	select {
	case d := <-ch:
		return d, nil
	case <-ctx.Done():
		m.mu.Lock()
		delete(m.wait, id)
		m.mu.Unlock()
		return kvsm.Done{}, ctx.Err()
	case <-m.done:
		return kvsm.Done{}, fmt.Errorf("kvclient: client machine stopped: %v", m.err)
	}
}

// Wait waits for the machine to stop (after the context given to
// StartMachine ends).
func (m *MachineClient) Wait() error {
	<-m.done
	return m.err
}

// dialTransport connects the client machine to the servers: one
// connection per server, dialled on the first send and redialled after a
// failure; what a connection receives comes from that server. User calls
// arrive from sim.External.
type dialTransport struct {
	servers map[sim.NodeID]string
	calls   <-chan kvsm.Call
	log     *slog.Logger

	ctx     context.Context
	deliver func(sim.NodeID, sim.Message) bool
	mu      sync.Mutex
	out     map[sim.NodeID]chan []byte
	wg      sync.WaitGroup
}

func (t *dialTransport) Run(ctx context.Context, deliver func(sim.NodeID, sim.Message) bool) error {
	t.mu.Lock()
	t.ctx, t.deliver = ctx, deliver
	t.mu.Unlock()
	defer t.wg.Wait()
	for {
		select {
		case c := <-t.calls:
			if !deliver(sim.External, c) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (t *dialTransport) Send(to sim.NodeID, msg sim.Message) error {
	addr, ok := t.servers[to]
	if !ok {
		return fmt.Errorf("kvclient: no address for node %d", to)
	}
	b, err := kvsm.Codec{}.Encode(nil, msg)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil {
		return errors.New("kvclient: transport not running")
	}
	q, ok := t.out[to]
	if !ok {
		q = make(chan []byte, 64)
		t.out[to] = q
		t.wg.Add(1)
		go t.conn(to, addr, q)
	}
	select {
	case q <- b:
		return nil
	default:
		return errors.New("kvclient: send queue full")
	}
}

// conn keeps a connection to one server: it dials when there is something
// to send, writes frames, and delivers what it reads.
func (t *dialTransport) conn(id sim.NodeID, addr string, q chan []byte) {
	defer t.wg.Done()
	for {
		var first []byte
		select {
		case first = <-q:
		case <-t.ctx.Done():
			return
		}
		var d net.Dialer
		dctx, cancel := context.WithTimeout(t.ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err != nil {
			t.log.Debug("dial failed", "server", id, "err", err)
			continue // the message is lost; the machine retries
		}
		stop := make(chan struct{})
		go func() {
			select {
			case <-t.ctx.Done():
			case <-stop:
			}
			c.Close()
		}()
		go func() {
			defer close(stop)
			r := bufio.NewReader(c)
			for {
				p, err := runtime.ReadFrame(r, nil, 0)
				if err != nil {
					return
				}
				m, err := kvsm.Codec{}.Decode(p)
				if err != nil || !t.deliver(id, m) {
					return
				}
			}
		}()
		err = runtime.WriteFrame(c, first)
		for err == nil {
			select {
			case b := <-q:
				err = runtime.WriteFrame(c, b)
			case <-stop:
				err = errors.New("connection closed")
			case <-t.ctx.Done():
				c.Close()
				<-stop
				return
			}
		}
		c.Close()
		<-stop
	}
}
