package raft

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"
)

func sampleMessages() []sim.Message {
	es := []Entry{{Index: 8, Term: 3, Data: []byte("x")}, {Index: 9, Term: 4, Type: EntryNoop}}
	return []sim.Message{
		RequestVote{Term: 3, LastIndex: 7, LastTerm: 2, PreVote: true},
		RequestVote{Term: 1 << 60, Transfer: true},
		RequestVoteReply{Term: 3, Granted: true},
		AppendEntries{Term: 4, PrevIndex: 7, PrevTerm: 3, Commit: 6, Entries: es},
		AppendEntries{Term: 4, PrevIndex: 7, PrevTerm: 3, Commit: 6},
		AppendEntriesReply{Term: 4, Index: 9, ConflictTerm: 2, ConflictIndex: 5},
		AppendEntriesReply{Term: 4, Success: true, Index: 9},
		Heartbeat{Term: 4, Commit: 3, Seq: 99},
		HeartbeatReply{Term: 4, Seq: 99},
		InstallSnapshot{Term: 5, Index: 100, LastTerm: 4, Data: []byte("state")},
		TimeoutNow{Term: 6},
		Propose{ID: 1, Data: []byte("hello")},
		ProposeReply{ID: 1, OK: true, Index: 12, Leader: 3},
		ProposeReply{ID: 2, Leader: None},
		Read{ID: 5},
		ReadReply{ID: 5, OK: true, Index: 12, Leader: 0},
		TransferLeader{To: 4},
	}
}

var equateEmpty = cmpopts.EquateEmpty()

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		b, err := Codec{}.Encode(nil, m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		got, err := Codec{}.Decode(b)
		if err != nil {
			t.Fatalf("decode %T: %v", m, err)
		}
		if d := cmp.Diff(m, got, equateEmpty); d != "" {
			t.Errorf("%T round trip (-want +got):\n%s", m, d)
		}
		// Every strict prefix is rejected, never misread.
		for i := range b {
			if _, err := (Codec{}).Decode(b[:i]); err == nil {
				t.Errorf("%T: prefix of %d/%d bytes decoded", m, i, len(b))
			}
		}
	}
	if _, err := (Codec{}).Encode(nil, AppendEntries{PrevIndex: 3, Entries: []Entry{{Index: 5}}}); err == nil {
		t.Error("encoded AppendEntries with a gap in its entry indices")
	}
}

func genEntries(t *rapid.T, first uint64) []Entry {
	n := rapid.IntRange(0, 5).Draw(t, "n")
	es := make([]Entry, n)
	for i := range es {
		es[i] = Entry{Index: first + uint64(i), Term: rapid.Uint64().Draw(t, "term"),
			Type: EntryType(rapid.IntRange(0, 1).Draw(t, "type")), Data: rapid.SliceOf(rapid.Byte()).Draw(t, "data")}
	}
	return es
}

func genMessage(t *rapid.T) sim.Message {
	u := func(s string) uint64 { return rapid.Uint64().Draw(t, s) }
	b := func(s string) bool { return rapid.Bool().Draw(t, s) }
	id := func() sim.NodeID { return sim.NodeID(rapid.Int32Range(-1, 1<<30).Draw(t, "id")) }
	data := func() []byte { return rapid.SliceOf(rapid.Byte()).Draw(t, "data") }
	switch rapid.IntRange(0, 12).Draw(t, "kind") {
	case 0:
		return RequestVote{u("t"), u("li"), u("lt"), b("pv"), b("tr")}
	case 1:
		return RequestVoteReply{u("t"), b("g"), b("pv")}
	case 2:
		prev := rapid.Uint64Range(0, maxIndex).Draw(t, "prev")
		return AppendEntries{u("t"), prev, u("pt"), u("c"), genEntries(t, prev+1)}
	case 3:
		return AppendEntriesReply{u("t"), b("s"), u("i"), u("ct"), u("ci")}
	case 4:
		return Heartbeat{u("t"), u("c"), u("s")}
	case 5:
		return HeartbeatReply{u("t"), u("s")}
	case 6:
		return InstallSnapshot{u("t"), rapid.Uint64Range(0, maxIndex).Draw(t, "i"), u("lt"), data()}
	case 7:
		return TimeoutNow{u("t")}
	case 8:
		return Propose{u("id"), data()}
	case 9:
		return ProposeReply{u("id"), b("ok"), u("i"), id()}
	case 10:
		return Read{u("id")}
	case 11:
		return ReadReply{u("id"), b("ok"), u("i"), id()}
	}
	return TransferLeader{id()}
}

func TestCodecProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		m := genMessage(t)
		b, err := Codec{}.Encode(nil, m)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		got, err := Codec{}.Decode(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if d := cmp.Diff(m, got, equateEmpty); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
	})
}

func FuzzCodecDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, _ := Codec{}.Encode(nil, m)
		f.Add(b)
	}
	f.Add([]byte{tagAppendEntries, 1, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Codec{}.Decode(b)
		if err != nil {
			return
		}
		b2, err := Codec{}.Encode(nil, m)
		if err != nil {
			t.Fatalf("decoded %T does not re-encode: %v", m, err)
		}
		m2, err := Codec{}.Decode(b2)
		if err != nil {
			t.Fatalf("re-encoded %T does not decode: %v", m, err)
		}
		if d := cmp.Diff(m, m2, equateEmpty); d != "" {
			t.Fatalf("unstable (-first +second):\n%s", d)
		}
	})
}

// FuzzJournalReplay boots a node from arbitrary journal contents: replay
// never panics and leaves a consistent state. The input is split into a
// snapshot and records at 0xff 0x00 separators (so that valid records from
// the seed corpus survive mutation).
func FuzzJournalReplay(f *testing.F) {
	es := []Entry{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 2}}
	snap := encodeSnapshot(&snapshotState{term: 3, vote: 1, index: 2, lastTerm: 2, app: []byte("s"), tail: []Entry{{Index: 3, Term: 3}}})
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, []byte{0xff, 0}) }
	f.Add(join(nil, encodeHardState(2, 1), encodeEntries(es)))
	f.Add(join(snap, encodeEntries(es[1:]), encodeHardState(9, -1)))
	f.Add(join(snap[:len(snap)-1], encodeEntries(es)[:5]))
	f.Fuzz(func(t *testing.T, b []byte) {
		parts := bytes.Split(b, []byte{0xff, 0})
		j := sim.Journal{Snapshot: parts[0], Records: parts[1:]}
		n := New(0, testConfig(3))
		var out sim.Effects
		n.Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{Journal: j, Rand: rand.New(rand.NewPCG(1, 2))}}, &out)
		if n.Commit() != n.SnapshotIndex() || n.LastIndex() < n.SnapshotIndex() {
			t.Fatalf("inconsistent boot: commit %d snap %d last %d", n.Commit(), n.SnapshotIndex(), n.LastIndex())
		}
		for i := n.SnapshotIndex() + 1; i <= n.LastIndex(); i++ {
			if e, _ := n.Entry(i); e.Index != i {
				t.Fatalf("entry at %d has index %d", i, e.Index)
			}
		}
	})
}

// TestCodecPointerForms: the pointer forms a Node sends encode exactly as
// their values (and decode to them); nil pointers are refused, not
// dereferenced.
func TestCodecPointerForms(t *testing.T) {
	for _, m := range sampleMessages() {
		var p sim.Message
		switch m := m.(type) {
		case AppendEntries:
			p = &m
		case AppendEntriesReply:
			p = &m
		default:
			continue
		}
		if !IsMessage(p) {
			t.Errorf("IsMessage(%T) is false", p)
		}
		want, err := Codec{}.Encode(nil, m)
		if err != nil {
			t.Fatalf("encode %T: %v", m, err)
		}
		got, err := Codec{}.Encode(nil, p)
		if err != nil {
			t.Fatalf("encode %T: %v", p, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%T encodes to %x, its value to %x", p, got, want)
		}
	}
	for _, p := range []sim.Message{(*AppendEntries)(nil), (*AppendEntriesReply)(nil)} {
		if _, err := (Codec{}).Encode(nil, p); err == nil {
			t.Errorf("encoded a nil %T", p)
		}
	}
}

// TestNilPointerMessagesIgnored: a nil *AppendEntries or
// *AppendEntriesReply handed to a node is ignored, not dereferenced, and a
// pointer message is handled like its value.
func TestNilPointerMessagesIgnored(t *testing.T) {
	n := New(1, testConfig(3))
	var out sim.Effects
	n.Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: 1, Rand: rand.New(rand.NewPCG(1, 2))}}, &out)
	for _, m := range []sim.Message{(*AppendEntries)(nil), (*AppendEntriesReply)(nil)} {
		out.Reset()
		n.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: m}, &out)
		if len(out.Sends)+len(out.Appends) != 0 {
			t.Errorf("%T nil: %d sends, %d appends", m, len(out.Sends), len(out.Appends))
		}
	}
	out.Reset()
	n.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: &AppendEntries{Term: 1,
		Entries: []Entry{{Index: 1, Term: 1, Data: []byte("x")}}}}, &out)
	if r, ok := as[AppendEntriesReply](out.Sends[len(out.Sends)-1].Msg); !ok || !r.Success || r.Index != 1 {
		t.Fatalf("reply to *AppendEntries: %+v", out.Sends)
	}
	if n.LastIndex() != 1 {
		t.Fatalf("last index %d after *AppendEntries", n.LastIndex())
	}
}
