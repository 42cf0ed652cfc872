package sim

import (
	"cmp"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// TestQueueOrder: whatever the interleaving of pushes, pops and filters,
// the queue pops exactly the items still in it, earliest (at, seq) first,
// each with every field it was pushed with, message included.
func TestQueueOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var q queue
		var model []item // what the queue should hold
		seq := uint64(0)
		for range rapid.IntRange(0, 300).Draw(t, "ops") {
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 5:
				it := item{
					at:       time.Duration(rapid.Int64Range(0, 20).Draw(t, "at")),
					seq:      seq,
					departAt: time.Duration(rapid.Int64().Draw(t, "depart")),
					sentAt:   time.Duration(rapid.Int64().Draw(t, "sent")),
					msgID:    rapid.Uint64().Draw(t, "id"),
					node:     NodeID(rapid.Int32().Draw(t, "node")),
					from:     NodeID(rapid.Int32().Draw(t, "from")),
					inc:      rapid.Uint32().Draw(t, "inc"),
					gen:      rapid.Uint32().Draw(t, "gen"),
					slot:     rapid.Int32().Draw(t, "slot"),
					kind:     itemKind(rapid.IntRange(1, 6).Draw(t, "kind")),
				}
				if rapid.Bool().Draw(t, "hasMsg") {
					it.msg = seq
				}
				seq++
				q.push(&it)
				model = append(model, it)
			case op < 9:
				if len(model) == 0 {
					continue
				}
				slices.SortFunc(model, func(a, b item) int {
					return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq))
				})
				if q.nextAt() != model[0].at {
					t.Fatalf("nextAt %v, want %v", q.nextAt(), model[0].at)
				}
				var got item
				q.pop(&got)
				if diff := gocmp.Diff(model[0], got, gocmp.AllowUnexported(item{})); diff != "" {
					t.Fatalf("popped (-want +got):\n%s", diff)
				}
				model = model[1:]
			default:
				odd := func(it *item) bool { return it.msgID%2 == 1 }
				q.filter(odd)
				model = slices.DeleteFunc(model, func(it item) bool { return !odd(&it) })
			}
			if q.len() != len(model) {
				t.Fatalf("queue holds %d items, want %d", q.len(), len(model))
			}
		}
	})
}
