package raft

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Progress states of a follower as seen by the leader.
const (
	stateProbe     uint8 = iota // one AppendEntries at a time, finding the match point
	stateReplicate              // pipelining entries optimistically
	stateSnapshot               // an InstallSnapshot is in flight
)

type inflight struct {
	last  uint64
	bytes int
}

// progress is the leader's (or candidate's) view of one member.
type progress struct {
	id           sim.NodeID
	match, next  uint64
	state        uint8
	paused       bool
	inflight     []inflight
	inflightSize int
	active       bool
	ackSeq       uint64
	lastProgress time.Duration
	lastAppend   time.Duration // when the last AppendEntries was sent
	pendingSnap  uint64
	vote         int8 // 1 granted, -1 refused, 0 unknown
}

type pendingProposal struct {
	index, term uint64
	from        sim.NodeID
	id          uint64
}

type readRequest struct {
	ctx       uint64
	from      sim.NodeID // None for Node.ReadIndex
	index     uint64
	hasIndex  bool
	seq       uint64
	confirmed bool
}

// Node is one Raft member written as a pure state machine. Use it as a
// sim.Machine on its own (clients send Propose, Read and TransferLeader
// messages) or embed it in another machine and call Propose, ReadIndex and
// TransferLeadership directly, handing it every raft message (IsMessage)
// and every timer whose name starts with TimerPrefix.
//
// The inspection methods (Term, Role, Commit, Entry, ...) are read-only
// views for checkers and tests.
type Node struct {
	cfg  Config
	id   sim.NodeID
	app  Application
	rand *rand.Rand
	now  time.Duration

	term   uint64
	vote   sim.NodeID
	role   Role
	leader sim.NodeID

	// The log: entry 0 of log has index snapIndex+1.
	log       entryLog
	snapIndex uint64
	snapTerm  uint64
	snapData  []byte
	commit    uint64
	applied   uint64

	prs     []progress
	self    int
	quorum  int
	scratch []uint64

	lastHeard time.Duration // last contact from the current leader
	// The election timeout elapses at electionDeadline; electionArmed says
	// whether a host timer is pending that will look at it.
	electionDeadline time.Duration
	electionArmed    bool
	hbSeq            uint64
	transferee       sim.NodeID
	compacting       bool
	journalNext      uint64
	skipped          int
	epoch            uint64 // bumped whenever log entries are replaced
	truncAt          uint64 // first index replaced by the latest epoch

	// Proposals from clients awaiting an answer are pending[pendingHead:].
	// (An index rather than reslicing pending as they are answered:
	// moving a slice's start is a pointer write, with a write barrier
	// while the collector runs, for every entry applied.)
	pending     []pendingProposal
	pendingHead int
	reads       []readRequest
	steps       uint64      // calls that may change state (Step, Propose, ...), so a checker can skip nodes left alone
	arena       recordArena // journal records are carved from here
	aeSlab      slab[AppendEntries]
	lastAE      *AppendEntries // the AppendEntries most recently put in aeSlab
	aerSlab     slab[AppendEntriesReply]
}

// New returns a Node for member id. It does nothing until its start event.
func New(id sim.NodeID, cfg Config) *Node {
	cfg.fill()
	n := &Node{cfg: cfg, id: id, vote: None, leader: None, transferee: None, self: -1}
	peers := slices.Clone(cfg.Peers)
	slices.Sort(peers)
	peers = slices.Compact(peers)
	n.prs = make([]progress, len(peers))
	for i, p := range peers {
		n.prs[i].id = p
		if p == id {
			n.self = i
		}
	}
	n.quorum = len(peers)/2 + 1
	n.scratch = make([]uint64, len(peers))
	return n
}

// Step handles one event.
func (n *Node) Step(ev sim.Event, out *sim.Effects) {
	n.now = ev.Now
	n.steps++
	if ev.Kind != sim.EventStart && n.rand == nil {
		// Not booted yet (a host may deliver a message that raced the
		// start event): behave as if it was lost.
		return
	}
	switch ev.Kind {
	case sim.EventMessage:
		// The steady state is almost all AppendEntries and replies: test
		// for them first, one comparison each, here rather than in
		// message (one call fewer for most events).
		if m, ok := ev.Msg.(*AppendEntries); ok && m != nil {
			n.onAppendEntries(ev.From, m, out)
			return
		}
		if m, ok := ev.Msg.(*AppendEntriesReply); ok && m != nil {
			n.onAppendEntriesReply(ev.From, m, out)
			return
		}
		n.message(ev.From, ev.Msg, out)
	case sim.EventStart:
		n.boot(ev.Boot, out)
	case sim.EventTimer:
		n.timer(ev.Timer, out)
	case sim.EventSynced:
		n.synced(ev.Token, out)
	}
}

func (n *Node) boot(b *sim.Boot, out *sim.Effects) {
	n.rand = b.Rand
	if n.cfg.NewApp != nil {
		n.app = n.cfg.NewApp()
	}
	j := &b.Journal
	if j.Snapshot != nil {
		if st, err := decodeSnapshot(j.Snapshot); err != nil {
			n.skipped++
		} else {
			n.term, n.vote = st.term, sim.NodeID(st.vote)
			n.snapIndex, n.snapTerm, n.snapData = st.index, st.lastTerm, st.app
			n.log.append(st.tail)
			if n.app != nil && n.snapIndex > 0 {
				n.app.Restore(st.app)
			}
		}
	}
	for _, raw := range j.Records {
		rec, err := decodeRecord(raw)
		if err != nil {
			n.skipped++
			continue
		}
		switch rec.kind {
		case recHardState:
			n.term, n.vote = rec.term, sim.NodeID(rec.vote)
		case recEntries:
			if rec.first > n.lastIndex()+1 {
				n.skipped++
				continue
			}
			es := rec.es
			if rec.first <= n.snapIndex {
				skip := n.snapIndex + 1 - rec.first
				if skip >= uint64(len(es)) {
					continue
				}
				es = es[skip:]
			}
			n.log.truncate(int(es[0].Index - n.snapIndex - 1))
			n.log.append(es)
		}
	}
	n.journalNext = j.Next()
	n.commit, n.applied = n.snapIndex, n.snapIndex
	n.role = Follower
	n.resetElectionTimer(out)
}

