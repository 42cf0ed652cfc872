package kvsm

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// ReplicaConfig configures one node of the replicated KV.
type ReplicaConfig struct {
	// Raft configures the embedded Raft node; Peers is required. NewApp is
	// set by the replica (the application is the replicated State).
	Raft raft.Config
	// Sessions bounds the session table; it must be the same on every
	// replica.
	Sessions SessionConfig
}

// ReplicaObservation reports something unexpected a replica met: a log
// entry or snapshot it could not decode (a bug, since Raft only carries
// what replicas wrote).
type ReplicaObservation struct {
	Kind string
	Err  string
}

// writeWaiter is a client waiting for the entry this node proposed at
// index in term: the entry applied there is its own only if its term is
// the same (a request's id, client and seq may repeat across clients).
type writeWaiter struct {
	index uint64
	term  uint64
	from  sim.NodeID
	id    uint64
}

type readWaiter struct {
	from sim.NodeID
	req  Request
}

// Replica is one node of the replicated key-value store: a raft.Node whose
// application is the replicated State (Store plus client sessions). Clients
// send it Requests and get Responses, as with the standalone Server, and
// the two speak the same wire format.
//
//   - Writes (set, delete) go through the log: the leader proposes a command
//     entry stamped with its clock and answers once the entry is applied.
//     With a client id and sequence number the write is applied at most once
//     and a retry gets the original answer (see State).
//   - Reads (get) use Raft's ReadIndex: the leader confirms it still leads
//     and answers from its applied state, without writing to the log.
//   - A node that is not the leader answers StatusNotLeader with the leader
//     it knows of, and does nothing else.
//   - Snapshots are Raft's compaction (Config.Raft.SnapshotEvery) of the
//     State, sessions included; a restarted or lagging node catches up from
//     the leader's snapshot.
//
// A write the leader proposed is answered StatusNotLeader if the node loses
// leadership before applying it (the entry may still commit: a client that
// retries through its session gets the original answer either way).
type Replica struct {
	cfg   ReplicaConfig
	id    sim.NodeID
	node  *raft.Node
	state *State
	out   *sim.Effects

	leaderTerm uint64 // term in which the waiters were registered
	shownRole  raft.Role
	shownTerm  uint64
	writes     []writeWaiter
	reads      map[uint64]readWaiter
	nextRead   uint64
}

// NewReplica returns the machine of replica id.
func NewReplica(id sim.NodeID, cfg ReplicaConfig) *Replica {
	r := &Replica{cfg: cfg, id: id, reads: make(map[uint64]readWaiter)}
	rc := cfg.Raft
	rc.NewApp = func() raft.Application {
		r.state = NewState(cfg.Sessions)
		return (*replicaApp)(r)
	}
	r.node = raft.New(id, rc)
	r.state = NewState(cfg.Sessions)
	return r
}

// Raft is the embedded Raft node, for checkers and tests.
func (r *Replica) Raft() *raft.Node { return r.node }

// State is the replicated state as applied on this node, for checkers and
// tests. It must not be modified.
func (r *Replica) State() *State { return r.state }

// IsLeader reports whether the node currently leads.
func (r *Replica) IsLeader() bool { return r.node.Role() == raft.Leader }

// Step implements sim.Machine.
func (r *Replica) Step(ev sim.Event, out *sim.Effects) {
	r.out = out
	defer func() { r.out = nil }()
	switch ev.Kind {
	case sim.EventStart, sim.EventSynced:
		r.node.Step(ev, out)
	case sim.EventTimer:
		if strings.HasPrefix(ev.Timer, raft.TimerPrefix) {
			r.node.Step(ev, out)
		}
	case sim.EventMessage:
		switch m := ev.Msg.(type) {
		case Request:
			r.request(ev, m)
		case *Request:
			r.request(ev, *m)
		default:
			if raft.IsMessage(ev.Msg) {
				r.node.Step(ev, out)
			}
		}
	}
	r.dropStaleWaiters()
	if role, term := r.node.Role(), r.node.Term(); ev.Kind == sim.EventStart || role != r.shownRole || term != r.shownTerm {
		r.shownRole, r.shownTerm = role, term
		out.Observe(RoleChange{Role: role, Term: term})
	}
}

// RoleChange is observed when a replica starts and whenever its Raft role
// or term changes; trace viewers draw it as the node's state.
type RoleChange struct {
	Role raft.Role
	Term uint64
}

// TraceState implements sim.TraceStater.
func (c RoleChange) TraceState() string { return fmt.Sprintf("%v t%d", c.Role, c.Term) }

func (r *Replica) notLeader(to sim.NodeID, id uint64) {
	r.out.Send(to, Response{ID: id, Status: StatusNotLeader, Leader: r.hint()})
}

// hint is the leader to redirect to: the one Raft follows, but never this
// node itself (a leader refusing work is busy transferring leadership).
func (r *Replica) hint() sim.NodeID {
	l := r.node.Leader()
	if l == r.id {
		return raft.None
	}
	return l
}

