package raft

import (
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// None is the NodeID used for "no node": no vote cast, no known leader.
const None sim.NodeID = -1

// Role is a node's part in the protocol.
type Role uint8

const (
	// Follower accepts entries from a leader and votes.
	Follower Role = iota
	// PreCandidate asks whether it could win an election without
	// disturbing anyone (PreVote); it has not changed its term.
	PreCandidate
	// Candidate has started an election in a new term.
	Candidate
	// Leader replicates its log to the others.
	Leader
)

func (r Role) String() string {
	switch r {
	case Follower:
		return "follower"
	case PreCandidate:
		return "precandidate"
	case Candidate:
		return "candidate"
	case Leader:
		return "leader"
	}
	return "unknown"
}

// EntryType says what a log entry carries.
type EntryType uint8

const (
	// EntryNormal carries application data.
	EntryNormal EntryType = iota
	// EntryNoop is the empty entry a new leader appends to commit entries
	// of earlier terms; it is never delivered to the application.
	EntryNoop
)

// Entry is one log entry. Entries are shared between the log and messages:
// nobody mutates an Entry or its Data once it is in a log.
type Entry struct {
	Index uint64
	Term  uint64
	Type  EntryType
	Data  []byte
}

// Application is the replicated state machine a Node drives.
//
// Apply receives each committed normal entry exactly once per node
// incarnation, in index order. Snapshot returns the application state as of
// the last applied entry; Restore replaces the state with one returned by
// Snapshot (possibly on another node). A restarted node gets Restore with its
// last snapshot (if any) and then Apply for the committed entries after it.
type Application interface {
	Apply(index uint64, data []byte)
	Snapshot() []byte
	Restore(data []byte)
}

// ReadHandler is an optional interface of an Application: ReadReady is
// called when a read started with Node.ReadIndex may be served from the
// local state (ok true: every write committed before the read started has
// been applied), or can no longer be confirmed (ok false: leadership lost).
type ReadHandler interface {
	ReadReady(ctx uint64, ok bool)
}

// Config configures a Node. Zero durations and limits take the defaults
// documented on each field.
type Config struct {
	// Peers lists every voting member, this node included.
	Peers []sim.NodeID
	// HeartbeatInterval is how often a leader sends heartbeats (default
	// 50ms).
	HeartbeatInterval time.Duration
	// ElectionTimeoutMin and ElectionTimeoutMax bound the randomized
	// election timeout (defaults 150ms and 300ms).
	ElectionTimeoutMin, ElectionTimeoutMax time.Duration
	// MaxBatchEntries and MaxBatchBytes bound one AppendEntries (defaults
	// 64 and 64 KiB; one entry is always allowed).
	MaxBatchEntries, MaxBatchBytes int
	// MaxInflight and MaxInflightBytes bound the AppendEntries in flight to
	// one follower (defaults 16 and 1 MiB).
	MaxInflight, MaxInflightBytes int
	// PreVote makes a node check that it could win before it disturbs the
	// cluster with a new term.
	PreVote bool
	// CheckQuorum makes a leader step down when it has not heard from a
	// quorum for an election timeout, and makes nodes ignore vote requests
	// while they believe in a live leader.
	CheckQuorum bool
	// SnapshotEvery compacts the log once this many entries have been
	// applied since the last snapshot (0: never).
	SnapshotEvery uint64
	// NewApp builds the application; nil gives a Node without one (entries
	// are committed, not applied anywhere). Called once per incarnation.
	NewApp func() Application
	// ObserveApply makes the node emit an Applied observation per applied
	// entry.
	ObserveApply bool

	// NoLeaderNoop skips the no-op entry a new leader appends. Entries of
	// earlier terms then commit only with the leader's next entry of its
	// own, so reads and commits wait for a client. It exists for
	// simulation: without the no-op the situations of the paper's Figure
	// 8 are easy to reach (raftsim.Nemesis builds them); leave it off in
	// real clusters.
	NoLeaderNoop bool
}

func (c *Config) fill() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 50 * time.Millisecond
	}
	if c.ElectionTimeoutMin <= 0 {
		c.ElectionTimeoutMin = 150 * time.Millisecond
	}
	if c.ElectionTimeoutMax <= c.ElectionTimeoutMin {
		c.ElectionTimeoutMax = 2 * c.ElectionTimeoutMin
	}
	if c.MaxBatchEntries <= 0 {
		c.MaxBatchEntries = 64
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 64 << 10
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = 16
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = 1 << 20
	}
}