// ---- log helpers ----

func (n *Node) lastIndex() uint64 { return n.snapIndex + uint64(n.log.len()) }

func (n *Node) lastTerm() uint64 {
	if n.log.len() == 0 {
		return n.snapTerm
	}
	return n.log.at(n.log.len() - 1).Term
}

// termAt returns the term of the entry at index i, if the node knows it.
func (n *Node) termAt(i uint64) (uint64, bool) {
	switch {
	case i == n.snapIndex:
		return n.snapTerm, true
	case i < n.snapIndex || i > n.lastIndex():
		return 0, false
	}
	return n.entry(i).Term, true
}

// entry returns the entry at index i, which must be in the log (after the
// snapshot, at most lastIndex).
func (n *Node) entry(i uint64) *Entry { return n.log.at(int(i - n.snapIndex - 1)) }

// pr returns the progress of member id, or nil if id is not a member.
func (n *Node) pr(id sim.NodeID) *progress {
	// Members are usually numbered 0..n-1, and prs is sorted by id, so
	// member id is then at index id: one comparison instead of a search.
	if uint64(id) < uint64(len(n.prs)) && n.prs[id].id == id {
		return &n.prs[id]
	}
	for i := range n.prs {
		if n.prs[i].id == id {
			return &n.prs[i]
		}
	}
	return nil
}

// ---- durability ----

func (n *Node) persistHardState(out *sim.Effects) {
	out.Append(encodeHardState(n.term, int64(n.vote)))
	out.Sync()
	n.journalNext++
}

func (n *Node) persistEntries(es []Entry, out *sim.Effects) {
	// (recordArena.entries, with its usual case here: one call fewer.)
	var rec []byte
	if len(es) == 1 {
		rec = n.arena.oneEntry(&es[0])
	}
	if rec == nil {
		rec = n.arena.batch(es)
	}
	n.persistRecord(rec, out)
}

// persistRecord writes the journal record rec.
func (n *Node) persistRecord(rec []byte, out *sim.Effects) {
	out.Append(rec)
	out.Sync()
	n.journalNext++
}

func (n *Node) saveSnapshot(out *sim.Effects) {
	st := snapshotState{term: n.term, vote: int64(n.vote), index: n.snapIndex,
		lastTerm: n.snapTerm, app: n.snapData, tail: n.log.all()}
	out.SaveSnapshot(encodeSnapshot(&st), n.journalNext)
	out.Sync()
}

// ---- timers ----

// resetElectionTimer restarts the election timeout with a fresh random
// length. The host timer is armed lazily: while one is pending, a reset
// only moves the deadline, and the timer re-arms itself for the rest when
// it fires early. This keeps a follower from issuing a timer operation for
// every message it gets from the leader.
func (n *Node) resetElectionTimer(out *sim.Effects) {
	lo, hi := n.cfg.ElectionTimeoutMin, n.cfg.ElectionTimeoutMax
	n.electionDeadline = n.now + lo + time.Duration(n.rand.Int64N(int64(hi-lo)))
	if !n.electionArmed {
		n.electionArmed = true
		out.SetTimer(timerElection, n.electionDeadline-n.now)
	}
}

func (n *Node) timer(name string, out *sim.Effects) {
	switch name {
	case timerElection:
		n.electionArmed = false
		if n.role == Leader || n.self < 0 {
			return
		}
		// (Within a millisecond counts as expired: a host converting
		// between drifting clocks may round a tiny remainder to zero.)
		if n.electionDeadline-n.now > time.Millisecond {
			n.electionArmed = true
			out.SetTimer(timerElection, n.electionDeadline-n.now)
			return
		}
		n.campaign(n.cfg.PreVote, false, out)
	case timerHeartbeat:
		if n.role == Leader {
			n.heartbeat(false, out)
			out.SetTimer(timerHeartbeat, n.cfg.HeartbeatInterval)
		}
	case timerQuorum:
		if n.role == Leader {
			n.checkQuorum(out)
		}
	case timerTransfer:
		n.transferee = None
	case timerCompact:
		n.compacting = false
		n.compact(out)
	}
}

// ---- role changes ----

func (n *Node) becomeFollower(term uint64, leader sim.NodeID, out *sim.Effects) {
	if term != n.term {
		n.term, n.vote = term, None
		n.persistHardState(out)
	}
	if n.role == Leader {
		out.CancelTimer(timerHeartbeat)
		out.CancelTimer(timerQuorum)
		n.failPending(out)
	}
	n.role = Follower
	n.leader = leader
	n.transferee = None
	n.resetElectionTimer(out)
}