func (r *Replica) request(ev sim.Event, req Request) {
	if req.Op < OpGet || req.Op > maxOp {
		r.out.Send(ev.From, Response{ID: req.ID, Status: StatusBadRequest, Value: []byte("unknown op")})
		return
	}
	if !r.IsLeader() {
		r.notLeader(ev.From, req.ID)
		return
	}
	if req.Op == OpGet {
		r.nextRead++
		ctx := r.nextRead
		r.bindTerm()
		// Register first: a one-node cluster is ready inside ReadIndex.
		r.reads[ctx] = readWaiter{from: ev.From, req: req}
		if !r.node.ReadIndex(ctx, r.out) {
			delete(r.reads, ctx)
			r.notLeader(ev.From, req.ID)
		}
		return
	}
	// Applied state is committed state: a write already applied is
	// answered from its session without touching the log.
	if resp, ok := r.state.Duplicate(req); ok {
		r.out.Send(ev.From, resp)
		return
	}
	data, err := AppendCommand(nil, &req, ev.Now)
	if err != nil {
		r.out.Send(ev.From, Response{ID: req.ID, Status: StatusBadRequest, Value: []byte(err.Error())})
		return
	}
	r.bindTerm()
	w := writeWaiter{from: ev.From, id: req.ID, term: r.node.Term()}
	// Register before proposing: a one-node cluster applies the entry
	// inside Propose.
	w.index = r.node.LastIndex() + 1
	r.writes = append(r.writes, w)
	if _, ok := r.node.Propose(data, r.out); !ok {
		r.writes = r.writes[:len(r.writes)-1]
		r.notLeader(ev.From, req.ID)
	}
}

// bindTerm forgets waiters of an earlier leadership when this node leads
// again in a new term.
func (r *Replica) bindTerm() {
	if t := r.node.Term(); t != r.leaderTerm {
		r.failWaiters()
		r.leaderTerm = t
	}
}

// dropStaleWaiters answers every waiting write StatusNotLeader once the node
// no longer leads in the term it registered them in: their entries may
// never be applied here.
func (r *Replica) dropStaleWaiters() {
	if len(r.writes) == 0 && len(r.reads) == 0 {
		return
	}
	if r.IsLeader() && r.node.Term() == r.leaderTerm {
		return
	}
	r.failWaiters()
}

func (r *Replica) failWaiters() {
	for _, w := range r.writes {
		r.notLeader(w.from, w.id)
	}
	r.writes = r.writes[:0]
	// Raft fails its pending reads (ReadReady false) when it steps down;
	// any left over are answered in context order.
	if len(r.reads) > 0 {
		ctxs := make([]uint64, 0, len(r.reads))
		for c := range r.reads {
			ctxs = append(ctxs, c)
		}
		slices.Sort(ctxs)
		for _, c := range ctxs {
			r.notLeader(r.reads[c].from, r.reads[c].req.ID)
		}
		clear(r.reads)
	}
}

// replicaApp is the Replica seen as raft's Application and ReadHandler.
type replicaApp Replica

func (a *replicaApp) Apply(index uint64, data []byte) {
	r := (*Replica)(a)
	req, stamp, version, err := decodeCommand(data)
	if err != nil {
		r.observe("bad-entry", fmt.Errorf("entry %d: %w", index, err))
		return
	}
	resp := r.state.applyEntry(req, stamp, version)
	for len(r.writes) > 0 && r.writes[0].index <= index {
		w := r.writes[0]
		r.writes = r.writes[1:]
		if t, _ := r.node.TermAt(index); w.index == index && w.term == t {
			resp.ID = w.id
			r.send(w.from, resp)
		} else {
			// Another leader's entry took the slot.
			r.send(w.from, Response{ID: w.id, Status: StatusNotLeader, Leader: r.hint()})
		}
	}
	if len(r.writes) == 0 {
		r.writes = nil
	}
}

func (a *replicaApp) Snapshot() []byte { return (*Replica)(a).state.Snapshot() }

func (a *replicaApp) Restore(data []byte) {
	r := (*Replica)(a)
	if err := r.state.Restore(data); err != nil {
		r.observe("bad-snapshot", err)
	}
}

func (a *replicaApp) ReadReady(ctx uint64, ok bool) {
	r := (*Replica)(a)
	w, found := r.reads[ctx]
	if !found {
		return
	}
	delete(r.reads, ctx)
	if !ok {
		r.send(w.from, Response{ID: w.req.ID, Status: StatusNotLeader, Leader: r.hint()})
		return
	}
	resp := r.state.Store().Apply(Request{ID: w.req.ID, Op: OpGet, Key: w.req.Key})
	r.send(w.from, resp)
}

func (r *Replica) send(to sim.NodeID, m Response) {
	if r.out != nil {
		r.out.Send(to, m)
	}
}

func (r *Replica) observe(kind string, err error) {
	if r.out != nil {
		r.out.Observe(ReplicaObservation{Kind: kind, Err: err.Error()})
	}
}

// ReplicaCodec is the sim.Codec of a replicated KV cluster: Raft's peer
// messages and the KV Requests and Responses, told apart by their first
// byte.
type ReplicaCodec struct{}

var _ sim.Codec = ReplicaCodec{}

// Encode implements sim.Codec.
func (ReplicaCodec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	switch m.(type) {
	case Request, *Request, Response, *Response:
		return Codec{}.Encode(dst, m)
	}
	return raft.Codec{}.Encode(dst, m)
}

// Decode implements sim.Codec.
func (ReplicaCodec) Decode(b []byte) (sim.Message, error) {
	if len(b) == 0 {
		return nil, errors.New("kvsm: empty message")
	}
	if b[0] == tagRequest || b[0] == tagResponse {
		return Codec{}.Decode(b)
	}
	return raft.Codec{}.Decode(b)
}
