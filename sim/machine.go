package sim

import (
	"math/rand/v2"
	"time"
)

// NodeID names a node: a server, a client or a device. The simulator numbers
// its nodes 0..n-1; External is the sender of messages injected from outside.
type NodeID int32

// External is the sender recorded on messages injected by a test or a host
// rather than sent by a machine.
const External NodeID = -1

// Message is a protocol message. Each protocol defines its own concrete types;
// a Codec turns them into bytes for the real network. Messages are values:
// once sent, neither sender nor receiver may mutate one.
type Message any

// EventKind says what happened to a machine.
type EventKind uint8

const (
	// EventStart boots or restarts the machine with its durable journal.
	EventStart EventKind = iota + 1
	// EventMessage delivers a message from another node.
	EventMessage
	// EventTimer fires a timer the machine set earlier.
	EventTimer
	// EventSynced tells the machine that the journal writes it had made
	// when it called Effects.NotifySynced are durable.
	EventSynced
)

func (k EventKind) String() string {
	switch k {
	case EventStart:
		return "start"
	case EventMessage:
		return "recv"
	case EventTimer:
		return "timer"
	case EventSynced:
		return "synced"
	}
	return "unknown"
}

// Event is one input to a machine. Only the fields of its Kind are set.
type Event struct {
	Kind EventKind
	// Now is the node's own monotonic clock: virtual in the simulator (and
	// subject to the node's drift), the process's monotonic clock in the
	// runtime. Machines read time only from here.
	Now time.Duration
	// From and Msg are set for EventMessage.
	From NodeID
	Msg  Message
	// Timer is the name of the timer that fired, for EventTimer.
	Timer string
	// Token is the token passed to Effects.NotifySynced, for EventSynced.
	Token uint64
	// Boot is set for EventStart.
	Boot *Boot
}

// Boot is what a machine is given when it starts.
type Boot struct {
	// ID is the node's own id.
	ID NodeID
	// Journal is everything the node had made durable before; empty on
	// first boot.
	Journal Journal
	// Rand is the machine's own random stream: derived from the simulation
	// seed in the simulator, seeded from the OS in the runtime. Machines use
	// no other randomness.
	Rand *rand.Rand
}

// Journal is a node's durable state as recovered at start: an optional
// snapshot, followed by the records appended after the prefix it covers.
//
// Records are numbered from 0 over the node's whole life. Records[i] has the
// absolute index Base+i, and Base is the number of records the snapshot
// replaced (0 without a snapshot).
type Journal struct {
	Snapshot []byte
	Base     uint64
	Records  [][]byte
}

// Next is the absolute index the next appended record will get.
func (j *Journal) Next() uint64 { return j.Base + uint64(len(j.Records)) }

// Empty reports whether nothing was ever made durable.
func (j *Journal) Empty() bool { return j.Snapshot == nil && len(j.Records) == 0 && j.Base == 0 }

// Machine is a protocol participant written as a pure state machine. It
// reacts to one event at a time by appending effects to out, which the
// host hands it empty; it never
// performs an effect itself, and never reads the clock, global randomness,
// the network or the disk, or starts goroutines.
//
// A machine that crashes is discarded: the host builds a fresh one and
// starts it with the durable journal, so volatile state is whatever Step
// rebuilds from it.
type Machine interface {
	Step(ev Event, out *Effects)
}

// Send is an effect: deliver Msg to node To. An Early send may leave
// before the journal writes are durable (see Effects.SendEarly).
type Send struct {
	To    NodeID
	Msg   Message
	Early bool
}

// TimerOp is an effect: set (After >= 0) or cancel (Cancel) the named timer.
// Setting a timer that is already set replaces it.
type TimerOp struct {
	Name   string
	After  time.Duration
	Cancel bool
}

// SnapshotOp is an effect: a snapshot that replaces the journal records with
// absolute indices below UpTo.
type SnapshotOp struct {
	Data []byte
	UpTo uint64
}

// Effects collects what a machine wants done in answer to one event. The
// host executes them after Step returns, obeying the durability rule: every
// journal write made so far is durable before any message in Sends leaves
// the node, except the sends marked Early. Appended records with neither a
// send nor a sync request in the same event stay pending and are lost if the
// node crashes before a later sync.
type Effects struct {
	Sends        []Send
	Timers       []TimerOp
	Appends      [][]byte
	Snapshot     *SnapshotOp
	SyncRequest  bool
	Observations []any
	// Notify asks for an EventSynced carrying NotifyToken once every
	// journal write made so far is durable.
	Notify      bool
	NotifyToken uint64
}