func (n *Node) campaign(pre, transfer bool, out *sim.Effects) {
	for i := range n.prs {
		n.prs[i].vote = 0
	}
	n.prs[n.self].vote = 1
	term := n.term + 1
	if pre {
		n.role = PreCandidate
	} else {
		n.role = Candidate
		n.term, n.vote = term, n.id
		n.persistHardState(out)
	}
	n.leader = None
	n.resetElectionTimer(out)
	if n.votes() >= n.quorum {
		n.wonElection(pre, out)
		return
	}
	m := RequestVote{Term: term, LastIndex: n.lastIndex(), LastTerm: n.lastTerm(), PreVote: pre, Transfer: transfer}
	for i := range n.prs {
		if i != n.self {
			out.Send(n.prs[i].id, m)
		}
	}
}

func (n *Node) votes() int {
	c := 0
	for i := range n.prs {
		if n.prs[i].vote > 0 {
			c++
		}
	}
	return c
}

func (n *Node) wonElection(pre bool, out *sim.Effects) {
	if pre {
		n.campaign(false, false, out)
		return
	}
	n.becomeLeader(out)
}

func (n *Node) becomeLeader(out *sim.Effects) {
	n.role = Leader
	n.leader = n.id
	n.transferee = None
	n.hbSeq = 0
	out.CancelTimer(timerElection)
	n.electionArmed = false
	last := n.lastIndex()
	for i := range n.prs {
		p := &n.prs[i]
		p.match, p.next = 0, last+1
		p.state, p.paused = stateProbe, false
		p.inflight, p.inflightSize = p.inflight[:0], 0
		p.active, p.ackSeq, p.lastProgress = false, 0, n.now
	}
	// The whole log is durable: the host synced it before the vote
	// requests of the election this node just won left.
	n.prs[n.self].match = last
	if !n.cfg.NoLeaderNoop {
		n.appendLocal(EntryNoop, nil, out)
	}
	for i := range n.prs {
		if i != n.self {
			n.sendAppend(&n.prs[i], out)
		}
	}
	out.SetTimer(timerHeartbeat, n.cfg.HeartbeatInterval)
	if n.cfg.CheckQuorum {
		out.SetTimer(timerQuorum, n.cfg.ElectionTimeoutMin)
	}
}

// appendLocal appends one entry to the leader's log and starts writing it.
// The leader counts its own copy toward a quorum only once the host says
// the write is durable (synced); meanwhile it already sends the entry to
// the followers (sendAppend uses SendEarly), so the leader's write and the
// followers' run in parallel.
func (n *Node) appendLocal(t EntryType, data []byte, out *sim.Effects) uint64 {
	e := Entry{Index: n.lastIndex() + 1, Term: n.term, Type: t, Data: data}
	rec := n.arena.oneEntry(n.log.appendOwn(&e))
	if rec == nil {
		rec = n.arena.batch(n.log.slice(n.log.len()-1, n.log.len()))
	}
	n.persistRecord(rec, out)
	out.NotifySynced(e.Index)
	return e.Index
}

// synced handles the host's word that the log is durable up to index idx,
// as of the event that appended entry idx. Only a leader cares, and only
// for entries of its own term. A notification from an earlier leadership
// cannot pass for one of this: notifications arrive in order, each once
// the writes before it are durable, and this node's vote requests of the
// election it won left only after all of its earlier writes were durable;
// the votes came back later still.
func (n *Node) synced(idx uint64, out *sim.Effects) {
	if n.role != Leader || n.self < 0 {
		return
	}
	if t, ok := n.termAt(idx); !ok || t != n.term {
		return
	}
	if p := &n.prs[n.self]; idx > p.match {
		p.match = idx
		n.maybeCommit(out)
	}
}

// ---- leader: replication ----

func (n *Node) sendAppend(p *progress, out *sim.Effects) bool {
	return n.sendAppendVia(p, nil, out)
}

// appendBatch is the AppendEntries sendAppendVia built for a follower
// whose next index was next, with the index of its last entry (its
// PrevIndex if it has none) and its size in bytes.
type appendBatch struct {
	next uint64
	msg  *AppendEntries
	last uint64
	size int
}

// sendAppendVia is sendAppend for one of several followers handled in a
// row with nothing else changing in between (the followers in step, after
// a proposal): b remembers the message sent to one of them, and a
// follower at the same next index gets that message without it being built
// again (it would be equal: the batch depends on the next index alone). b
// may be nil.
func (n *Node) sendAppendVia(p *progress, b *appendBatch, out *sim.Effects) bool {
	switch p.state {
	case stateSnapshot:
		return false
	case stateProbe:
		if p.paused {
			return false
		}
	case stateReplicate:
		if len(p.inflight) >= n.cfg.MaxInflight || p.inflightSize >= n.cfg.MaxInflightBytes || p.next > n.lastIndex() {
			return false
		}
	}
	var msg *AppendEntries
	var last uint64
	var size int
	if b != nil && b.msg != nil && b.next == p.next {
		msg, last, size = b.msg, b.last, b.size
	} else {
		prev := p.next - 1
		prevTerm, ok := n.termAt(prev)
		if !ok {
			if prev < n.snapIndex {
				n.sendSnapshot(p, out)
				return true
			}
			// next is beyond our log (cannot normally happen): fall back.
			p.next = n.lastIndex() + 1
			prev = p.next - 1
			prevTerm, _ = n.termAt(prev)
		}
		lo := int(prev - n.snapIndex) // position of entry next in the log
		hi := lo
		for hi < n.log.len() && hi-lo < n.cfg.MaxBatchEntries {
			sz := len(n.log.at(hi).Data) + 12
			if hi > lo && size+sz > n.cfg.MaxBatchBytes {
				break
			}
			size += sz
			hi++
		}
		m := AppendEntries{Term: n.term, PrevIndex: prev, PrevTerm: prevTerm, Commit: n.commit}
		if hi > lo {
			m.Entries = n.log.slice(lo, hi)
		}
		msg, last = n.appendMessage(&m), prev+uint64(hi-lo)
		if b != nil && ok {
			*b = appendBatch{next: prev + 1, msg: msg, last: last, size: size}
		}
	}
	// Early: nothing in msg relies on the leader's own unsynced writes (its
	// term was durable before it could win; its commit index counts only
	// durable copies), so it need not wait for the leader's fsync.
	out.SendEarly(p.id, msg)
	p.lastAppend = n.now
	if p.state == stateReplicate {
		if len(p.inflight) == 0 {
			p.lastProgress = n.now
		}
		p.next = last + 1
		p.inflight = append(p.inflight, inflight{last: last, bytes: size})
		p.inflightSize += size
	} else {
		p.paused = true
	}
	return true
}

