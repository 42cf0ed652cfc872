package kvsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Call is an operation a Client's user asks for: inject it into the client
// machine as a message (from anyone). The client runs its calls one at a
// time, in the order they arrive, and reports each with an Invoked
// observation when it starts and a Done observation when it ends.
type Call struct {
	// ID is the user's name for the call, echoed in the observations.
	ID    uint64
	Op    Op
	Key   []byte
	Value []byte // OpSet only
}

// Invoked is observed when a call starts.
type Invoked struct {
	ID    uint64
	Op    Op
	Key   []byte
	Value []byte
	// Client is the session's id and Seq the write's sequence number: 0
	// for reads, and for a write that must first open a session.
	Client, Seq uint64
}

// Done is observed when a call ends.
type Done struct {
	ID    uint64
	Op    Op
	Key   []byte
	Value []byte // the call's input value
	// Status and Result are the answer: the value of a successful get.
	Status Status
	Result []byte
	// Unknown is set when the client never learned the outcome: the
	// session expired under a retried write, or the client gave up. A
	// write with an unknown outcome may or may not have been applied.
	Unknown bool
	// Invoke and Return are the client's own clock at the call's start
	// and end; Attempts counts requests sent.
	Invoke, Return time.Duration
	Attempts       int
}

// Workload generates a client's calls by itself, for simulations: Next
// returns the next call and how long the user thinks before making it, or
// ok false when there is nothing more to do. It draws its randomness from
// r (the client's own stream).
type Workload interface {
	Next(r *rand.Rand) (call Call, think time.Duration, ok bool)
}

// ClientConfig configures a Client.
type ClientConfig struct {
	// Servers are the replicas; the client looks for the leader among them.
	Servers []sim.NodeID
	// Timeout is how long one attempt waits for an answer before the
	// client tries the next server (0: 250ms).
	Timeout time.Duration
	// BackoffMin and BackoffMax bound the wait before a retry, which
	// doubles with each failed attempt of a call and is jittered
	// (0: 10ms and 500ms).
	BackoffMin, BackoffMax time.Duration
	// GiveUpAfter ends a call with an unknown outcome once it has been
	// retried for this long (0: never give up).
	GiveUpAfter time.Duration
	// Workload, if set, makes the client generate its own calls.
	Workload Workload
}

// Timer names a Client sets.
const (
	timerAttempt = "kv.attempt"
	timerBackoff = "kv.backoff"
	timerThink   = "kv.think"
)

type clientOp struct {
	call Call
	// opening: the call is a write and the client has no session yet; it
	// opens one (OpOpen) before sending the write itself, whose attempts
	// have request ids from writeFrom on.
	opening   bool
	writeFrom uint64
	seq       uint64
	firstID   uint64 // request id of the first attempt
	lastID    uint64 // request id of the latest attempt
	attempts  int
	failures  int // consecutive failed attempts, for backoff
	redirects int // consecutive redirects without an answer
	invoked   time.Duration
}

// Client is the KV client as a machine: the same code runs in the
// simulator and, driven by the real-network host, in kvclient. It finds
// the leader (starting from a random server, following StatusNotLeader
// hints, moving to the next server on a timeout), retries with jittered
// exponential backoff, and numbers its writes within a session so that a
// retried write is applied at most once and answered with its original
// result.
//
// The client opens its session (OpOpen) before its first write, and again
// after a session expired; a restarted client opens a new one.
type Client struct {
	cfg    ClientConfig
	rand   *rand.Rand
	now    time.Duration
	client uint64
	seq    uint64
	nextID uint64
	target int // index into cfg.Servers
	queue  []Call
	cur    *clientOp
	calls  uint64 // workload calls made
	idle   bool   // workload exhausted
}

// NewClient returns a client machine; it does nothing until started.
func NewClient(cfg ClientConfig) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 250 * time.Millisecond
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 10 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 500 * time.Millisecond
	}
	cfg.BackoffMax = max(cfg.BackoffMax, cfg.BackoffMin)
	cfg.Servers = slices.Clone(cfg.Servers)
	return &Client{cfg: cfg}
}

