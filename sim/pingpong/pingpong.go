// Package pingpong is the simulator's example machine: every node pings a
// random peer on a timer, and peers answer with a pong.
//
// It exercises every part of the contract. Each ping's sequence number is
// journaled before the ping is sent, so a restarted node never reuses one;
// the journal is compacted into a snapshot every SnapshotEvery pings. A pong
// for a sequence number the node has not (durably) issued is counted in
// Bogus — it can only happen if a host breaks the durability rule, which is
// what the example's checker looks for.
package pingpong

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Interval is the mean time between a node's pings.
const Interval = 100 * time.Millisecond

// SnapshotEvery is how many pings go into the journal between snapshots.
const SnapshotEvery = 64

// Ping asks the receiver to answer with a Pong of the same Seq.
type Ping struct{ Seq uint64 }

// Pong answers a Ping.
type Pong struct{ Seq uint64 }

// Node is one ping-pong participant.
type Node struct {
	id    sim.NodeID
	peers int
	boot  *sim.Boot

	next    uint64 // the next sequence number to issue; durable
	records uint64 // absolute index of the next journal record

	// Pings and Pongs count messages sent and answers received in this
	// incarnation; Bogus counts pongs for numbers never issued.
	Pings, Pongs, Bogus uint64
}

// New returns a node of a cluster of n nodes.
func New(n int) func(id sim.NodeID) sim.Machine {
	return func(id sim.NodeID) sim.Machine { return &Node{id: id, peers: n} }
}

// Step implements sim.Machine.
func (m *Node) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		m.boot = ev.Boot
		m.recover(&ev.Boot.Journal)
		m.arm(out)
	case sim.EventTimer:
		m.ping(out)
		m.arm(out)
	case sim.EventMessage:
		switch msg := ev.Msg.(type) {
		case Ping:
			out.Send(ev.From, Pong(msg))
		case Pong:
			if msg.Seq >= m.next {
				m.Bogus++
			}
			m.Pongs++
		}
	}
}

func (m *Node) recover(j *sim.Journal) {
	if len(j.Snapshot) == 8 {
		m.next = binary.LittleEndian.Uint64(j.Snapshot)
	}
	for _, r := range j.Records {
		if len(r) == 8 {
			m.next = max(m.next, binary.LittleEndian.Uint64(r)+1)
		}
	}
	m.records = j.Next()
}

func (m *Node) arm(out *sim.Effects) {
	out.SetTimer("ping", Interval/2+time.Duration(m.boot.Rand.Int64N(int64(Interval))))
}

func (m *Node) ping(out *sim.Effects) {
	if m.peers < 2 {
		return
	}
	seq := m.next
	m.next++
	out.Append(binary.LittleEndian.AppendUint64(make([]byte, 0, 8), seq))
	m.records++
	if m.records%SnapshotEvery == 0 {
		out.SaveSnapshot(binary.LittleEndian.AppendUint64(nil, m.next), m.records)
	}
	peer := (int(m.id) + 1 + m.boot.Rand.IntN(m.peers-1)) % m.peers
	out.Send(sim.NodeID(peer), Ping{Seq: seq})
	m.Pings++
}

// Checker fails when any running node has seen a pong it never asked for.
func Checker() sim.Checker {
	return sim.Checker{Name: "pingpong-bogus", Step: func(s *sim.Sim) error {
		for i := range s.Nodes() {
			if m, ok := s.Machine(sim.NodeID(i)).(*Node); ok && m.Bogus > 0 {
				return fmt.Errorf("node %d got a pong for a sequence number it has not issued", i)
			}
		}
		return nil
	}}
}

// EveryNodeHearsBack is a liveness condition: every node has received a pong
// since the condition was first evaluated (in the same incarnation).
func EveryNodeHearsBack() func(s *sim.Sim) bool {
	var seen []*Node
	var base []uint64
	return func(s *sim.Sim) bool {
		if seen == nil {
			seen, base = make([]*Node, s.Nodes()), make([]uint64, s.Nodes())
		}
		for i := range s.Nodes() {
			m, ok := s.Machine(sim.NodeID(i)).(*Node)
			if !ok {
				return false
			}
			if seen[i] != m {
				seen[i], base[i] = m, m.Pongs
			}
			if m.Pongs <= base[i] {
				return false
			}
		}
		return true
	}
}

// Codec encodes pings and pongs as a tag byte and a little-endian sequence
// number.
type Codec struct{}

var errBadMessage = errors.New("pingpong: malformed message")

// Encode implements sim.Codec.
func (Codec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	switch m := m.(type) {
	case Ping:
		return binary.LittleEndian.AppendUint64(append(dst, 'P'), m.Seq), nil
	case Pong:
		return binary.LittleEndian.AppendUint64(append(dst, 'O'), m.Seq), nil
	}
	return dst, fmt.Errorf("pingpong: cannot encode %T", m)
}

// Decode implements sim.Codec.
func (Codec) Decode(b []byte) (sim.Message, error) {
	if len(b) != 9 {
		return nil, errBadMessage
	}
	seq := binary.LittleEndian.Uint64(b[1:])
	switch b[0] {
	case 'P':
		return Ping{Seq: seq}, nil
	case 'O':
		return Pong{Seq: seq}, nil
	}
	return nil, errBadMessage
}

// Scenario is the example's standard simulation: n nodes under plan for d of
// faults, then a liveness phase in which every node must hear back within
// two seconds.
func Scenario(seed uint64, n int, plan sim.Plan, d time.Duration) sim.Config {
	cfg := sim.Config{
		Seed:     seed,
		Nodes:    n,
		New:      New(n),
		Codec:    Codec{},
		Checkers: []sim.Checker{Checker()},
		Liveness: &sim.Liveness{Name: "every node hears back", Within: 2 * time.Second, Cond: EveryNodeHearsBack()},
	}
	plan.Apply(&cfg, d)
	return cfg
}

// BaseNetwork is the example's ordinary network: 1 ms ± 1 ms.
var BaseNetwork = sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond}