// appendMessage returns m as a message to send: the one sent last if that
// is equal to m, else a copy of m from the slab. Followers that keep up
// with the leader all get the same AppendEntries for a new entry, and a
// message is immutable once sent, so one copy serves them all.
func (n *Node) appendMessage(m *AppendEntries) *AppendEntries {
	if a := n.lastAE; a != nil && a.Term == m.Term && a.PrevIndex == m.PrevIndex &&
		a.PrevTerm == m.PrevTerm && a.Commit == m.Commit && sameEntries(a.Entries, m.Entries) {
		return a
	}
	// Field by field, not *a = *m: while the collector runs, copying a
	// whole struct that holds a pointer takes the runtime's bulk write
	// barrier, several times dearer than that of one pointer field.
	a := n.aeSlab.alloc()
	a.Term, a.PrevIndex, a.PrevTerm, a.Commit = m.Term, m.PrevIndex, m.PrevTerm, m.Commit
	a.Entries = m.Entries
	n.lastAE = a
	return a
}

// sameEntries reports whether a and b are the same slice of the same
// array (not merely equal entries: that would take a comparison per entry).
func sameEntries(a, b []Entry) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

func (n *Node) sendSnapshot(p *progress, out *sim.Effects) {
	p.state = stateSnapshot
	p.pendingSnap = n.snapIndex
	p.lastProgress = n.now
	out.SendEarly(p.id, InstallSnapshot{Term: n.term, Index: n.snapIndex, LastTerm: n.snapTerm, Data: n.snapData})
}

func (n *Node) becomeReplicate(p *progress) {
	p.state, p.paused = stateReplicate, false
	p.next = p.match + 1
	p.inflight, p.inflightSize = p.inflight[:0], 0
	p.lastProgress = n.now
}

func (n *Node) becomeProbe(p *progress, next uint64) {
	p.state, p.paused = stateProbe, false
	p.next = max(next, p.match+1)
	p.inflight, p.inflightSize = p.inflight[:0], 0
	p.lastProgress = n.now
}

func (n *Node) freeInflight(p *progress, upTo uint64) {
	k := 0
	for k < len(p.inflight) && p.inflight[k].last <= upTo {
		p.inflightSize -= p.inflight[k].bytes
		k++
	}
	switch {
	case k == len(p.inflight):
		// The usual case (one or two messages in flight, all acked):
		// nothing to move.
		p.inflight = p.inflight[:0]
	case k > 0:
		p.inflight = append(p.inflight[:0], p.inflight[k:]...)
	}
}

// heartbeat starts a heartbeat round. Unless forced (a ReadIndex needs
// every member's echo), a follower that got an AppendEntries within the
// last half interval is skipped: that message already asserted leadership
// and carried a commit index, and a follower still learns a newer one
// within one and a half intervals once the stream of entries stops.
func (n *Node) heartbeat(force bool, out *sim.Effects) {
	n.hbSeq++
	for i := range n.prs {
		if i == n.self {
			continue
		}
		p := &n.prs[i]
		if force || p.state != stateReplicate || n.now-p.lastAppend >= n.cfg.HeartbeatInterval/2 {
			out.SendEarly(p.id, Heartbeat{Term: n.term, Commit: min(p.match, n.commit), Seq: n.hbSeq})
		}
		switch p.state {
		case stateProbe:
			p.paused = false
			if p.match < n.lastIndex() {
				n.sendAppend(p, out)
			}
		case stateReplicate:
			// Every message in flight may have been lost: start over.
			if len(p.inflight) > 0 && n.now-p.lastProgress > n.cfg.ElectionTimeoutMin {
				n.becomeProbe(p, p.match+1)
				n.sendAppend(p, out)
			}
		case stateSnapshot:
			if n.now-p.lastProgress > n.cfg.ElectionTimeoutMin {
				n.becomeProbe(p, p.match+1)
				n.sendAppend(p, out)
			}
		}
	}
}

func (n *Node) checkQuorum(out *sim.Effects) {
	active := 0
	for i := range n.prs {
		if i == n.self || n.prs[i].active {
			active++
		}
		n.prs[i].active = false
	}
	if active < n.quorum {
		n.becomeFollower(n.term, None, out)
		return
	}
	out.SetTimer(timerQuorum, n.cfg.ElectionTimeoutMin)
}