// ClientID is the session's client id (0 before start).
func (c *Client) ClientID() uint64 { return c.client }

// Busy reports whether a call is under way or queued.
func (c *Client) Busy() bool { return c.cur != nil || len(c.queue) > 0 }

// Step implements sim.Machine.
func (c *Client) Step(ev sim.Event, out *sim.Effects) {
	c.now = ev.Now
	if ev.Kind != sim.EventStart && c.rand == nil {
		return // not started yet
	}
	switch ev.Kind {
	case sim.EventStart:
		c.rand = ev.Boot.Rand
		if len(c.cfg.Servers) > 0 {
			c.target = c.rand.IntN(len(c.cfg.Servers))
		}
		c.think(out)
	case sim.EventTimer:
		switch ev.Timer {
		case timerAttempt:
			c.timeout(out)
		case timerBackoff:
			if c.cur != nil {
				c.attempt(out)
			}
		case timerThink:
			c.next(out)
		}
	case sim.EventMessage:
		switch m := ev.Msg.(type) {
		case Call:
			c.queue = append(c.queue, m)
			c.next(out)
		case *Call:
			c.queue = append(c.queue, *m)
			c.next(out)
		case Response:
			c.response(m, out)
		case *Response:
			c.response(*m, out)
		}
	}
}

// dropSession forgets the session; the next write opens a new one.
func (c *Client) dropSession() { c.client, c.seq = 0, 0 }

// think schedules the workload's next call, if there is a workload.
func (c *Client) think(out *sim.Effects) {
	if c.cfg.Workload == nil || c.idle || c.Busy() {
		return
	}
	call, d, ok := c.cfg.Workload.Next(c.rand)
	if !ok {
		c.idle = true
		return
	}
	c.calls++
	if call.ID == 0 {
		call.ID = c.calls
	}
	c.queue = append(c.queue, call)
	out.SetTimer(timerThink, d)
}

// next starts the first queued call if none is under way.
func (c *Client) next(out *sim.Effects) {
	if c.cur != nil || len(c.queue) == 0 {
		return
	}
	call := c.queue[0]
	c.queue = c.queue[1:]
	op := &clientOp{call: call, invoked: c.now}
	if call.Op.IsWrite() {
		if c.client == 0 {
			op.opening = true
		} else {
			c.seq++
			op.seq = c.seq
		}
	}
	c.cur = op
	inv := Invoked{ID: call.ID, Op: call.Op, Key: call.Key, Value: call.Value, Seq: op.seq}
	if op.seq != 0 {
		inv.Client = c.client
	}
	out.Observe(inv)
	c.attempt(out)
}

func (c *Client) attempt(out *sim.Effects) {
	op := c.cur
	if len(c.cfg.Servers) == 0 {
		c.finish(Done{Status: StatusError, Result: []byte("no servers"), Unknown: true}, out)
		return
	}
	c.nextID++
	if op.attempts == 0 {
		op.firstID = c.nextID
	}
	op.lastID = c.nextID
	op.attempts++
	req := Request{ID: c.nextID, Op: op.call.Op, Key: op.call.Key}
	switch {
	case op.opening:
		req = Request{ID: c.nextID, Op: OpOpen}
	case op.call.Op == OpSet:
		req.Value = op.call.Value
	}
	if op.seq != 0 {
		req.Client, req.Seq = c.client, op.seq
	}
	out.Send(c.cfg.Servers[c.target], req)
	out.CancelTimer(timerBackoff)
	out.SetTimer(timerAttempt, c.cfg.Timeout)
}

