package kvclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/sim"
)

// ErrUnknownOutcome is returned for a write whose outcome the client could
// not learn: it may or may not have been applied (once at most). It wraps
// the reason (a context error, or the server's "session expired").
var ErrUnknownOutcome = errors.New("kvclient: outcome unknown (the write may or may not have been applied)")

// ClusterConfig configures a Session.
type ClusterConfig struct {
	// Servers maps node ids to client addresses (cluster.Cluster.Clients).
	// Required.
	Servers map[sim.NodeID]string
	// AttemptTimeout is how long one attempt waits for an answer before
	// the session tries the next server (0: 1s).
	AttemptTimeout time.Duration
	// BackoffMin and BackoffMax bound the wait before a retry, which
	// doubles with each failed attempt of a call and is jittered
	// (0: 5ms and 200ms).
	BackoffMin, BackoffMax time.Duration
	// Pool, if set, holds the connections, shared with other sessions
	// (requests of many sessions are then pipelined on one connection per
	// server, which saves system calls on both sides); nil gives the
	// session connections of its own.
	Pool *Pool
}

var errPoolClosed = errors.New("kvclient: pool closed")

// Pool is a set of connections, one per server, that Sessions can share.
// It is safe for concurrent use.
type Pool struct {
	servers map[sim.NodeID]string
	dial    time.Duration

	mu     sync.Mutex
	conns  map[sim.NodeID]*Client
	closed bool
}

// NewPool returns an empty pool for servers; it dials on first use.
func NewPool(servers map[sim.NodeID]string) *Pool {
	return &Pool{servers: servers, dial: time.Second, conns: map[sim.NodeID]*Client{}}
}

// get returns the connection to server id, dialling it if needed.
func (p *Pool) get(ctx context.Context, id sim.NodeID) (*Client, error) {
	p.mu.Lock()
	c, ok := p.conns[id]
	closed := p.closed
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	if closed {
		return nil, errPoolClosed
	}
	addr, ok := p.servers[id]
	if !ok {
		return nil, fmt.Errorf("kvclient: no address for server %d", id)
	}
	// Dial without the lock: a server that is down must not stall the
	// sessions talking to the others.
	dctx, cancel := context.WithTimeout(ctx, p.dial)
	defer cancel()
	c, err := Dial(dctx, addr)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return nil, errPoolClosed
	}
	if other, ok := p.conns[id]; ok { // another session dialled meanwhile
		c.Close()
		return other, nil
	}
	p.conns[id] = c
	return c, nil
}

// drop closes c, the failed connection to id, unless it was replaced.
func (p *Pool) drop(id sim.NodeID, c *Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[id] == c {
		delete(p.conns, id)
		c.Close()
	}
}

// Close closes every connection of the pool.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for id, c := range p.conns {
		c.Close()
		delete(p.conns, id)
	}
	return nil
}

// Session is a client of a replicated cluster (kvserver -cluster) that
// speaks the protocol of the kvsm.Client machine the simulator tests: it
// looks for the leader itself (following "not leader" hints, moving to the
// next server when an attempt times out or a connection fails), retries
// with a jittered exponential backoff, and makes every write exactly-once
// through a session: opened through the log before the first write (and
// again after one expired), with a sequence number per write, so that a
// retried write is never applied twice.
//
// A Session runs one call at a time (concurrent calls wait their turn),
// which is what sessions need: writes are numbered in order. Use several
// Sessions for concurrency. The context of a call bounds all its retries;
// a write whose context ends before an answer returns an error wrapping
// ErrUnknownOutcome and the context's error.
type Session struct {
	cfg ClusterConfig
	ids []sim.NodeID

	pool *Pool
	own  bool // the pool is the session's own

	mu     sync.Mutex // one call at a time; guards everything below
	leader sim.NodeID // -1: unknown
	client uint64
	seq    uint64
	rng    *rand.Rand
}

