package sim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// TestQueueOrder: whatever the interleaving of pushes, pops and filters,
// the queue pops exactly the items still in it, earliest (at, seq) first,
// each with every field it was pushed with, message included. Pushes and
// pops come in runs long enough to take the queue past sortedMax and back
// below sortedMin, so both representations and the switches between them
// are exercised; the test fails if no run made both switches.
func TestQueueOrder(t *testing.T) {
	var toHeap, toSorted int
	rapid.Check(t, func(t *rapid.T) {
		var q queue
		var model []item // what the queue should hold
		sorted := true   // model is in (at, seq) order
		seq := uint64(0)
		popOne := func() {
			if len(model) == 0 {
				return
			}
			if !sorted {
				slices.SortFunc(model, func(a, b item) int {
					return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq))
				})
				sorted = true
			}
			if q.nextAt() != model[0].at {
				t.Fatalf("nextAt %v, want %v", q.nextAt(), model[0].at)
			}
			var got item
			q.take(q.popKey(), &got)
			if diff := gocmp.Diff(model[0], got, gocmp.AllowUnexported(item{}, itemBody{})); diff != "" {
				t.Fatalf("popped (-want +got):\n%s", diff)
			}
			model = model[1:]
		}
		for range rapid.IntRange(0, 40).Draw(t, "runs") {
			wasHeap := q.heap
			switch op := rapid.IntRange(0, 9).Draw(t, "op"); {
			case op < 5:
				for range rapid.IntRange(1, 2*sortedMax).Draw(t, "pushes") {
					it := item{
						// A narrow range of times: many ties, broken by seq.
						at:  time.Duration(rapid.Int64Range(0, 20).Draw(t, "at")),
						seq: seq,
					}
					it.itemBody = itemBody{
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
					*q.push(it.at, it.seq, it.msg) = it.itemBody
					model = append(model, it)
					sorted = false
				}
			case op < 9:
				for range rapid.IntRange(1, 2*sortedMax).Draw(t, "pops") {
					popOne()
				}
			default:
				odd := func(it *item) bool { return it.msgID%2 == 1 }
				q.filter(odd)
				model = slices.DeleteFunc(model, func(it item) bool { return !odd(&it) })
			}
			if q.len() != len(model) {
				t.Fatalf("queue holds %d items, want %d", q.len(), len(model))
			}
			checkQueueShape(t, &q)
			switch {
			case !wasHeap && q.heap:
				toHeap++
			case wasHeap && !q.heap:
				toSorted++
			}
		}
		for len(model) > 0 {
			popOne()
		}
	})
	if toHeap == 0 || toSorted == 0 {
		t.Errorf("the runs switched to a heap %d times and back %d times: both regimes need covering", toHeap, toSorted)
	}
}

// checkQueueShape fails unless q's keys are in the order its mode says and
// its size is within that mode's bounds.
func checkQueueShape(t interface{ Fatalf(string, ...any) }, q *queue) {
	n := len(q.keys)
	if !q.heap {
		if n > sortedMax {
			t.Fatalf("sorted array of %d keys, more than %d", n, sortedMax)
		}
		for i := 1; i < n; i++ {
			if !q.keys[i].less(&q.keys[i-1]) {
				t.Fatalf("sorted keys out of order at %d: %+v then %+v", i, q.keys[i-1], q.keys[i])
			}
		}
		return
	}
	if n < sortedMin {
		t.Fatalf("heap of %d keys, fewer than %d", n, sortedMin)
	}
	for i := 1; i < n; i++ {
		if p := (i - 1) / 2; q.keys[i].less(&q.keys[p]) {
			t.Fatalf("heap key %d %+v earlier than its parent %+v", i, q.keys[i], q.keys[p])
		}
	}
}