func (c *Client) timeout(out *sim.Effects) {
	op := c.cur
	if op == nil {
		return
	}
	if c.cfg.GiveUpAfter > 0 && c.now-op.invoked >= c.cfg.GiveUpAfter {
		c.finish(Done{Status: StatusError, Result: []byte("gave up"), Unknown: true}, out)
		return
	}
	// The server may be down or cut off: try the next one.
	c.target = (c.target + 1) % len(c.cfg.Servers)
	c.retryLater(out)
}

// retryLater waits a jittered, exponentially growing backoff, then retries.
func (c *Client) retryLater(out *sim.Effects) {
	op := c.cur
	op.failures++
	d := c.cfg.BackoffMin << min(op.failures-1, 20)
	d = min(d, c.cfg.BackoffMax)
	d = d/2 + time.Duration(c.rand.Int64N(int64(d/2)+1))
	out.CancelTimer(timerAttempt)
	out.SetTimer(timerBackoff, d)
}

func (c *Client) response(m Response, out *sim.Effects) {
	op := c.cur
	if op == nil || m.ID < op.firstID || m.ID > op.lastID || !op.opening && m.ID < op.writeFrom {
		return // an answer to an earlier call or phase, or a duplicate
	}
	switch m.Status {
	case StatusNotLeader:
		if m.ID != op.lastID {
			return // a stale redirect: the latest attempt is still out
		}
		if i := slices.Index(c.cfg.Servers, m.Leader); i >= 0 && i != c.target && op.redirects < len(c.cfg.Servers) {
			op.redirects++
			c.target = i
			c.attempt(out)
			return
		}
		op.redirects = 0
		c.target = (c.target + 1) % len(c.cfg.Servers)
		c.retryLater(out)
	case StatusSessionExpired:
		// Whether an earlier attempt took effect is unknown; later writes
		// need a new session.
		c.dropSession()
		c.finish(Done{Status: m.Status, Unknown: true}, out)
	case StatusOK:
		if !op.opening {
			c.finish(Done{Status: m.Status, Result: m.Value}, out)
			return
		}
		if m.Session == 0 { // a server that does not know sessions
			c.finish(Done{Status: StatusError, Result: []byte("the server opened no session")}, out)
			return
		}
		// The session is open: now the write itself, at the same server.
		c.client, c.seq = m.Session, 1
		op.opening, op.seq, op.writeFrom = false, 1, c.nextID+1
		op.failures, op.redirects = 0, 0
		c.attempt(out)
	default:
		c.finish(Done{Status: m.Status, Result: m.Value}, out)
	}
}

func (c *Client) finish(d Done, out *sim.Effects) {
	op := c.cur
	c.cur = nil
	out.CancelTimer(timerAttempt)
	out.CancelTimer(timerBackoff)
	d.ID, d.Op, d.Key, d.Value = op.call.ID, op.call.Op, op.call.Key, op.call.Value
	d.Invoke, d.Return, d.Attempts = op.invoked, c.now, op.attempts
	out.Observe(d)
	if len(c.queue) > 0 {
		c.next(out)
		return
	}
	c.think(out)
}

// String describes the call for traces.
func (i Invoked) String() string {
	if i.Op == OpSet {
		return fmt.Sprintf("invoke #%d set %q=%q (client %x seq %d)", i.ID, i.Key, i.Value, i.Client, i.Seq)
	}
	if i.Seq != 0 {
		return fmt.Sprintf("invoke #%d %v %q (client %x seq %d)", i.ID, i.Op, i.Key, i.Client, i.Seq)
	}
	return fmt.Sprintf("invoke #%d %v %q", i.ID, i.Op, i.Key)
}

// String describes the outcome for traces.
func (d Done) String() string {
	res := d.Status.String()
	switch {
	case d.Unknown:
		res = "unknown (" + res + ")"
	case d.Op == OpGet && d.Status == StatusOK:
		res = fmt.Sprintf("%q", d.Result)
	}
	return fmt.Sprintf("done #%d %v %q -> %s after %d attempts", d.ID, d.Op, d.Key, res, d.Attempts)
}