// Messages between raft nodes.
//
// A Node sends AppendEntries and AppendEntriesReply, the messages of the
// steady state, as pointers (*AppendEntries, *AppendEntriesReply) carved
// from shared chunks, so that sending one costs no allocation of its own;
// Node.Step, Codec and IsMessage accept either form of both. Like every
// message they are immutable once sent: a receiver must not modify one
// (the same *AppendEntries may go to several followers).

// RequestVote asks for a vote (or, with PreVote, whether a vote would be
// granted in Term without anyone changing term).
type RequestVote struct {
	Term      uint64
	LastIndex uint64
	LastTerm  uint64
	PreVote   bool
	// Transfer marks an election started by leadership transfer: voters
	// skip the leader-lease check.
	Transfer bool
}

// RequestVoteReply answers a RequestVote.
type RequestVoteReply struct {
	Term    uint64
	Granted bool
	PreVote bool
}

// AppendEntries replicates entries after (PrevIndex, PrevTerm).
type AppendEntries struct {
	Term      uint64
	PrevIndex uint64
	PrevTerm  uint64
	Commit    uint64
	Entries   []Entry
}

// AppendEntriesReply answers AppendEntries and InstallSnapshot. On success
// Index is the last index known to match the leader; on rejection Index is
// the rejected PrevIndex and ConflictTerm/ConflictIndex let the leader skip
// a whole conflicting term at once (ConflictTerm 0: the follower's log ends
// before ConflictIndex).
type AppendEntriesReply struct {
	Term          uint64
	Success       bool
	Index         uint64
	ConflictTerm  uint64
	ConflictIndex uint64
}

// Heartbeat asserts leadership and carries the commit index the follower
// may adopt (never beyond what the leader knows it has). Seq confirms
// leadership for ReadIndex.
type Heartbeat struct {
	Term   uint64
	Commit uint64
	Seq    uint64
}

// HeartbeatReply answers a Heartbeat, echoing Seq.
type HeartbeatReply struct {
	Term uint64
	Seq  uint64
}

// InstallSnapshot sends a follower the leader's application snapshot.
type InstallSnapshot struct {
	Term     uint64
	Index    uint64
	LastTerm uint64
	Data     []byte
}

// TimeoutNow tells the leadership-transfer target to start an election at
// once.
type TimeoutNow struct {
	Term uint64
}

// Client messages (a Node answers them in standalone use).

// Propose asks the leader to replicate Data. The reply comes when the entry
// is applied on the leader, or at once if this node is not the leader.
type Propose struct {
	ID   uint64
	Data []byte
}

// ProposeReply answers Propose. OK false means "not leader (any more)";
// Leader is a hint (None if unknown).
type ProposeReply struct {
	ID     uint64
	OK     bool
	Index  uint64
	Leader sim.NodeID
}

// Read asks the leader for a linearizable read point (ReadIndex).
type Read struct {
	ID uint64
}

// ReadReply answers Read: with OK, every entry committed before the read
// began is applied on this node up to Index.
type ReadReply struct {
	ID     uint64
	OK     bool
	Index  uint64
	Leader sim.NodeID
}

// TransferLeader asks the leader to hand leadership to To.
type TransferLeader struct {
	To sim.NodeID
}

// Applied is the observation emitted per applied entry with
// Config.ObserveApply.
type Applied struct {
	Index uint64
	Term  uint64
	Data  []byte
}

// IsMessage reports whether m is a raft peer message (as opposed to a client
// message or another protocol's), so an embedding machine knows what to
// hand to Node.Step.
func IsMessage(m sim.Message) bool {
	switch m.(type) {
	case RequestVote, RequestVoteReply, AppendEntries, AppendEntriesReply,
		Heartbeat, HeartbeatReply, InstallSnapshot, TimeoutNow,
		*AppendEntries, *AppendEntriesReply:
		return true
	}
	return false
}

// TimerPrefix starts the name of every timer a Node sets; an embedding
// machine hands timer events with this prefix to Node.Step.
const TimerPrefix = "raft."

const (
	timerElection  = "raft.election"
	timerHeartbeat = "raft.heartbeat"
	timerQuorum    = "raft.quorum"
	timerTransfer  = "raft.transfer"
	timerCompact   = "raft.compact"
)
