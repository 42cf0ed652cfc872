package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// StatusRequest asks a node for its Status. It travels on the client port,
// next to kvsm Requests.
type StatusRequest struct {
	ID uint64
}

// Status is a node's view of the cluster, the answer to a StatusRequest
// with the same ID.
type Status struct {
	ID        uint64
	Node      sim.NodeID
	Role      raft.Role
	Term      uint64
	Leader    sim.NodeID // -1: none known
	Commit    uint64
	Applied   uint64
	LastIndex uint64
	Snapshot  uint64 // index covered by the node's latest snapshot
	Sessions  int
	Keys      int
}

// Status wire format (integers are unsigned varints):
//
//	StatusRequest: 'S' | id
//	Status:        'T' | id | node | role u8 | term | leader+1 | commit | applied | last | snapshot | sessions | keys
//
// The tags are clear of kvsm's ('Q', 'R') and Raft's (1–13).
const (
	tagStatusRequest = 'S'
	tagStatus        = 'T'
)

// Codec is the codec of a replicated KV node's connections: kvsm's
// ReplicaCodec (Raft messages, kvsm Requests and Responses) plus
// StatusRequest and Status.
type Codec struct{}

var _ sim.Codec = Codec{}

// Encode implements sim.Codec.
func (Codec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	switch m := m.(type) {
	case StatusRequest:
		dst = append(dst, tagStatusRequest)
		return binary.AppendUvarint(dst, m.ID), nil
	case Status:
		dst = append(dst, tagStatus)
		dst = binary.AppendUvarint(dst, m.ID)
		dst = binary.AppendUvarint(dst, uint64(m.Node))
		dst = append(dst, byte(m.Role))
		dst = binary.AppendUvarint(dst, m.Term)
		dst = binary.AppendUvarint(dst, uint64(m.Leader+1))
		for _, v := range []uint64{m.Commit, m.Applied, m.LastIndex, m.Snapshot, uint64(m.Sessions), uint64(m.Keys)} {
			dst = binary.AppendUvarint(dst, v)
		}
		return dst, nil
	}
	return kvsm.ReplicaCodec{}.Encode(dst, m)
}

// Decode implements sim.Codec.
func (Codec) Decode(b []byte) (sim.Message, error) {
	if len(b) == 0 {
		return nil, errors.New("cluster: empty message")
	}
	switch b[0] {
	case tagStatusRequest:
		r := reader{b: b[1:]}
		m := StatusRequest{ID: r.uvarint()}
		return m, r.done()
	case tagStatus:
		r := reader{b: b[1:]}
		var m Status
		m.ID = r.uvarint()
		node := r.uvarint()
		if node >= MaxID {
			return nil, fmt.Errorf("cluster: status of node %d out of range", node)
		}
		m.Node = sim.NodeID(node)
		m.Role = raft.Role(r.byte())
		m.Term = r.uvarint()
		leader := r.uvarint()
		if leader > MaxID {
			return nil, fmt.Errorf("cluster: leader %d out of range", leader)
		}
		m.Leader = sim.NodeID(leader) - 1
		m.Commit, m.Applied, m.LastIndex, m.Snapshot = r.uvarint(), r.uvarint(), r.uvarint(), r.uvarint()
		m.Sessions, m.Keys = int(min(r.uvarint(), 1<<40)), int(min(r.uvarint(), 1<<40))
		return m, r.done()
	}
	return kvsm.ReplicaCodec{}.Decode(b)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("cluster: truncated or overlong varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errors.New("cluster: truncated message")
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) done() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = fmt.Errorf("cluster: %d trailing bytes", len(r.b))
	}
	return r.err
}

// NodeConfig configures a replicated KV node.
type NodeConfig struct {
	// SnapshotEvery is Raft's compaction interval in applied entries
	// (0: 100000; negative: never).
	SnapshotEvery int
	// Sessions configures the client session table (the same on every
	// node).
	Sessions kvsm.SessionConfig
}

// RaftConfig is the Raft configuration of a node of c: the timing the
// simulation tests use (heartbeat 50ms, election timeout 150–300ms,
// PreVote, CheckQuorum).
func (c *Cluster) RaftConfig(snapshotEvery int) raft.Config {
	rc := raft.Config{
		Peers:              c.IDs(),
		HeartbeatInterval:  50 * time.Millisecond,
		ElectionTimeoutMin: 150 * time.Millisecond,
		ElectionTimeoutMax: 300 * time.Millisecond,
		PreVote:            true,
		CheckQuorum:        true,
	}
	switch {
	case snapshotEvery == 0:
		rc.SnapshotEvery = 100000
	case snapshotEvery > 0:
		rc.SnapshotEvery = uint64(snapshotEvery)
	}
	return rc
}

// NodeMachine is the machine of one replicated KV node: a kvsm.Replica that also
// answers StatusRequests. It is the exact machine the simulator runs, with
// one more read-only message.
type NodeMachine struct {
	*kvsm.Replica
	id sim.NodeID

	// OnChange, if set, is called after a step that changed the node's
	// role, term or leader, on the goroutine that steps the machine (the
	// server logs it).
	OnChange func(Status)
	last     Status
}

// NewNode returns the machine of node id of c.
func (c *Cluster) NewNode(id sim.NodeID, cfg NodeConfig) *NodeMachine {
	return &NodeMachine{
		Replica: kvsm.NewReplica(id, kvsm.ReplicaConfig{Raft: c.RaftConfig(cfg.SnapshotEvery), Sessions: cfg.Sessions}),
		id:      id,
	}
}

// Step implements sim.Machine.
func (n *NodeMachine) Step(ev sim.Event, out *sim.Effects) {
	if ev.Kind == sim.EventMessage {
		if req, ok := ev.Msg.(StatusRequest); ok {
			out.Send(ev.From, n.Status(req.ID))
			return
		}
	}
	n.Replica.Step(ev, out)
	if n.OnChange != nil {
		r := n.Raft()
		if r.Role() != n.last.Role || r.Term() != n.last.Term || r.Leader() != n.last.Leader {
			n.last = n.Status(0)
			n.OnChange(n.last)
		}
	}
}

// Status reports the node's current status.
func (n *NodeMachine) Status(id uint64) Status {
	r := n.Raft()
	st := n.State()
	return Status{
		ID: id, Node: n.id, Role: r.Role(), Term: r.Term(), Leader: r.Leader(),
		Commit: r.Commit(), Applied: r.Applied(), LastIndex: r.LastIndex(), Snapshot: r.SnapshotIndex(),
		Sessions: st.Sessions(), Keys: st.Store().Len(),
	}
}