// maybeCommit advances the commit index to the highest index stored on a
// quorum, but only if that entry is from the leader's own term (an entry of
// an earlier term is committed indirectly, never by counting replicas).
func (n *Node) maybeCommit(out *sim.Effects) {
	if n.role != Leader {
		return
	}
	// The quorum-th highest match exceeds the commit index exactly when a
	// quorum of matches do; most calls (an acknowledgement that moves one
	// follower ahead of the rest) end here without sorting.
	ahead, lowest := 0, uint64(0)
	prs, commit := n.prs, n.commit // (locals: the loop then keeps them in registers)
	for i := range prs {
		if m := prs[i].match; m > commit {
			if ahead == 0 || m < lowest {
				lowest = m
			}
			ahead++
		}
	}
	if ahead < n.quorum {
		return
	}
	// With exactly a quorum ahead (the usual case: the acknowledgement
	// that completes a quorum) the quorum-th highest match is the lowest
	// of theirs; otherwise sort.
	idx := lowest
	if ahead > n.quorum {
		for i := range n.prs {
			n.scratch[i] = n.prs[i].match
		}
		slices.Sort(n.scratch)
		idx = n.scratch[len(n.scratch)-n.quorum]
	}
	if idx <= n.commit {
		return
	}
	if t, _ := n.termAt(idx); t != n.term {
		return
	}
	n.commitTo(idx, out)
}

func (n *Node) commitTo(idx uint64, out *sim.Effects) {
	if idx <= n.commit {
		return
	}
	n.commit = idx
	n.applyCommitted(out)
}

func (n *Node) applyCommitted(out *sim.Effects) {
	for n.applied < n.commit {
		i := n.applied + 1
		e := n.entry(i)
		if e.Type == EntryNormal && n.app != nil {
			n.app.Apply(i, e.Data)
		}
		if n.cfg.ObserveApply {
			out.Observe(Applied{Index: i, Term: e.Term, Data: e.Data})
		}
		n.applied = i
		for n.pendingHead < len(n.pending) && n.pending[n.pendingHead].index <= i {
			pp := n.pending[n.pendingHead]
			n.pendingHead++
			ok := pp.index == i && pp.term == e.Term
			out.Send(pp.from, ProposeReply{ID: pp.id, OK: ok, Index: pp.index, Leader: n.leader})
		}
	}
	if n.pendingHead > 0 && n.pendingHead == len(n.pending) {
		n.pending, n.pendingHead = n.pending[:0], 0
	}
	if len(n.reads) > 0 {
		n.processReads(out)
	}
	if n.cfg.SnapshotEvery > 0 && n.app != nil && !n.compacting && n.applied-n.snapIndex >= n.cfg.SnapshotEvery {
		n.compacting = true
		out.SetTimer(timerCompact, 0)
	}
}

// compact replaces the log prefix up to the applied index with an
// application snapshot, in memory and in the journal.
func (n *Node) compact(out *sim.Effects) {
	if n.app == nil || n.applied <= n.snapIndex {
		return
	}
	data := n.app.Snapshot()
	t, _ := n.termAt(n.applied)
	n.log.dropFront(int(n.applied - n.snapIndex))
	n.snapIndex, n.snapTerm, n.snapData = n.applied, t, data
	n.saveSnapshot(out)
}

func (n *Node) failPending(out *sim.Effects) {
	for _, pp := range n.pending[n.pendingHead:] {
		out.Send(pp.from, ProposeReply{ID: pp.id, Index: pp.index, Leader: None})
	}
	n.pending, n.pendingHead = nil, 0
	for _, r := range n.reads {
		n.finishRead(r, false, out)
	}
	n.reads = nil
}

// ---- messages ----

// message handles a message other than the pointer forms of AppendEntries
// and AppendEntriesReply, which Step dispatches itself.
func (n *Node) message(from sim.NodeID, msg sim.Message, out *sim.Effects) {
	switch m := msg.(type) {
	case RequestVote:
		n.onRequestVote(from, m, out)
	case RequestVoteReply:
		n.onRequestVoteReply(from, m, out)
	case AppendEntries:
		n.onAppendEntries(from, &m, out)
	case AppendEntriesReply:
		n.onAppendEntriesReply(from, &m, out)
	case Heartbeat:
		n.onHeartbeat(from, m, out)
	case HeartbeatReply:
		n.onHeartbeatReply(from, m, out)
	case InstallSnapshot:
		n.onInstallSnapshot(from, m, out)
	case TimeoutNow:
		n.onTimeoutNow(from, m, out)
	case Propose:
		if _, ok := n.propose(m.Data, from, m.ID, out); !ok {
			out.Send(from, ProposeReply{ID: m.ID, Leader: n.leader})
		}
	case Read:
		if !n.readIndex(m.ID, from, out) {
			out.Send(from, ReadReply{ID: m.ID, Leader: n.leader})
		}
	case TransferLeader:
		n.TransferLeadership(m.To, out)
	}
}

// inLease reports whether this node believes in a live leader: it is the
// leader, or it heard from one less than an election timeout ago.
func (n *Node) inLease() bool {
	if n.role == Leader {
		return true
	}
	return n.leader != None && n.now-n.lastHeard < n.cfg.ElectionTimeoutMin
}

func (n *Node) upToDate(lastIndex, lastTerm uint64) bool {
	lt := n.lastTerm()
	return lastTerm > lt || (lastTerm == lt && lastIndex >= n.lastIndex())
}

