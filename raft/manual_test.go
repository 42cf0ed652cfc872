package raft

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// manual drives nodes by hand: the test decides which message is
// delivered and which timer fires. Every message goes through the codec.
type manual struct {
	t     *testing.T
	nodes []*Node
	queue []envelope
	now   time.Duration
	stats map[string]int // delivered messages by type
}

type envelope struct {
	from, to sim.NodeID
	msg      sim.Message
}

func newManual(t *testing.T, cfg Config, journals ...sim.Journal) *manual {
	m := &manual{t: t, stats: map[string]int{}}
	for i, j := range journals {
		id := sim.NodeID(i)
		c := cfg
		c.Peers = peers(len(journals))
		n := New(id, c)
		m.nodes = append(m.nodes, n)
		m.step(id, sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: id, Journal: j, Rand: rand.New(rand.NewPCG(7, uint64(i)))}})
	}
	return m
}

func (m *manual) step(id sim.NodeID, ev sim.Event) {
	var out sim.Effects
	ev.Now = m.now
	m.nodes[id].Step(ev, &out)
	for _, s := range out.Sends {
		if s.To < 0 || int(s.To) >= len(m.nodes) {
			continue
		}
		b, err := Codec{}.Encode(nil, s.Msg)
		if err != nil {
			m.t.Fatalf("encode %T: %v", s.Msg, err)
		}
		msg, err := Codec{}.Decode(b)
		if err != nil {
			m.t.Fatalf("decode %T: %v", s.Msg, err)
		}
		m.queue = append(m.queue, envelope{from: id, to: s.To, msg: msg})
	}
	if out.Notify { // writes are durable at once here
		m.step(id, sim.Event{Kind: sim.EventSynced, Token: out.NotifyToken})
	}
}

// fire fires a timer; for the election timer the clock first moves past
// any election timeout.
func (m *manual) fire(id sim.NodeID, timer string) {
	if timer == timerElection {
		m.now += time.Hour
	}
	m.step(id, sim.Event{Kind: sim.EventTimer, Timer: timer})
}

// deliver delivers queued messages in order (and the ones they cause)
// while keep accepts them; the others are dropped. It stops when the queue
// is empty.
func (m *manual) deliver(keep func(e envelope) bool) {
	for len(m.queue) > 0 {
		e := m.queue[0]
		m.queue = m.queue[1:]
		if keep != nil && !keep(e) {
			continue
		}
		m.stats[msgName(e.msg)]++
		if r, ok := as[AppendEntriesReply](e.msg); ok && !r.Success {
			m.stats["reject"]++
		}
		m.step(e.to, sim.Event{Kind: sim.EventMessage, From: e.from, Msg: e.msg})
	}
}

func terms(n *Node) []uint64 {
	var ts []uint64
	for i := n.SnapshotIndex() + 1; i <= n.LastIndex(); i++ {
		t, _ := n.TermAt(i)
		ts = append(ts, t)
	}
	return ts
}

// journalWith builds a durable journal holding term, vote and a log whose
// entry i has term ts[i-1].
func journalWith(term uint64, vote sim.NodeID, ts ...uint64) sim.Journal {
	j := sim.Journal{Records: [][]byte{encodeHardState(term, int64(vote))}}
	if len(ts) > 0 {
		es := make([]Entry, len(ts))
		for i, t := range ts {
			es[i] = Entry{Index: uint64(i + 1), Term: t, Data: fmt.Appendf(nil, "e%d.%d", i+1, t)}
		}
		j.Records = append(j.Records, encodeEntries(es))
	}
	return j
}