// NewSession returns a session with the servers of cfg. It connects
// lazily, to the server it tries.
func NewSession(cfg ClusterConfig) (*Session, error) {
	if len(cfg.Servers) == 0 {
		return nil, errors.New("kvclient: no servers")
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = time.Second
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 5 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 200 * time.Millisecond
	}
	s := &Session{cfg: cfg, pool: cfg.Pool, leader: -1,
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
	if s.pool == nil {
		s.pool, s.own = NewPool(cfg.Servers), true
		s.pool.dial = cfg.AttemptTimeout
	}
	for id := range cfg.Servers {
		s.ids = append(s.ids, id)
	}
	slices.Sort(s.ids)
	return s, nil
}

// NewClusterSession is NewSession with the client addresses of c.
func NewClusterSession(c *cluster.Cluster) (*Session, error) {
	return NewSession(ClusterConfig{Servers: c.Clients()})
}

// dropSession forgets the session; the next write opens a new one.
func (s *Session) dropSession() { s.client, s.seq = 0, 0 }

// ClientID is the id of the session's current server-side session (0
// before the first write, and after one expired).
func (s *Session) ClientID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.client
}

// Leader is the server the session believes leads (-1: unknown).
func (s *Session) Leader() sim.NodeID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leader
}

// Close closes the session's connections (not those of a shared Pool).
func (s *Session) Close() error {
	if s.own {
		return s.pool.Close()
	}
	return nil
}

// Get returns the value of key (ok false if it is not set), read from the
// leader after it confirmed its leadership (linearizable).
func (s *Session) Get(ctx context.Context, key string) (value []byte, ok bool, err error) {
	resp, err := s.call(ctx, kvsm.Request{Op: kvsm.OpGet, Key: []byte(key)})
	if err != nil {
		return nil, false, err
	}
	if resp.Status == kvsm.StatusNotFound {
		return nil, false, nil
	}
	return resp.Value, true, nil
}

// Set sets key to value. nil means a quorum has the write in its fsync'd
// journal and it is applied.
func (s *Session) Set(ctx context.Context, key string, value []byte) error {
	_, err := s.call(ctx, kvsm.Request{Op: kvsm.OpSet, Key: []byte(key), Value: value})
	return err
}

// Delete removes key; deleting a missing key succeeds.
func (s *Session) Delete(ctx context.Context, key string) error {
	_, err := s.call(ctx, kvsm.Request{Op: kvsm.OpDelete, Key: []byte(key)})
	return err
}

func (s *Session) conn(ctx context.Context, id sim.NodeID) (*Client, error) {
	return s.pool.get(ctx, id)
}

func (s *Session) next(id sim.NodeID) sim.NodeID {
	i, _ := slices.BinarySearch(s.ids, id)
	return s.ids[(i+1)%len(s.ids)]
}

func (s *Session) call(ctx context.Context, req kvsm.Request) (kvsm.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	write := req.Op.IsWrite()
	if write && s.client == 0 {
		// Open a session first. Nothing is written yet, so a failure here
		// leaves the outcome known: not applied. A retried open may leave
		// a spare session behind on the servers; it expires.
		resp, err := s.roundTrip(ctx, kvsm.Request{Op: kvsm.OpOpen}, false)
		if err != nil {
			return resp, fmt.Errorf("opening a session: %w", err)
		}
		s.client, s.seq = resp.Session, 0
	}
	if write {
		s.seq++
		req.Client, req.Seq = s.client, s.seq
	}
	return s.roundTrip(ctx, req, write)
}

