package sim

import (
	"strconv"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// TestDurableJournal: whatever the appends and snapshots, the journal a
// node would boot with holds the same records as a plain slice handled
// the way the durability rule says, across chunk boundaries; a journal
// handed out earlier is not changed by what the node does afterwards, and
// a machine appending to the records it booted with changes nothing else.
func TestDurableJournal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var d durableJournal
		var want Journal // the model: one slice, cut on snapshot
		type handedOut struct{ got, want Journal }
		var earlier []handedOut
		next := 0
		for range rapid.IntRange(0, 20).Draw(t, "runs") {
			if rapid.IntRange(0, 4).Draw(t, "op") > 0 {
				for range rapid.IntRange(0, maxChunk+minChunk).Draw(t, "appends") {
					rec := []byte(strconv.Itoa(next))
					next++
					d.records.append(rec)
					want.Records = append(want.Records, rec)
				}
			} else {
				// UpTo may lie beyond the journal's end, or before its base.
				upTo := uint64(rapid.IntRange(0, next+10).Draw(t, "upTo"))
				snap := &SnapshotOp{Data: []byte("snap " + strconv.FormatUint(upTo, 10)), UpTo: upTo}
				d.applySnapshot(snap)
				if cut := min(upTo, want.Next()); cut >= want.Base {
					want.Records = append([][]byte(nil), want.Records[cut-want.Base:]...)
					want.Base = cut
				}
				want.Snapshot = snap.Data
			}
			for _, e := range earlier {
				_ = append(e.got.Records, []byte("intruder"))
			}
			got := d.journal()
			if diff := gocmp.Diff(want, got, cmpEmptyRecords); diff != "" {
				t.Fatalf("journal (-want +got):\n%s", diff)
			}
			if d.next() != want.Next() {
				t.Fatalf("next %d, want %d", d.next(), want.Next())
			}
			earlier = append(earlier, handedOut{got, Journal{Snapshot: want.Snapshot, Base: want.Base, Records: append([][]byte(nil), want.Records...)}})
		}
		for i, e := range earlier {
			if diff := gocmp.Diff(e.want, e.got, cmpEmptyRecords); diff != "" {
				t.Fatalf("journal %d handed out earlier changed since (-want +got):\n%s", i, diff)
			}
		}
	})
}

// cmpEmptyRecords treats nil and empty record lists alike.
var cmpEmptyRecords = gocmp.Comparer(func(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if string(a[i]) != string(b[i]) {
			return false
		}
	}
	return true
})