// Send asks the host to deliver m to node to once every journal write made
// so far is durable.
func (e *Effects) Send(to NodeID, m Message) { e.Sends = append(e.Sends, Send{To: to, Msg: m}) }

// SendEarly asks the host to deliver m to node to without waiting for the
// journal: m may leave, and arrive, before writes made so far are durable,
// and still arrive if the node then crashes and loses them. It is for a
// message whose receiver does not rely on the sender's durability — Raft's
// leader sends its log entries to followers while it writes them itself, and
// counts its own copy only once NotifySynced says it is durable. Everything
// else uses Send.
func (e *Effects) SendEarly(to NodeID, m Message) {
	e.Sends = append(e.Sends, Send{To: to, Msg: m, Early: true})
}

// SetTimer sets the named timer to fire after d of the node's own clock,
// replacing any timer of the same name.
func (e *Effects) SetTimer(name string, d time.Duration) {
	if d < 0 {
		d = 0
	}
	e.Timers = append(e.Timers, TimerOp{Name: name, After: d})
}

// CancelTimer cancels the named timer if it is set.
func (e *Effects) CancelTimer(name string) {
	e.Timers = append(e.Timers, TimerOp{Name: name, Cancel: true})
}

// Append adds a record to the node's journal. The host keeps rec as it is,
// and never writes to it or past its end (rec may share its array with the
// machine's later records); the machine must not modify it afterwards.
func (e *Effects) Append(rec []byte) { e.Appends = append(e.Appends, rec) }

// Sync asks for every journal write so far to be made durable even if this
// event sends nothing.
func (e *Effects) Sync() { e.SyncRequest = true }

// NotifySynced asks for every journal write so far to be made durable and
// for an EventSynced with token to be delivered once it is. Notifications
// arrive in the order they were asked for, each after the writes made before
// it are durable, and never to a later incarnation of the node (a crash
// loses them). A later call in the same event wins.
func (e *Effects) NotifySynced(token uint64) {
	e.SyncRequest = true
	e.Notify, e.NotifyToken = true, token
}

// SaveSnapshot replaces the journal records below absolute index upTo with
// data. It becomes durable with the next sync. A later call in the same
// event wins.
func (e *Effects) SaveSnapshot(data []byte, upTo uint64) {
	e.Snapshot = &SnapshotOp{Data: data, UpTo: upTo}
}

// Observe records an observation (a light's colour, a completed client
// operation, a committed entry) for checkers and traces.
func (e *Effects) Observe(o any) { e.Observations = append(e.Observations, o) }

// Syncs reports whether the host must sync the journal after this event.
func (e *Effects) Syncs() bool {
	if e.SyncRequest {
		return true
	}
	for i := range e.Sends {
		if !e.Sends[i].Early {
			return true
		}
	}
	return false
}

// Reset empties e for reuse, keeping its buffers.
func (e *Effects) Reset() {
	// Drop the references one by one: clear() on a slice of pointers
	// takes the runtime's bulk write barrier, many times dearer than a
	// few pointer writes while the collector is marking.
	for i := range e.Sends {
		e.Sends[i].Msg = nil
	}
	for i := range e.Appends {
		e.Appends[i] = nil
	}
	for i := range e.Observations {
		e.Observations[i] = nil
	}
	e.empty()
}

// carriedOut empties e once the simulator has carried it out, as Reset
// does, but leaves the references that Sends, Appends and Observations held
// in their arrays: what they refer to is kept anyway (records by the
// journal, observations by the simulation) or only until a later event
// sends as many (sent messages), and clearing each would cost a write
// barrier while the collector marks. After a burst of more than staleSends
// sends they are cleared, so that at most staleSends stay alive per node.
func (e *Effects) carriedOut() {
	if len(e.Sends) > staleSends {
		clear(e.Sends)
	}
	e.empty()
}

// empty truncates every list of e and clears its other fields, leaving
// what the lists' arrays hold to the caller.
func (e *Effects) empty() {
	e.Sends = e.Sends[:0]
	e.Timers = e.Timers[:0]
	e.Appends = e.Appends[:0]
	if e.Snapshot != nil { // storing nil is a write barrier too, on every event
		e.Snapshot = nil
	}
	e.SyncRequest = false
	e.Observations = e.Observations[:0]
	e.Notify, e.NotifyToken = false, 0
}

// staleSends is how many sent messages carriedOut leaves referenced.
const staleSends = 32

// Codec turns a protocol's messages into bytes and back. Decode must reject
// malformed input with an error and never panic.
type Codec interface {
	Encode(dst []byte, m Message) ([]byte, error)
	Decode(b []byte) (Message, error)
}
