package raft

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// durableModel is what a journal should replay to.
type durableModel struct {
	term uint64
	vote sim.NodeID
	snap uint64
	log  []Entry // entries after snap
}

func bootFrom(j sim.Journal) *Node {
	n := New(0, testConfig(3))
	var out sim.Effects
	n.Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{Journal: j, Rand: rand.New(rand.NewPCG(1, 2))}}, &out)
	return n
}

func stateOf(n *Node) durableModel {
	return durableModel{term: n.term, vote: n.vote, snap: n.snapIndex, log: n.log.all()}
}

// TestJournalReplayProperty: any sequence of hard-state writes, appends
// (with truncation) and snapshots replays to exactly the state that wrote
// it; a crash keeping any prefix of the records replays to the state as of
// that prefix; a corrupt record is skipped, never misread.
func TestJournalReplayProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var j sim.Journal
		m := durableModel{vote: None}
		var states []durableModel // states[i]: after records[:i] (since the snapshot)
		states = append(states, m)
		for range rapid.IntRange(0, 30).Draw(t, "ops") {
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0:
				m.term += rapid.Uint64Range(0, 2).Draw(t, "dt")
				m.vote = sim.NodeID(rapid.IntRange(-1, 4).Draw(t, "vote"))
				j.Records = append(j.Records, encodeHardState(m.term, int64(m.vote)))
			case 1, 2, 3:
				last := m.snap + uint64(len(m.log))
				first := rapid.Uint64Range(m.snap+1, last+1).Draw(t, "first")
				es := genEntries(t, first)
				if len(es) == 0 {
					continue
				}
				m.log = append(append([]Entry(nil), m.log[:first-m.snap-1]...), es...)
				j.Records = append(j.Records, encodeEntries(es))
			case 4:
				k := rapid.IntRange(0, len(m.log)).Draw(t, "keep")
				st := snapshotState{term: m.term, vote: int64(m.vote), index: m.snap + uint64(k), app: []byte("app")}
				if k > 0 {
					st.lastTerm = m.log[k-1].Term
				}
				m.snap += uint64(k)
				m.log = append([]Entry(nil), m.log[k:]...)
				st.tail = m.log
				j.Snapshot = encodeSnapshot(&st)
				j.Base += uint64(len(j.Records))
				j.Records = nil
				states = states[:0]
			}
			states = append(states, m)
		}
		got := stateOf(bootFrom(j))
		if d := cmp.Diff(m, got, cmp.AllowUnexported(durableModel{}), equateEmpty); d != "" {
			t.Fatalf("replay (-want +got):\n%s", d)
		}
		// A crash that kept only a prefix of the records.
		k := rapid.IntRange(0, len(j.Records)).Draw(t, "prefix")
		pj := j
		pj.Records = j.Records[:k]
		if d := cmp.Diff(states[k], stateOf(bootFrom(pj)), cmp.AllowUnexported(durableModel{}), equateEmpty); d != "" {
			t.Fatalf("replay of %d records (-want +got):\n%s", k, d)
		}
		// A corrupt record is skipped, not misread.
		if len(j.Records) > 0 {
			i := rapid.IntRange(0, len(j.Records)-1).Draw(t, "corrupt")
			cj := j
			cj.Records = append([][]byte(nil), j.Records...)
			bad := append([]byte(nil), cj.Records[i]...)
			bad[rapid.IntRange(0, len(bad)-1).Draw(t, "byte")] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
			cj.Records[i] = bad
			// (Entries records after it that would leave a gap go too.)
			if n := bootFrom(cj); n.SkippedRecords() < 1 {
				t.Fatalf("corrupt record %d not skipped", i)
			}
		}
	})
}

// TestEntriesRecordBytes pins the on-disk bytes of an entries record:
// journals written by earlier versions must replay, so any change to the
// encoders that alters these bytes is a format change, not an optimisation.
func TestEntriesRecordBytes(t *testing.T) {
	es := []Entry{
		{Index: 300, Term: 2, Type: EntryNormal, Data: []byte("ab")},
		{Index: 301, Term: 200, Type: EntryNoop},
	}
	want := []byte{
		0x02,       // entries record
		0xac, 0x02, // first index 300
		0x02,                       // two entries
		0x02, 0x00, 0x02, 'a', 'b', // term 2, normal, 2 bytes of data
		0xc8, 0x01, 0x01, 0x00, // term 200, no-op, no data
	}
	want = binary.LittleEndian.AppendUint32(want, crc32.Checksum(want, crc32.MakeTable(crc32.Castagnoli)))
	var a recordArena
	if diff := cmp.Diff(want, encodeEntries(es)); diff != "" {
		t.Errorf("encodeEntries: record differs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, a.entries(es)); diff != "" {
		t.Errorf("arena: record differs (-want +got):\n%s", diff)
	}
}

// TestRecordArena: records carved from the arena are byte-for-byte the
// records encodeEntries makes, their spare capacity is only arena space not
// handed out yet, and later records never overwrite earlier ones (entries
// with huge terms and indices make the varints longer than the size hint).
func TestRecordArena(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var a recordArena
		var recs, want [][]byte
		for range rapid.IntRange(1, 300).Draw(t, "records") {
			before := a.buf
			first := rapid.Uint64Range(1, maxIndex).Draw(t, "first")
			es := make([]Entry, rapid.IntRange(1, 4).Draw(t, "entries"))
			for i := range es {
				es[i] = Entry{Index: first + uint64(i), Term: rapid.Uint64().Draw(t, "term"),
					Type: EntryType(rapid.IntRange(0, int(EntryNoop)).Draw(t, "type")),
					Data: rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "data")}
			}
			rec := a.entries(es)
			if err := checkArenaRecord(before, a.buf, rec); err != nil {
				t.Fatal(err)
			}
			recs, want = append(recs, rec), append(want, encodeEntries(es))
		}
		if diff := cmp.Diff(want, recs); diff != "" {
			t.Fatalf("records differ (-want +got):\n%s", diff)
		}
	})
}

