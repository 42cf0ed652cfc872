package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"time"
)

// Config describes one simulation. Everything random is derived from Seed.
type Config struct {
	Seed uint64
	// Nodes is the number of nodes, with ids 0..Nodes-1.
	Nodes int
	// New builds a fresh machine for a node: at t=0 and at every restart.
	New func(id NodeID) Machine
	// Network is the message fault model in force from the start.
	Network Network
	// SyncLatency is how long a journal sync takes; messages sent by an
	// event that syncs leave only when the sync completes.
	SyncLatency time.Duration
	// DriftPPM is each node's clock drift in parts per million, within
	// ±100000 (nil: no drift). A node with drift +50000 sees its clock run
	// 5% fast, so its timers fire 5% early in global time.
	DriftPPM []int32
	// Codec, if set, round-trips every message through bytes so codec
	// and aliasing bugs show up in simulation.
	Codec Codec
	// Checkers run after every event and at the end of Run.
	Checkers []Checker
	// Trace receives one JSON object per line per event, if set.
	Trace io.Writer

	// The rest is used by Run.

	// Faults is the fault schedule of the fault phase.
	Faults []Fault
	// Duration is the length of the fault phase.
	Duration time.Duration
	// Liveness, if set, is required after the fault phase: every fault is
	// healed and the condition must hold within Liveness.Within.
	Liveness *Liveness
}

// Checker inspects the simulation. Step runs after every event; End once
// when Run finishes. Either may be nil. A non-nil error fails the run.
type Checker struct {
	Name string
	Step func(s *Sim) error
	End  func(s *Sim) error
}

// Liveness is a condition the system must reach once faults are healed.
type Liveness struct {
	Name   string
	Within time.Duration
	Cond   func(s *Sim) bool
}

// Observation is something a machine observed, stamped with the global
// virtual time and the node.
type Observation struct {
	At    time.Duration
	Node  NodeID
	Value any
}

// Failure is the error a run fails with: which checker, where and when.
type Failure struct {
	Checker string
	Step    uint64
	At      time.Duration
	Err     error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("%s: step %d at %v: %v", f.Checker, f.Step, f.At, f.Err)
}

func (f *Failure) Unwrap() error { return f.Err }

type timerSlot struct {
	name string
	gen  uint32
	set  bool
}

type diskOp struct {
	rec  []byte
	snap *SnapshotOp
}

// syncBatch is a sync in progress: it completes at done and makes the n
// oldest writes of its node's unsynced ones durable.
type syncBatch struct {
	done time.Duration
	n    int
}

type node struct {
	id      NodeID
	m       Machine
	up      bool
	paused  bool
	inc     uint32
	crashAt []time.Duration // crashAt[i]: when incarnation i ended
	timers  []timerSlot
	out     Effects
	drift   int64
	held    []item // events that arrived while paused

	durable durableJournal
	// unsynced[applied:] are the writes not yet durable, oldest first:
	// nsyncing of them in the syncs in progress, the rest pending, with no
	// sync requested yet. One array for all, reused, rather than one per
	// sync handed from pending to syncing.
	unsynced []diskOp
	applied  int
	nsyncing int
	syncing  []syncBatch // syncs requested, not yet complete, oldest first
	lastDone time.Duration
}

// Sim is a running simulation. It is not safe for concurrent use; run many
// seeds in parallel with one Sim each.
type Sim struct {
	cfg      Config
	now      time.Duration
	q        queue
	seq      uint64
	nodes    []*node
	links    []linkState // links[from*n+to]
	clogHeld []item
	net      Network
	netPlain bool       // see plainNetwork
	netPCG   *rand.PCG  // the network's stream, for its per-message draws
	netRng   *rand.Rand // the same stream, for its other draws
	faultRng *rand.Rand
	workRng  *rand.Rand
	stats    Stats
	obs      []Observation
	steps    uint64
	hash     uint64
	tracer   *tracer
	failure  *Failure

	// The id and send time of the message being delivered, for the trace
	// (scalars, so the item being dispatched stays on Step's stack); set
	// only when tracing.
	deliveringID   uint64
	deliveringSent time.Duration

	encBuf []byte // scratch for Config.Codec round trips
}