func (n *Node) onRequestVote(from sim.NodeID, m RequestVote, out *sim.Effects) {
	if n.pr(from) == nil {
		return
	}
	if m.Term < n.term {
		out.Send(from, RequestVoteReply{Term: n.term, PreVote: m.PreVote})
		return
	}
	if m.Term > n.term && !m.Transfer && n.inLease() && (m.PreVote || n.cfg.CheckQuorum) {
		// A live leader exists: do not let a node that lost contact
		// depose it.
		if m.PreVote {
			out.Send(from, RequestVoteReply{Term: n.term, PreVote: true})
		}
		return
	}
	if m.PreVote {
		grant := n.upToDate(m.LastIndex, m.LastTerm) &&
			(m.Term > n.term || (n.vote == None || n.vote == from) && n.leader == None)
		t := n.term
		if grant {
			t = m.Term
		}
		out.Send(from, RequestVoteReply{Term: t, Granted: grant, PreVote: true})
		return
	}
	if m.Term > n.term {
		n.becomeFollower(m.Term, None, out)
	}
	grant := (n.vote == None || n.vote == from) && n.upToDate(m.LastIndex, m.LastTerm)
	if grant {
		if n.vote != from {
			n.vote = from
			n.persistHardState(out)
		}
		n.resetElectionTimer(out)
	}
	out.Send(from, RequestVoteReply{Term: n.term, Granted: grant})
}

func (n *Node) onRequestVoteReply(from sim.NodeID, m RequestVoteReply, out *sim.Effects) {
	p := n.pr(from)
	if p == nil {
		return
	}
	if m.PreVote {
		if n.role != PreCandidate {
			return
		}
		if !m.Granted && m.Term > n.term {
			n.becomeFollower(m.Term, None, out)
			return
		}
		if m.Granted && m.Term != n.term+1 {
			return
		}
	} else {
		if m.Term > n.term {
			n.becomeFollower(m.Term, None, out)
			return
		}
		if m.Term < n.term || n.role != Candidate {
			return
		}
	}
	if p.vote == 0 {
		p.vote = -1
		if m.Granted {
			p.vote = 1
		}
	}
	if n.votes() >= n.quorum {
		n.wonElection(m.PreVote, out)
	}
}

// heardFromLeader handles the common part of every message from a leader in
// a term at least ours; it reports false if the message is stale.
func (n *Node) heardFromLeader(from sim.NodeID, term uint64, out *sim.Effects) bool {
	if term < n.term {
		return false
	}
	if term > n.term || n.role != Follower {
		n.becomeFollower(term, from, out)
	} else {
		n.resetElectionTimer(out)
	}
	n.leader = from
	n.lastHeard = n.now
	return true
}

// onAppendEntries handles m, which it must not modify (it may be a message
// shared with the sender).
func (n *Node) onAppendEntries(from sim.NodeID, m *AppendEntries, out *sim.Effects) {
	if n.pr(from) == nil {
		return
	}
	if !n.heardFromLeader(from, m.Term, out) {
		n.rejectAppend(from, m.PrevIndex, 0, 0, out)
		return
	}
	prev, prevTerm, es := m.PrevIndex, m.PrevTerm, m.Entries
	for k := range es {
		if es[k].Index != prev+1+uint64(k) || prev > maxIndex {
			return // malformed: entries must follow PrevIndex
		}
	}
	if prev < n.commit {
		// Everything up to our commit index is known to match.
		skip := n.commit - prev
		if skip >= uint64(len(es)) {
			n.ackAppend(from, n.commit, out)
			return
		}
		prev, prevTerm, es = n.commit, es[skip-1].Term, es[skip:]
	}
	t, ok := n.termAt(prev)
	if !ok {
		n.rejectAppend(from, m.PrevIndex, 0, n.lastIndex()+1, out)
		return
	}
	if t != prevTerm {
		i := prev
		for i > n.commit+1 && i > n.snapIndex+1 {
			if pt, _ := n.termAt(i - 1); pt != t {
				break
			}
			i--
		}
		n.rejectAppend(from, m.PrevIndex, t, i, out)
		return
	}
	last := n.lastIndex()
	for k := range es {
		e := &es[k]
		if e.Index <= last {
			if et, _ := n.termAt(e.Index); et == e.Term {
				continue // already have it: never truncate a matching entry
			}
			if e.Index <= n.commit {
				return // would truncate a committed entry: impossible from a valid leader
			}
			n.log.truncate(int(e.Index - n.snapIndex - 1))
			n.epoch++
			n.truncAt = e.Index
		}
		n.log.append(es[k:])
		n.persistEntries(es[k:], out)
		break
	}
	lastNew := prev + uint64(len(es))
	if m.Commit > n.commit {
		n.commitTo(min(m.Commit, lastNew), out)
	}
	n.ackAppend(from, lastNew, out)
}

// ackAppend answers leader to that this node's log matches its own up to
// index, in an AppendEntriesReply from the node's slab (see slab).
func (n *Node) ackAppend(to sim.NodeID, index uint64, out *sim.Effects) {
	// Written in place, field by field: building the reply as a value and
	// copying it into the slab read back, as one block, a struct just
	// written field by field, a load the processor cannot serve from its
	// pending stores; that stall cost more than the rest of the reply.
	r := n.aerSlab.alloc()
	r.Term, r.Success, r.Index = n.term, true, index
	out.Send(to, r)
}

// rejectAppend answers leader to that its AppendEntries (or snapshot) at
// index was refused, with the conflict hint, in the way of ackAppend.
func (n *Node) rejectAppend(to sim.NodeID, index, conflictTerm, conflictIndex uint64, out *sim.Effects) {
	r := n.aerSlab.alloc()
	r.Term, r.Index, r.ConflictTerm, r.ConflictIndex = n.term, index, conflictTerm, conflictIndex
	out.Send(to, r)
}