// BenchmarkQueue measures one pop of the earliest item and one push of a
// new one (the engine's steady state) on a queue holding a fixed number
// of items. Each new item comes a random delay after the popped one,
// either short (a message: it ranks among the earliest) or long (a
// timer: it ranks among the latest), in the proportions given.
func BenchmarkQueue(b *testing.B) {
	for _, size := range []int{8, 32, 63, 128, 1024} {
		for _, timers := range []int{10, 50} {
			b.Run(fmt.Sprintf("items=%d/timers=%d%%", size, timers), func(b *testing.B) {
				r := rand.New(rand.NewPCG(1, 2))
				delay := func() time.Duration {
					if r.IntN(100) < timers {
						return 50*time.Millisecond + time.Duration(r.Int64N(int64(250*time.Millisecond)))
					}
					return time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
				}
				var q queue
				var seq uint64
				it := item{itemBody: itemBody{kind: itemMessage}}
				for range size {
					*q.push(delay(), seq, nil) = it.itemBody
					seq++
				}
				b.ResetTimer()
				for b.Loop() {
					q.take(q.popKey(), &it)
					*q.push(it.at+delay(), seq, nil) = it.itemBody
					seq++
				}
			})
		}
	}
}

// burster sends n messages to node 1 on start, then one a millisecond.
type burster struct{ n int }

func (m *burster) Step(ev Event, out *Effects) {
	switch ev.Kind {
	case EventStart:
		for i := range m.n {
			out.Send(1, i)
		}
		out.SetTimer("tick", time.Millisecond)
	case EventTimer:
		out.Send(1, -1)
		out.SetTimer("tick", time.Millisecond)
	}
}

// TestBurstLeavesFewMessagesAlive checks the bounds on what the engine
// keeps referenced after a burst of messages has been delivered: free
// queue slots and a node's spent effects may keep a few messages for
// reuse, not the burst.
func TestBurstLeavesFewMessagesAlive(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: func(id NodeID) Machine {
		if id == 0 {
			return &burster{n: 5000}
		}
		return silent{}
	}, Network: Network{Delay: time.Millisecond}})
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Delivered; got < 5000 {
		t.Fatalf("%d messages delivered, want the burst's 5000 at least", got)
	}
	queued := map[uint32]bool{}
	for _, k := range s.q.keys {
		queued[k.slot] = true
	}
	kept := 0
	for slot, m := range s.q.msgs {
		if m != nil && !queued[uint32(slot)] {
			kept++
		}
	}
	if kept > staleSlots {
		t.Errorf("free queue slots keep %d messages, want at most %d", kept, staleSlots)
	}
	sends := s.nodes[0].out.Sends
	kept = 0
	for _, snd := range sends[:cap(sends)] {
		if snd.Msg != nil {
			kept++
		}
	}
	if kept > staleSends {
		t.Errorf("node 0's spent effects keep %d messages, want at most %d", kept, staleSends)
	}
}

// TestPushedBodyIsZeroed checks the promise callers rely on when they set
// only the fields their kind of item uses: a reused slot comes back empty.
func TestPushedBodyIsZeroed(t *testing.T) {
	var q queue
	b := q.push(1, 1, "m")
	*b = itemBody{departAt: 1, sentAt: 2, msgID: 3, node: 4, from: 5, inc: 6, gen: 7, slot: 8, kind: itemMessage}
	var it item
	q.take(q.popKey(), &it)
	if it.node != 4 || it.msg != "m" {
		t.Fatalf("popped %+v, want the item pushed", it)
	}
	if b := q.push(2, 2, nil); *b != (itemBody{}) {
		t.Fatalf("a reused slot's body is %+v, want it zeroed", *b)
	}
}

// TestPushOld checks that items pushed again with the seq they had before
// (as Resume does) pop in (at, seq) order among items numbered since, with
// the keys a sorted array and a heap.
func TestPushOld(t *testing.T) {
	for _, n := range []int{3, sortedMax + 8} {
		var q queue
		var want []uint64
		// Items numbered 10, 20, ... at time 1, and as many at time 2.
		for i := range n {
			q.push(1, uint64(10*(i+1)), nil)
			q.push(2, uint64(10*(n+i+1)), nil)
		}
		// Older items, at time 1: before, between and after those there.
		for _, seq := range []uint64{5, 15, uint64(10*n + 5)} {
			q.pushOld(1, seq, nil)
		}
		for i := range n {
			want = append(want, uint64(10*(i+1)))
		}
		want = append(want, 5, 15, uint64(10*n+5))
		slices.Sort(want)
		for i := range n {
			want = append(want, uint64(10*(n+i+1)))
		}
		var got []uint64
		for q.len() > 0 {
			var it item
			q.take(q.popKey(), &it)
			got = append(got, it.seq)
		}
		if diff := gocmp.Diff(want, got); diff != "" {
			t.Errorf("%d items a time: popped seqs (-want +got):\n%s", n, diff)
		}
	}
}