// TestOneEntryRecord: the arena's one-entry encoder writes exactly the
// bytes of encodeEntries at the edges of every varint it builds in a
// register, and leaves what it cannot encode (longer varints) to the
// general encoder, which must agree too.
func TestOneEntryRecord(t *testing.T) {
	var a recordArena
	type made struct{ rec, want []byte }
	var all []made
	for _, first := range []uint64{0, 1, 127, 128, 300, 1<<14 - 1, 1 << 14, 1<<21 - 1, 1 << 21, 1 << 40} {
		for _, term := range []uint64{0, 1, 127, 128, 300} {
			for _, n := range []int{0, 1, 15, 127, 128, 300} {
				for _, typ := range []EntryType{EntryNormal, EntryNoop, 255} {
					data := make([]byte, n)
					for i := range data {
						data[i] = byte(i*7) ^ byte(first)
					}
					e := Entry{Index: first, Term: term, Type: typ, Data: data}
					want := encodeEntries([]Entry{e})
					before := a.buf
					used := len(a.buf)
					rec := a.oneEntry(&e)
					if fits := first < 1<<21 && term < 1<<7 && n < 1<<7; (rec != nil) != fits {
						t.Fatalf("first %d term %d len %d: fast path taken %v, want %v", first, term, n, rec != nil, fits)
					}
					if rec == nil {
						if len(a.buf) != used {
							t.Fatalf("first %d term %d len %d: declined, yet used the arena", first, term, n)
						}
						continue
					}
					if diff := cmp.Diff(want, rec); diff != "" {
						t.Fatalf("first %d term %d len %d type %d: record differs (-want +got):\n%s", first, term, n, typ, diff)
					}
					if err := checkArenaRecord(before, a.buf, rec); err != nil {
						t.Fatalf("first %d term %d len %d: %v", first, term, n, err)
					}
					all = append(all, made{rec, want})
				}
			}
		}
	}
	for i, m := range all {
		if !bytes.Equal(m.rec, m.want) {
			t.Fatalf("record %d was overwritten by a later one", i)
		}
	}
}

// checkArenaRecord checks rec, just made by an arena that was before and
// is now after: a record carved from the arena ends where the arena's used
// bytes end and follows the bytes handed out before it in the same chunk,
// or starts a new chunk (so that the simulator's journal finds consecutive
// records back to back), and its spare capacity is exactly the arena's
// free space, which the arena writes only as later records. A record not
// carved from the arena leaves the arena as it was.
func checkArenaRecord(before, after, rec []byte) error {
	inArena := len(rec) > 0 && len(after) >= len(rec) && &after[len(after)-len(rec)] == &rec[0]
	if !inArena {
		if len(after) != len(before) || cap(after) != cap(before) {
			return fmt.Errorf("record of %d bytes not at the arena's end, yet the arena went from %d/%d to %d/%d bytes",
				len(rec), len(before), cap(before), len(after), cap(after))
		}
		return nil
	}
	sameChunk := len(before) > 0 && cap(after) == cap(before) && &after[0] == &before[0]
	if sameChunk && len(after) != len(before)+len(rec) || !sameChunk && len(after) != len(rec) {
		return fmt.Errorf("record of %d bytes does not follow the %d bytes before it in its chunk (same chunk %v, now %d)",
			len(rec), len(before), sameChunk, len(after))
	}
	if cap(rec)-len(rec) != cap(after)-len(after) {
		return fmt.Errorf("record has spare capacity %d, the arena %d free", cap(rec)-len(rec), cap(after)-len(after))
	}
	return nil
}

// BenchmarkEntriesRecord measures the journal record of one appended entry
// as the standard scenario writes it (15 bytes of data, indices in the
// thousands), carved from the arena: the record every node writes for
// every entry.
func BenchmarkEntriesRecord(b *testing.B) {
	var a recordArena
	es := []Entry{{Index: 1000, Term: 3, Type: EntryNormal, Data: []byte("benchmark-value")}}
	var rec []byte
	for i := 0; b.Loop(); i++ {
		es[0].Index = 1000 + uint64(i&4095)
		rec = a.entries(es)
	}
	if len(rec) != 26 {
		b.Fatalf("record of %d bytes, want 26", len(rec))
	}
}