// replyFrom handles the term of a reply sent to a leader: a newer term makes
// this node step down. It returns the sender's progress, marked active, only
// while this node is still the leader of the reply's term; nil otherwise.
func (n *Node) replyFrom(from sim.NodeID, term uint64, out *sim.Effects) *progress {
	p := n.pr(from)
	if p == nil {
		return nil
	}
	if term > n.term {
		n.becomeFollower(term, None, out)
		return nil
	}
	if term < n.term || n.role != Leader {
		return nil
	}
	p.active = true
	return p
}

func (n *Node) onAppendEntriesReply(from sim.NodeID, m *AppendEntriesReply, out *sim.Effects) {
	p := n.replyFrom(from, m.Term, out)
	if p == nil {
		return
	}
	if m.Success {
		if m.Index > p.match || (m.Index == p.match && p.state == stateProbe) {
			if m.Index > p.match {
				p.match = m.Index
				p.lastProgress = n.now
			}
			switch p.state {
			case stateProbe:
				n.becomeReplicate(p)
			case stateSnapshot:
				if p.match >= p.pendingSnap {
					n.becomeReplicate(p)
				}
			case stateReplicate:
				n.freeInflight(p, m.Index)
			}
			if p.next <= p.match {
				p.next = p.match + 1
			}
			// A match at or below the commit index leaves the matches
			// above it, all maybeCommit looks at, as they were when it
			// last ran (it runs after every change to a match, except
			// becomeLeader's reset, which leaves a quorum ahead only for
			// a lone member, and a lone member gets no replies): it could
			// only find what it found then. The usual case: the acks
			// after the one that completed the quorum.
			if p.match > n.commit {
				n.maybeCommit(out)
			}
			if n.transferee == from && p.match == n.lastIndex() {
				out.Send(from, TimeoutNow{Term: n.term})
			}
		}
		// (A follower in step with nothing left to send, the usual case,
		// is told apart here without a call: a part of sendAppendVia's
		// own test, which it must stay.)
		for n.role == Leader && (p.state != stateReplicate || p.next <= n.lastIndex()) && n.sendAppend(p, out) {
		}
		return
	}
	// Rejected.
	switch p.state {
	case stateReplicate:
		if m.Index <= p.match {
			return
		}
	case stateProbe:
		if m.Index != p.next-1 {
			return
		}
	default:
		return
	}
	next := m.ConflictIndex
	if m.ConflictTerm > 0 {
		j := min(m.Index, n.lastIndex())
		for j > n.snapIndex {
			t, _ := n.termAt(j)
			if t <= m.ConflictTerm {
				if t == m.ConflictTerm {
					next = j + 1
				}
				break
			}
			j--
		}
	}
	next = min(next, m.Index)
	n.becomeProbe(p, next)
	n.sendAppend(p, out)
}

func (n *Node) onHeartbeat(from sim.NodeID, m Heartbeat, out *sim.Effects) {
	if n.pr(from) == nil {
		return
	}
	if !n.heardFromLeader(from, m.Term, out) {
		out.Send(from, HeartbeatReply{Term: n.term, Seq: m.Seq})
		return
	}
	if m.Commit > n.commit {
		n.commitTo(min(m.Commit, n.lastIndex()), out)
	}
	out.Send(from, HeartbeatReply{Term: n.term, Seq: m.Seq})
}

func (n *Node) onHeartbeatReply(from sim.NodeID, m HeartbeatReply, out *sim.Effects) {
	p := n.replyFrom(from, m.Term, out)
	if p == nil {
		return
	}
	if m.Seq > p.ackSeq {
		p.ackSeq = m.Seq
	}
	if p.state == stateProbe {
		p.paused = false
	}
	if p.match < n.lastIndex() {
		n.sendAppend(p, out)
	}
	n.processReads(out)
}

func (n *Node) onInstallSnapshot(from sim.NodeID, m InstallSnapshot, out *sim.Effects) {
	if n.pr(from) == nil {
		return
	}
	if !n.heardFromLeader(from, m.Term, out) {
		n.rejectAppend(from, m.Index, 0, 0, out)
		return
	}
	if m.Index <= n.commit || m.Index > maxIndex {
		n.ackAppend(from, n.commit, out)
		return
	}
	if t, ok := n.termAt(m.Index); ok && t == m.LastTerm {
		n.log.dropFront(int(m.Index - n.snapIndex))
	} else {
		n.log = entryLog{}
	}
	n.snapIndex, n.snapTerm, n.snapData = m.Index, m.LastTerm, m.Data
	n.commit, n.applied = m.Index, m.Index
	n.epoch++
	n.truncAt = m.Index + 1
	if n.app != nil {
		n.app.Restore(m.Data)
	}
	n.saveSnapshot(out)
	n.ackAppend(from, m.Index, out)
}

func (n *Node) onTimeoutNow(from sim.NodeID, m TimeoutNow, out *sim.Effects) {
	if n.pr(from) == nil || m.Term < n.term || n.self < 0 {
		return
	}
	if m.Term > n.term {
		n.becomeFollower(m.Term, from, out)
	}
	if n.role != Leader {
		n.campaign(false, true, out)
	}
}

// ---- application-facing API ----

// Propose appends data to the log if this node is the leader and no
// leadership transfer is under way. It returns the entry's index; the entry
// is delivered through Application.Apply once committed (a change of leader
// may still discard it).
func (n *Node) Propose(data []byte, out *sim.Effects) (index uint64, ok bool) {
	n.steps++
	return n.propose(data, None, 0, out)
}