// roundTrip sends req until a server answers it, following redirects and
// retrying with backoff. If write, an error after an attempt was sent
// wraps ErrUnknownOutcome.
func (s *Session) roundTrip(ctx context.Context, req kvsm.Request, write bool) (kvsm.Response, error) {
	target := s.leader
	if target < 0 {
		target = s.ids[s.rng.IntN(len(s.ids))]
	}
	backoff := s.cfg.BackoffMin
	sent := false // a write attempt may have reached a server
	var last error
	wait := func() error {
		d := backoff/2 + time.Duration(s.rng.Int64N(int64(backoff/2)+1))
		backoff = min(2*backoff, s.cfg.BackoffMax)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	fail := func(err error) (kvsm.Response, error) {
		if last != nil {
			err = fmt.Errorf("%w (last attempt: %v)", err, last)
		}
		if write && sent {
			return kvsm.Response{}, fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		return kvsm.Response{}, fmt.Errorf("kvclient: %w", err)
	}
	for hops := 0; ; {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		c, err := s.conn(ctx, target)
		if err != nil {
			last = err
			target = s.next(target)
			if err := wait(); err != nil {
				return fail(err)
			}
			continue
		}
		actx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
		sent = sent || write
		resp, err := c.do(actx, req)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fail(ctx.Err())
			}
			last = fmt.Errorf("server %d: %w", target, err)
			if !errors.Is(err, context.DeadlineExceeded) {
				s.pool.drop(target, c) // the connection failed
			}
			s.leader = -1
			target = s.next(target)
			if err := wait(); err != nil {
				return fail(err)
			}
			continue
		}
		switch resp.Status {
		case kvsm.StatusOK, kvsm.StatusNotFound:
			s.leader = target
			if req.Op == kvsm.OpOpen && resp.Session == 0 {
				return resp, fmt.Errorf("kvclient: server %d opened no session", target)
			}
			return resp, nil
		case kvsm.StatusNotLeader:
			last = fmt.Errorf("server %d: not leader", target)
			s.leader = -1
			if _, known := s.cfg.Servers[resp.Leader]; known && resp.Leader != target && hops < len(s.ids) {
				hops++
				target = resp.Leader // follow the hint at once
				continue
			}
			hops = 0
			target = s.next(target)
			if err := wait(); err != nil {
				return fail(err)
			}
		case kvsm.StatusSessionExpired:
			// Nothing was done now, but an earlier attempt may have been:
			// the outcome is unknown. Later calls open a fresh session.
			s.dropSession()
			return kvsm.Response{}, fmt.Errorf("%w: %w", ErrUnknownOutcome, &ServerError{Status: resp.Status, Msg: string(resp.Value)})
		default:
			return kvsm.Response{}, &ServerError{Status: resp.Status, Msg: string(resp.Value)}
		}
	}
}

// Status asks server id for its status (role, term, commit and applied
// index, ...).
func (s *Session) Status(ctx context.Context, id sim.NodeID) (cluster.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.conn(ctx, id)
	if err != nil {
		return cluster.Status{}, err
	}
	st, err := c.Status(ctx)
	if err != nil && ctx.Err() == nil {
		s.pool.drop(id, c)
	}
	return st, err
}

// StatusTable asks every node of c for its status (one second each) and
// returns a table, one node a line: id, client address, role, term, leader,
// commit, applied and last log index; "unreachable: ..." for a node that
// did not answer.
func StatusTable(ctx context.Context, c *cluster.Cluster) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-4s %-22s %-12s %6s %6s %8s %8s %8s\n", "id", "client", "role", "term", "leader", "commit", "applied", "last")
	for _, n := range c.Nodes {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := NodeStatus(sctx, n.Client)
		cancel()
		if err != nil {
			fmt.Fprintf(&b, "%-4d %-22s unreachable: %s\n", n.ID, n.Client, strings.TrimPrefix(err.Error(), "kvclient: "))
			continue
		}
		fmt.Fprintf(&b, "%-4d %-22s %-12s %6d %6d %8d %8d %8d\n", n.ID, n.Client, st.Role, st.Term, st.Leader, st.Commit, st.Applied, st.LastIndex)
	}
	return strings.TrimRight(b.String(), "\n")
}

// NodeStatus connects to the node serving clients at addr and asks for its
// status.
func NodeStatus(ctx context.Context, addr string) (cluster.Status, error) {
	c, err := Dial(ctx, addr)
	if err != nil {
		return cluster.Status{}, err
	}
	defer c.Close()
	return c.Status(ctx)
}
