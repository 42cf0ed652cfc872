package sim

import (
	"bytes"
	"encoding/binary"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// testArena hands out records the way raft's record arena does: carved
// back to back out of shared chunks, each with the capacity of the rest of
// its chunk. Small chunks put many records at a chunk's edge.
type testArena struct{ buf []byte }

// record writes body into the arena after skip unused bytes and returns it
// with the rest of the chunk as its capacity. A chunk made for a long
// record leaves room for more of them.
func (a *testArena) record(body []byte, skip, chunk int) []byte {
	if cap(a.buf)-len(a.buf) < skip+len(body) {
		a.buf = make([]byte, 0, max(chunk, 3*(skip+len(body))))
	}
	start := len(a.buf) + skip
	a.buf = append(a.buf[:start], body...)
	return a.buf[start:len(a.buf)]
}

// recordGen draws the next record a machine appends: from an arena (right
// after the previous one, after a gap, clipped or not), separately
// allocated, empty (nil or not), one of the earlier records again, or one
// too long to join a run. Each non-empty record's bytes are unique.
type recordGen struct {
	arena testArena
	chunk int
	next  uint32
	made  [][]byte
}

func (g *recordGen) draw(t *rapid.T) []byte {
	body := binary.LittleEndian.AppendUint32(nil, g.next)
	g.next++
	body = append(body, bytes.Repeat([]byte{byte(g.next)}, rapid.IntRange(0, 20).Draw(t, "pad"))...)
	var rec []byte
	switch rapid.IntRange(0, 49).Draw(t, "kind") {
	case 0:
		rec = g.arena.record(body, rapid.IntRange(1, 3).Draw(t, "gap"), g.chunk)
	case 1:
		rec = g.arena.record(body, 0, g.chunk)
		rec = rec[:len(rec):len(rec)]
	case 2:
		rec = bytes.Clone(body)
	case 3:
		rec = nil
	case 4:
		rec = g.arena.record(nil, 0, g.chunk) // empty, in the arena
	case 5:
		if len(g.made) > 0 {
			rec = g.made[rapid.IntRange(0, len(g.made)-1).Draw(t, "again")]
		}
	case 6:
		// Around the longest record that joins a run.
		n := runStart - 2 + rapid.IntRange(0, 3).Draw(t, "long")
		rec = g.arena.record(append(body, make([]byte, n-len(body))...), 0, g.chunk)
	default:
		rec = g.arena.record(body, 0, g.chunk)
	}
	g.made = append(g.made, rec)
	return rec
}

// TestDurableJournal: whatever records are appended, back to back or not,
// and whatever snapshots cut, the journal a node would boot with holds the
// same records as a plain slice handled the way the durability rule says,
// nil and empty records alike; a journal handed out earlier is not changed
// by what the node does afterwards, and a machine appending to the records
// it booted with, or to the list of them, changes nothing else.
func TestDurableJournal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var d durableJournal
		var want Journal // the model: one slice of copies, cut on snapshot
		type handedOut struct{ got, want Journal }
		var earlier []handedOut
		g := recordGen{chunk: rapid.SampledFrom([]int{16, 64, 4096}).Draw(t, "chunk")}
		for range rapid.IntRange(0, 20).Draw(t, "runs") {
			if rapid.IntRange(0, 4).Draw(t, "op") > 0 {
				for range rapid.IntRange(0, minLenChunk).Draw(t, "appends") {
					rec := g.draw(t)
					d.records.append(rec)
					want.Records = append(want.Records, bytes.Clone(rec))
				}
			} else {
				// UpTo may lie beyond the journal's end, or before its base.
				upTo := uint64(rapid.IntRange(0, int(g.next)+10).Draw(t, "upTo"))
				snap := &SnapshotOp{Data: binary.LittleEndian.AppendUint64(nil, upTo), UpTo: upTo}
				d.applySnapshot(snap)
				if cut := min(upTo, want.Next()); cut >= want.Base {
					want.Records = append([][]byte(nil), want.Records[cut-want.Base:]...)
					want.Base = cut
				}
				want.Snapshot = snap.Data
			}
			got := d.journal()
			if diff := journalDiff(want, got); diff != "" {
				t.Fatalf("journal (-want +got):\n%s", diff)
			}
			if d.next() != want.Next() {
				t.Fatalf("next %d, want %d", d.next(), want.Next())
			}
			earlier = append(earlier, handedOut{got, Journal{Snapshot: want.Snapshot, Base: want.Base, Records: append([][]byte(nil), want.Records...)}})
			_ = append(got.Records, []byte("intruder"))
			for _, rec := range got.Records {
				_ = append(rec, "intruder"...)
			}
			if diff := journalDiff(want, d.journal()); diff != "" {
				t.Fatalf("journal after appending to records handed out (-want +got):\n%s", diff)
			}
		}
		for i, e := range earlier {
			if diff := journalDiff(e.want, e.got); diff != "" {
				t.Fatalf("journal %d handed out earlier changed since (-want +got):\n%s", i, diff)
			}
		}
	})
}

// journalDiff is gocmp's diff of two journals, nil records apart from
// empty ones, with a quick comparison first (gocmp is slow on thousands of
// records).
func journalDiff(want, got Journal) string {
	same := bytes.Equal(want.Snapshot, got.Snapshot) && (want.Snapshot == nil) == (got.Snapshot == nil) &&
		want.Base == got.Base && len(want.Records) == len(got.Records) && (want.Records == nil) == (got.Records == nil)
	for i := 0; same && i < len(want.Records); i++ {
		w, g := want.Records[i], got.Records[i]
		same = bytes.Equal(w, g) && (w == nil) == (g == nil)
	}
	if same {
		return ""
	}
	return gocmp.Diff(want, got, exactBytes)
}

// exactBytes compares byte slices as gocmp does, nil apart from empty,
// only faster on long ones.
var exactBytes = gocmp.Comparer(func(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) })

// TestRecordLogRuns: a long journal of arena records, past the largest
// chunks of both the runs and the lengths, reads back the same, keeps
// records that lie back to back as one run, and starts a run for each
// record that does not.
func TestRecordLogRuns(t *testing.T) {
	var l recordLog
	var a testArena
	var want [][]byte
	const records = 3 * maxLenChunk
	wantRuns := 0
	for i := range records {
		body := binary.LittleEndian.AppendUint32(nil, uint32(i))
		var rec []byte
		if i%4 == 3 {
			rec = bytes.Clone(body) // not in the arena: a run of its own
			wantRuns++
		} else {
			before := a.buf
			rec = a.record(body, 0, 1<<12)
			newChunk := len(before) == 0 || &a.buf[0] != &before[0]
			if i%4 == 0 || newChunk {
				wantRuns++
			}
		}
		l.append(rec)
		want = append(want, rec)
	}
	if diff := gocmp.Diff(want, l.clone()); diff != "" {
		t.Fatalf("records (-want +got):\n%s", diff)
	}
	if got := l.runs.len(); got != wantRuns || wantRuns < records/2 || wantRuns > records/2+records/1000 {
		t.Fatalf("%d runs, want %d", got, wantRuns)
	}
	kept := l.from(records - 5)
	if diff := gocmp.Diff(want[records-5:], kept.clone()); diff != "" {
		t.Fatalf("records after a snapshot (-want +got):\n%s", diff)
	}
}