func (n *Node) propose(data []byte, from sim.NodeID, id uint64, out *sim.Effects) (uint64, bool) {
	if n.role != Leader || n.transferee != None {
		return 0, false
	}
	if from != None {
		if h := n.pendingHead; h > 0 && len(n.pending) == cap(n.pending) && h >= len(n.pending)/2 {
			// Full, and at least half of it answered: move the rest
			// down rather than grow (at most half moves, so this is
			// amortised constant time per proposal).
			k := copy(n.pending, n.pending[h:])
			n.pending, n.pendingHead = n.pending[:k], 0
		}
		n.pending = append(n.pending, pendingProposal{index: n.lastIndex() + 1, term: n.term, from: from, id: id})
	}
	i := n.appendLocal(EntryNormal, data, out)
	var b appendBatch
	for k := range n.prs {
		if k != n.self && n.prs[k].state == stateReplicate {
			n.sendAppendVia(&n.prs[k], &b, out)
		}
	}
	return i, true
}

// ReadIndex starts a linearizable read identified by ctx. If this node is
// the leader it returns true, and later calls the application's ReadReady
// (see ReadHandler) once every entry committed before now is applied here
// and a quorum has confirmed the leadership after now. It writes nothing to
// the log.
func (n *Node) ReadIndex(ctx uint64, out *sim.Effects) bool {
	n.steps++
	return n.readIndex(ctx, None, out)
}

func (n *Node) readIndex(ctx uint64, from sim.NodeID, out *sim.Effects) bool {
	if n.role != Leader {
		return false
	}
	r := readRequest{ctx: ctx, from: from, seq: n.hbSeq + 1}
	if t, _ := n.termAt(n.commit); t == n.term {
		r.index, r.hasIndex = n.commit, true
	}
	n.reads = append(n.reads, r)
	if n.quorum == 1 {
		n.hbSeq++
	} else {
		n.heartbeat(true, out)
	}
	n.processReads(out)
	return true
}

func (n *Node) processReads(out *sim.Effects) {
	if len(n.reads) == 0 || n.role != Leader {
		return
	}
	inTerm := false
	if t, _ := n.termAt(n.commit); t == n.term {
		inTerm = true
	}
	done := 0
	for k := range n.reads {
		r := &n.reads[k]
		if !r.hasIndex && inTerm {
			r.index, r.hasIndex = n.commit, true
		}
		if !r.confirmed {
			acks := 0
			for i := range n.prs {
				if i == n.self || n.prs[i].ackSeq >= r.seq {
					acks++
				}
			}
			r.confirmed = acks >= n.quorum
		}
		if !r.confirmed || !r.hasIndex || n.applied < r.index {
			break
		}
		n.finishRead(*r, true, out)
		done++
	}
	if done > 0 {
		n.reads = append(n.reads[:0], n.reads[done:]...)
	}
}

func (n *Node) finishRead(r readRequest, ok bool, out *sim.Effects) {
	if r.from != None {
		rr := ReadReply{ID: r.ctx, OK: ok, Leader: n.leader}
		if ok {
			rr.Index = r.index
		}
		out.Send(r.from, rr)
		return
	}
	if h, isH := n.app.(ReadHandler); isH {
		h.ReadReady(r.ctx, ok)
	}
}

// TransferLeadership asks the leader to hand over to member to: it stops
// accepting proposals, brings to up to date and tells it to start an
// election at once. The transfer is abandoned after an election timeout.
func (n *Node) TransferLeadership(to sim.NodeID, out *sim.Effects) bool {
	n.steps++
	p := n.pr(to)
	if n.role != Leader || p == nil || to == n.id {
		return false
	}
	n.transferee = to
	out.SetTimer(timerTransfer, n.cfg.ElectionTimeoutMin)
	if p.match == n.lastIndex() {
		out.Send(to, TimeoutNow{Term: n.term})
	} else {
		n.sendAppend(p, out)
	}
	return true
}

// ---- inspection (read-only) ----

// ID is the node's own id.
func (n *Node) ID() sim.NodeID { return n.id }

// Term is the current term.
func (n *Node) Term() uint64 { return n.term }

// Vote is the member voted for in the current term, or None.
func (n *Node) Vote() sim.NodeID { return n.vote }

// Role is the node's current role.
func (n *Node) Role() Role { return n.role }

// Leader is the leader this node currently follows (itself if leader), or
// None.
func (n *Node) Leader() sim.NodeID { return n.leader }

// Commit is the highest index known committed.
func (n *Node) Commit() uint64 { return n.commit }

// Applied is the highest index applied.
func (n *Node) Applied() uint64 { return n.applied }

// SnapshotIndex is the last index covered by the snapshot (0: none).
func (n *Node) SnapshotIndex() uint64 { return n.snapIndex }

// LastIndex is the index of the last log entry.
func (n *Node) LastIndex() uint64 { return n.lastIndex() }

// TermAt returns the term of the entry at index i if the node still knows
// it (i in [SnapshotIndex, LastIndex]).
func (n *Node) TermAt(i uint64) (uint64, bool) { return n.termAt(i) }

// Entry returns the entry at index i, if it is in the log (after the
// snapshot). The entry must not be modified.
func (n *Node) Entry(i uint64) (Entry, bool) {
	if i <= n.snapIndex || i > n.lastIndex() {
		return Entry{}, false
	}
	return *n.entry(i), true
}

// LogEpoch counts the times log entries were replaced (truncation of a
// conflicting suffix, installed snapshot) and gives the first index the
// latest replacement touched; checkers use it to re-verify only what changed.
func (n *Node) LogEpoch() (epoch, truncatedAt uint64) { return n.epoch, n.truncAt }

// SkippedRecords counts journal records replay had to skip at boot.
func (n *Node) SkippedRecords() int { return n.skipped }