// linkState is the faults on one directed link, one bit each, so that
// delivery checks a healthy link with one load.
type linkState uint8

const (
	linkCut     linkState = 1 << iota // messages are dropped
	linkClogged                       // messages are held until unclogged
)

// Stream ids for deriving independent random streams from the root seed.
const (
	streamNetwork = iota + 1
	streamFaults
	streamWorkload
	streamSwarm
	streamNode = 1 << 20
)

// Stream derives an independent random stream from a seed.
func Stream(seed, stream uint64) *rand.Rand { return rand.New(streamPCG(seed, stream)) }

// streamPCG is the generator of Stream(seed, stream).
func streamPCG(seed, stream uint64) *rand.PCG {
	return rand.NewPCG(splitmix(seed^0x9e3779b97f4a7c15*stream), splitmix(seed+stream))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// New builds a simulation and queues a start event for every node at t=0.
func New(cfg Config) *Sim {
	if cfg.Nodes <= 0 || cfg.New == nil {
		panic("sim: Config needs Nodes > 0 and New")
	}
	netPCG := streamPCG(cfg.Seed, streamNetwork)
	s := &Sim{
		cfg:      cfg,
		net:      cfg.Network,
		netPlain: plainNetwork(cfg.Network),
		netPCG:   netPCG,
		netRng:   rand.New(netPCG),
		faultRng: Stream(cfg.Seed, streamFaults),
		workRng:  Stream(cfg.Seed, streamWorkload),
		links:    make([]linkState, cfg.Nodes*cfg.Nodes),
		hash:     fnvOffset,
	}
	if cfg.Trace != nil {
		s.tracer = newTracer(cfg.Trace)
	}
	for i := range cfg.Nodes {
		n := &node{id: NodeID(i)}
		if i < len(cfg.DriftPPM) {
			n.drift = int64(max(-100_000, min(100_000, cfg.DriftPPM[i])))
		}
		s.nodes = append(s.nodes, n)
		n.up, n.m = true, cfg.New(n.id)
		b := s.push(0, nil)
		b.kind, b.node = itemStart, n.id
	}
	return s
}

// push queues an item at time at, or now if at is past.
// It returns the item's body, zeroed, for the caller to fill in at once.
func (s *Sim) push(at time.Duration, msg Message) *itemBody {
	b := s.q.push(max(at, s.now), s.seq, msg)
	s.seq++
	return b
}

// Now is the global virtual time.
func (s *Sim) Now() time.Duration { return s.now }

// Nodes is the number of nodes.
func (s *Sim) Nodes() int { return len(s.nodes) }

// Machine returns node id's current machine, or nil while it is crashed.
func (s *Sim) Machine(id NodeID) Machine { return s.nodes[id].m }

// Up reports whether node id is running (paused nodes are up).
func (s *Sim) Up(id NodeID) bool { return s.nodes[id].up }

// Paused reports whether node id is paused.
func (s *Sim) Paused(id NodeID) bool { return s.nodes[id].paused }

// Durable returns node id's durable journal: what the node would boot
// with if it restarted now. The caller must not modify its snapshot or
// records. It gathers the records into a new slice, a cost linear in the
// journal's length: call it when needed, not after every event.
func (s *Sim) Durable(id NodeID) Journal { return s.nodes[id].durable.journal() }

// Observations returns everything observed so far, in order. The caller
// must not modify the slice.
func (s *Sim) Observations() []Observation { return s.obs }

// Stats returns the message and event counters.
func (s *Sim) Stats() Stats { return s.stats }

// Steps is the number of queue entries processed so far.
func (s *Sim) Steps() uint64 { return s.steps }

// Hash is the running hash of the trace so far (see the trace docs).
func (s *Sim) Hash() uint64 { return s.hash }

// Rand is a workload random stream derived from the seed, for tests and
// drivers that make choices outside the machines.
func (s *Sim) Rand() *rand.Rand { return s.workRng }

// Network returns the network model in force.
func (s *Sim) Network() Network { return s.net }

// SetNetwork replaces the network model for messages sent from now on.
func (s *Sim) SetNetwork(n Network) {
	s.net, s.netPlain = n, plainNetwork(n)
	s.traceNote("network", n.String())
}

// Err is the first checker failure, or nil.
func (s *Sim) Err() error {
	if s.failure == nil {
		return nil
	}
	return s.failure
}

// localNow converts global time to node n's drifting clock.
func (n *node) localNow(t time.Duration) time.Duration {
	if n.drift == 0 {
		return t
	}
	return t + time.Duration(int64(t)*n.drift/1_000_000)
}

// fireAt is the global time at which a timer set now for d on node n's clock
// fires: the first instant at which the node's own clock has advanced by at
// least d, so a machine never sees its timer fire early, even by rounding.
func (n *node) fireAt(now, d time.Duration) time.Duration {
	if n.drift == 0 {
		return now + d
	}
	target := n.localNow(now) + d
	t := now + time.Duration(int64(d)*1_000_000/(1_000_000+n.drift))
	for n.localNow(t) < target {
		t++
	}
	for t > now && n.localNow(t-1) >= target {
		t--
	}
	return t
}

// Step processes the next queued event. It returns false when the queue is
// empty or a checker has failed.
func (s *Sim) Step() bool {
	if s.failure != nil || s.q.len() == 0 {
		return false
	}
	s.step()
	return s.failure == nil
}

// step processes the next queued event; the queue must not be empty.
func (s *Sim) step() { s.stepTo(s.q.nextAt(), true) }

// stepTo processes the queued events due by end, in order, until a checker
// fails; with one set, only the next. (Callers that run many events loop
// here rather than call once per event.)
func (s *Sim) stepTo(end time.Duration, one bool) {
	var it item // (declared once: take fills every field)
	for s.failure == nil && s.q.len() > 0 && s.q.nextAt() <= end {
		var k qkey
		if s.q.heap { // (popKey, with its common case inline)
			k = s.q.popHeap()
		} else {
			k = s.q.popLast()
		}
		s.q.take(k, &it)
		s.now = it.at
		s.steps++
		var happened bool
		if it.kind == itemMessage {
			happened = s.deliver(&it) // most items: one call fewer than through dispatch
		} else {
			happened = s.dispatch(&it)
		}
		if happened && len(s.cfg.Checkers) > 0 {
			s.check()
		}
		if one {
			return
		}
	}
}

// RunFor runs events for d of virtual time, then sets the clock to the end
// of the interval. It returns the first checker failure.
func (s *Sim) RunFor(d time.Duration) error {
	end := s.now + d
	s.stepTo(end, false)
	if s.failure == nil && end > s.now {
		s.now = end
	}
	return s.Err()
}

// ErrTimeout is returned by RunUntil when the condition did not hold in time.
var ErrTimeout = errors.New("condition not reached in time")

// RunUntil runs until cond holds (checked after every event), for at most
// limit of virtual time. It returns a checker failure, or an error wrapping
// ErrTimeout.
func (s *Sim) RunUntil(cond func(*Sim) bool, limit time.Duration) error {
	end := s.now + limit
	for !cond(s) {
		if s.failure != nil {
			return s.failure
		}
		if s.q.len() == 0 || s.q.nextAt() > end {
			s.now = max(s.now, end)
			return fmt.Errorf("after %v: %w", limit, ErrTimeout)
		}
		s.step()
	}
	return s.Err()
}

func (s *Sim) check() {
	for _, c := range s.cfg.Checkers {
		if c.Step == nil {
			continue
		}
		if err := c.Step(s); err != nil {
			s.fail(c.Name, err)
			return
		}
	}
}

func (s *Sim) fail(checker string, err error) {
	if s.failure == nil {
		s.failure = &Failure{Checker: checker, Step: s.steps, At: s.now, Err: err}
		s.traceNote("failure", s.failure.Error())
	}
}

// dispatch handles one queue item; it reports whether anything happened
// that checkers should look at.
func (s *Sim) dispatch(it *item) bool {
	switch it.kind {
	case itemStart:
		n := s.nodes[it.node]
		if !n.up || it.inc != n.inc {
			return false
		}
		s.boot(n)
		return true
	case itemMessage: // (step hands messages to deliver itself)
		return s.deliver(it)
	case itemTimer:
		n := s.nodes[it.node]
		if !n.up || it.inc != n.inc {
			return false
		}
		t := &n.timers[it.slot]
		if !t.set || t.gen != it.gen {
			return false
		}
		if n.paused {
			n.held = append(n.held, *it)
			return false
		}
		t.set = false
		s.stepMachine(n, Event{Kind: EventTimer, Timer: t.name})
		return true
	case itemSyncDone:
		n := s.nodes[it.node]
		if it.inc == n.inc && len(n.syncing) > 0 {
			n.finishSync()
		}
		return false
	case itemSynced:
		n := s.nodes[it.node]
		if !n.up || it.inc != n.inc {
			return false
		}
		if n.paused {
			n.held = append(n.held, *it)
			return false
		}
		s.stepMachine(n, Event{Kind: EventSynced, Token: it.msgID})
		return true
	case itemFault:
		s.Apply(s.cfg.Faults[it.slot])
		return true
	}
	return false
}

// boot starts node n's current machine with its durable journal.
func (s *Sim) boot(n *node) {
	// A fresh Boot each start: machines may keep it (and its Rand).
	boot := &Boot{ID: n.id, Journal: n.durable.journal(), Rand: Stream(s.cfg.Seed, streamNode+uint64(n.id)<<16+uint64(n.inc))}
	s.stepMachine(n, Event{Kind: EventStart, Boot: boot})
}

func (s *Sim) deliver(it *item) bool {
	n := s.nodes[it.node]
	if it.from != External {
		src := s.nodes[it.from]
		// A message whose sender crashed before its sync completed never
		// left the sender.
		if it.inc != src.inc && src.crashAt[it.inc] < it.departAt {
			return s.drop(it, "sender crashed before the message left")
		}
		if l := s.links[int(it.from)*len(s.nodes)+int(it.node)]; l != 0 {
			if l&linkCut != 0 {
				return s.drop(it, "link cut")
			}
			s.clogHeld = append(s.clogHeld, *it) // clogged
			return false
		}
	}
	if !n.up {
		return s.drop(it, "receiver down")
	}
	if n.paused {
		n.held = append(n.held, *it)
		return false
	}
	s.stats.InFlight--
	s.stats.Delivered++
	if s.tracer != nil { // (only the trace reads them)
		s.deliveringID, s.deliveringSent = it.msgID, it.sentAt
	}
	s.stepMachine(n, Event{Kind: EventMessage, From: it.from, Msg: it.msg})
	return true
}

func (s *Sim) drop(it *item, why string) bool {
	s.stats.InFlight--
	s.stats.Dropped++
	s.hashEvent(kindDrop, it.node, it.from)
	if s.tracer != nil {
		s.tracer.drop(s, it, why)
	}
	return false
}

// stepMachine hands ev to node n's machine, then carries out its effects
// under the durability rule (in this function rather than one of its own:
// a call fewer per event) and leaves them empty for the node's next event
// (see Effects.carriedOut).
func (s *Sim) stepMachine(n *node, ev Event) {
	ev.Now = n.localNow(s.now)
	s.stats.Events++
	n.m.Step(ev, &n.out) // (empty: see the end)
	e := &n.out
	s.hashEvent(uint64(ev.Kind), n.id, ev.From)
	s.hashCounts(len(e.Sends), len(e.Appends), len(e.Timers))
	if s.tracer != nil {
		s.tracer.event(s, n, &ev)
	}
	// The effects.
	syncs := e.Syncs()
	if syncs && s.cfg.SyncLatency == 0 && len(n.syncing) == 0 {
		// The sync completes at once and nothing is ahead of it: the
		// writes pending from earlier events, then this event's, go
		// straight to the durable journal.
		if pending := len(n.unsynced) - n.applied; pending > 0 {
			n.makeDurable(pending)
		}
		for _, rec := range e.Appends {
			if !n.durable.records.join(rec) { // (append, with its common case inlined)
				n.durable.records.appendSlow(rec)
			}
		}
		if e.Snapshot != nil {
			n.durable.applySnapshot(e.Snapshot)
		}
	} else {
		for _, rec := range e.Appends {
			n.unsynced = append(n.unsynced, diskOp{rec: rec})
		}
		if e.Snapshot != nil {
			n.unsynced = append(n.unsynced, diskOp{snap: e.Snapshot})
		}
		if pending := len(n.unsynced) - n.applied - n.nsyncing; syncs && pending > 0 {
			// Either syncs take time or earlier ones are still running:
			// this one completes after both.
			done := max(s.now+s.cfg.SyncLatency, n.lastDone)
			n.syncing = append(n.syncing, syncBatch{done: done, n: pending})
			n.nsyncing += pending
			b := s.push(done, nil)
			b.kind, b.node, b.inc = itemSyncDone, n.id, n.inc
			n.lastDone = done
		}
	}
	departAt := s.now
	if len(n.syncing) > 0 {
		// Writes still syncing, this event's or earlier ones: messages wait.
		departAt = n.lastDone
	}
	if e.Notify {
		b := s.push(departAt, nil)
		b.kind, b.node, b.inc, b.msgID = itemSynced, n.id, n.inc, e.NotifyToken
	}
	// (Most events set no timers and observe nothing: testing the length
	// first skips setting up the loop.)
	if len(e.Timers) > 0 {
		for _, op := range e.Timers {
			s.setTimer(n, op)
		}
	}
	for i := range e.Sends {
		snd := &e.Sends[i]
		if snd.Early {
			s.send(n.id, n.inc, snd.To, snd.Msg, s.now)
		} else {
			s.send(n.id, n.inc, snd.To, snd.Msg, departAt)
		}
	}
	if len(e.Observations) > 0 {
		for _, o := range e.Observations {
			s.obs = append(s.obs, Observation{At: s.now, Node: n.id, Value: o})
		}
	}
	e.carriedOut()
}

// finishSync completes the oldest sync in progress: its writes are durable.
func (n *node) finishSync() {
	b := n.syncing[0]
	copy(n.syncing, n.syncing[1:]) // a few batches at most: keep the array
	n.syncing = n.syncing[:len(n.syncing)-1]
	n.nsyncing -= b.n
	n.makeDurable(b.n)
}

// makeDurable makes the k oldest unsynced writes durable.
func (n *node) makeDurable(k int) {
	ops := n.unsynced[n.applied : n.applied+k]
	n.applyDurable(ops)
	for i := range ops {
		ops[i] = diskOp{} // the journal has what it needs; not clear(): see Effects.Reset
	}
	n.applied += k
	switch {
	case n.applied == len(n.unsynced):
		n.unsynced, n.applied = n.unsynced[:0], 0
	case n.applied >= 64 && 2*n.applied >= len(n.unsynced):
		// Syncs that overlap without end never empty the array: move
		// what is left to its front once the durable part is at least
		// half of it, so that it does not grow with every write made.
		rest := copy(n.unsynced, n.unsynced[n.applied:])
		clear(n.unsynced[rest:])
		n.unsynced, n.applied = n.unsynced[:rest], 0
	}
}

func (n *node) applyDurable(ops []diskOp) {
	for _, op := range ops {
		if op.snap == nil {
			n.durable.records.append(op.rec)
		} else {
			n.durable.applySnapshot(op.snap)
		}
	}
}

func (s *Sim) setTimer(n *node, op TimerOp) {
	slot := -1
	for i := range n.timers {
		if n.timers[i].name == op.Name {
			slot = i
			break
		}
	}
	if slot < 0 {
		if op.Cancel {
			return
		}
		slot = len(n.timers)
		n.timers = append(n.timers, timerSlot{name: op.Name})
	}
	t := &n.timers[slot]
	t.gen++
	t.set = !op.Cancel
	if t.set {
		b := s.push(n.fireAt(s.now, op.After), nil)
		b.kind, b.node, b.inc, b.gen, b.slot = itemTimer, n.id, n.inc, t.gen, int32(slot)
	}
}

func (s *Sim) send(from NodeID, inc uint32, to NodeID, m Message, departAt time.Duration) {
	s.stats.Sent++
	if to < 0 || int(to) >= len(s.nodes) {
		s.stats.Delivered++ // left the simulated system
		return
	}
	if s.cfg.Codec != nil {
		m = s.roundTrip(m)
	}
	if s.net.Loss > 0 && pcgFloat64(s.netPCG) < s.net.Loss {
		s.stats.InFlight++ // drop counts it out again
		s.drop(&item{msg: m, itemBody: itemBody{kind: itemMessage, node: to, from: from, inc: inc,
			departAt: departAt, sentAt: s.now, msgID: s.stats.Sent}}, "lost")
		return
	}
	s.stats.InFlight++
	for dup := false; ; dup = true {
		var d time.Duration
		if s.netPlain {
			// Network.sample's one draw, made here: the call to sample
			// and its own call to pcgInt64N cost more than the draw.
			u := uint64(s.net.Jitter)
			hi, lo := bits.Mul64(s.netPCG.Uint64(), u)
			if lo < u {
				hi = pcgRetry(s.netPCG, u, hi, lo)
			}
			d = s.net.Delay + time.Duration(hi)
		} else {
			d = s.net.sample(s.netPCG, s.netRng)
		}
		b := s.push(departAt+d, m)
		b.kind, b.node, b.from, b.inc = itemMessage, to, from, inc
		b.departAt, b.sentAt, b.msgID = departAt, s.now, s.stats.Sent
		// The network may deliver a message twice, never more.
		if dup || !(s.net.Duplicate > 0 && pcgFloat64(s.netPCG) < s.net.Duplicate) {
			return
		}
		s.stats.Duplicated++
		s.stats.InFlight++
	}
}

func (s *Sim) roundTrip(m Message) Message {
	// Encode into a reused buffer (encoding into nil grows a fresh one
	// several times per message), then hand Decode a copy of its own: a
	// decoded message may keep the bytes it was given.
	b, err := s.cfg.Codec.Encode(s.encBuf[:0], m)
	if err != nil {
		s.fail("codec", fmt.Errorf("encode %T: %w", m, err))
		return m
	}
	s.encBuf = b[:0]
	out, err := s.cfg.Codec.Decode(bytes.Clone(b))
	if err != nil {
		s.fail("codec", fmt.Errorf("decode %T: %w", m, err))
		return m
	}
	return out
}

// Inject delivers m to node to, from External, at the current time. It
// bypasses the network model.
func (s *Sim) Inject(to NodeID, m Message) { s.InjectAt(s.now, to, m) }

// InjectAt delivers m to node to, from External, at virtual time at.
func (s *Sim) InjectAt(at time.Duration, to NodeID, m Message) {
	s.stats.Sent++
	s.stats.InFlight++
	b := s.push(at, m)
	b.kind, b.node, b.from, b.sentAt, b.msgID = itemMessage, to, External, at, s.stats.Sent
}
