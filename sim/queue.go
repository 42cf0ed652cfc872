package sim

import (
	"slices"
	"time"
)

type itemKind uint8

const (
	itemStart itemKind = iota + 1
	itemMessage
	itemTimer
	itemSyncDone
	itemSynced
	itemFault
)

// item is one entry of the event queue: when it happens, its message if
// it carries one, and the rest.
type item struct {
	at  time.Duration
	seq uint64 // insertion order: breaks ties deterministically
	msg Message
	itemBody
}

// itemBody is everything of an item but its ordering key and its message.
// It holds no pointers, so the queue stores and loads it as a plain block
// of memory, without write barriers.
type itemBody struct {
	departAt time.Duration
	sentAt   time.Duration // when the machine sent the message
	msgID    uint64        // shared by a message's duplicates; a sync notification's token
	node     NodeID        // the node the item happens to
	from     NodeID        // message sender
	inc      uint32        // incarnation of the node that created the item
	gen      uint32        // timer generation
	slot     int32         // timer slot, or fault index
	kind     itemKind
}

// qkey is the ordering key of one queued item and the slab slot that holds
// it. Keys hold no pointers, so moving them moves 24 bytes and needs no
// write barriers.
type qkey struct {
	at   time.Duration
	seq  uint64
	slot uint32
}

func (a *qkey) less(b *qkey) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// queue holds the pending items ordered by (at, seq). The items stay put
// in a slab (bodies and messages side by side, so that only the message
// needs a write barrier) whose free slots are reused, so scheduling an
// event allocates nothing; only their keys are ordered.
//
// One of the first staleSlots free slots keeps the message of the item that
// last used it until the slot is reused: clearing it would cost a write
// barrier per event while the collector is marking, and a simulation that
// queues a few dozen items at a time uses no other slots. Later slots, used
// only in a burst, drop their message when freed, so a burst leaves at most
// staleSlots messages (and whatever they refer to) alive after it.
//
// The keys are kept in one of two ways. While few items are queued (a
// handful per node is typical: each node's timers and the messages in
// flight) they are a sorted array, latest first, so that the earliest is
// the last: pop just shortens the array, and push moves up only the keys
// earlier than the new one, which is usually a message a millisecond or two
// away and so ranks among the first few. Past sortedMax keys the array
// becomes a binary min-heap, whose push and pop cost O(log n) however far
// the new key ranks; it becomes a sorted array again once it shrinks below
// sortedMin, the gap between the two keeping a queue that hovers around
// one size from switching back and forth.
type queue struct {
	keys   []qkey
	heap   bool // keys is a min-heap rather than sorted latest first
	bodies []itemBody
	msgs   []Message
	free   []uint32
}

// The sizes at which the keys switch between a sorted array and a heap. A
// sorted push costs about as much as the new key's rank (how many queued
// keys are earlier), so the array wins while most new keys rank among the
// earliest. BenchmarkQueue, in instructions per pop and push: at 63 items
// the array saves a quarter when one new item in ten is a far timer and
// loses a sixth when half are; at 32 it wins either way.
const (
	sortedMax = 64
	sortedMin = 16
)

func (q *queue) len() int { return len(q.keys) }

// push queues an item with key (at, seq) and message msg, and returns its
// body, zeroed, for the caller to fill in at once (the pointer is good until
// the next push). seq must exceed that of every item queued, as it does
// when callers number items in the order they push them (pushOld takes
// the others). Callers fill the body field by field: building a body
// elsewhere and copying it in would read back, as one block, a struct just
// written field by field, a load the processor cannot serve from its
// pending stores, and that stall cost more than the rest of the push.
func (q *queue) push(at time.Duration, seq uint64, msg Message) *itemBody {
	if len(q.free) == 0 || q.heap || len(q.keys) == cap(q.keys) || len(q.keys) == sortedMax {
		// The rare cases, apart: a function that may call another
		// saves its arguments on entry, however rare the call.
		return q.pushRare(at, seq, msg)
	}
	slot, b := q.slot(msg)
	// Insert into the sorted array: the keys earlier than the new one move
	// up one. As seq exceeds every queued seq, a key is earlier if its time
	// is no later: one comparison rather than two.
	keys := q.keys[:len(q.keys)+1]
	q.keys = keys
	i := len(keys) - 1
	for i > 0 && keys[i-1].at <= at {
		keys[i] = keys[i-1]
		i--
	}
	keys[i] = qkey{at: at, seq: seq, slot: slot}
	return b
}

// pushRare is push when there is no free slot, the sorted array is full
// (to its capacity, or to sortedMax and becomes a heap) or a heap.
func (q *queue) pushRare(at time.Duration, seq uint64, msg Message) *itemBody {
	if len(q.free) == 0 {
		q.free = append(q.free, uint32(len(q.bodies)))
		q.bodies = append(q.bodies, itemBody{})
		q.msgs = append(q.msgs, nil)
	}
	if !q.heap && len(q.keys) == sortedMax {
		q.toHeap()
	}
	q.keys = slices.Grow(q.keys, 1)
	if !q.heap {
		return q.push(at, seq, msg) // its common case now
	}
	slot, b := q.slot(msg)
	q.keys = append(q.keys, qkey{at: at, seq: seq, slot: slot})
	q.up(len(q.keys) - 1)
	return b
}

// slot takes a free slot for an item with message msg and returns it and
// its body, zeroed.
func (q *queue) slot(msg Message) (uint32, *itemBody) {
	n := len(q.free) - 1
	slot := q.free[n]
	q.free = q.free[:n]
	b := &q.bodies[slot]
	*b = itemBody{}
	if msg != nil || q.msgs[slot] != nil {
		q.msgs[slot] = msg
	}
	return slot, b
}

// pushOld is push for an item that keeps the seq it was numbered with
// earlier (see Resume), below those of items queued since.
func (q *queue) pushOld(at time.Duration, seq uint64, msg Message) *itemBody {
	b := q.push(at, seq, msg)
	if q.heap {
		return b // the heap compares seqs
	}
	// push put the key first (latest) among those of its time, as if it
	// were the newest: move it past the keys of its time that are newer.
	keys := q.keys
	i := slices.IndexFunc(keys, func(k qkey) bool { return k.seq == seq })
	for i+1 < len(keys) && keys[i+1].at == at && keys[i+1].seq > seq {
		keys[i], keys[i+1] = keys[i+1], keys[i]
		i++
	}
	return b
}

// A pop is two calls, q.take(q.popKey(), &it): popKey removes the earliest
// key from the order, and take copies its item into it and frees its slot.
// take is small enough to inline, so that when it is the caller's local
// variable, the message is copied into it without a write barrier.

// popKey removes the earliest key and returns it.
func (q *queue) popKey() qkey {
	if q.heap {
		return q.popHeap()
	}
	return q.popLast()
}

// popLast is popKey for a sorted array, small enough to inline (popKey
// is not): the earliest key is the last.
func (q *queue) popLast() qkey {
	k := q.keys[len(q.keys)-1]
	q.keys = q.keys[:len(q.keys)-1]
	return k
}

// popHeap is popKey for a heap.
func (q *queue) popHeap() qkey {
	last := len(q.keys) - 1
	k := q.keys[0]
	if last > 0 {
		q.replaceTop(q.keys[last])
	}
	q.keys = q.keys[:last]
	if last < sortedMin {
		q.toSorted()
	}
	return k
}

// nextAt is the time of the earliest item.
func (q *queue) nextAt() time.Duration {
	if q.heap {
		return q.keys[0].at
	}
	return q.keys[len(q.keys)-1].at
}

// take copies the item of key k, just popped, into dst and frees its slot.
func (q *queue) take(k qkey, dst *item) {
	q.load(k, dst)
	q.release(k.slot)
}

// load copies the item of key k into dst.
func (q *queue) load(k qkey, dst *item) {
	dst.at, dst.seq = k.at, k.seq
	dst.itemBody = q.bodies[k.slot]
	dst.msg = q.msgs[k.slot]
}

// staleSlots is how many slots may keep a message once free (see queue).
const staleSlots = 64

// release frees slot for reuse.
func (q *queue) release(slot uint32) {
	if slot >= staleSlots {
		q.msgs[slot] = nil
	}
	q.free = append(q.free, slot)
}

// toHeap turns the sorted keys into a heap: an array sorted earliest first,
// the reverse of latest first, is a min-heap already.
func (q *queue) toHeap() {
	slices.Reverse(q.keys)
	q.heap = true
}

// toSorted turns the heap into a sorted array, latest first.
func (q *queue) toSorted() {
	slices.SortFunc(q.keys, func(a, b qkey) int {
		if b.less(&a) {
			return -1
		}
		return 1 // never equal: every item has its own seq
	})
	q.heap = false
}

// replaceTop puts k, the heap's last key, in place of the root. The last
// key is usually among the latest, so rather than sift it down comparing
// it at every level, it walks the hole left by the root down to a leaf
// along the smaller children (one comparison per level), then sifts k up
// from there (rarely more than a level). The last slot itself is dropped
// by the caller.
func (q *queue) replaceTop(k qkey) {
	keys := q.keys[:len(q.keys)-1]
	n := len(keys)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		if r := l + 1; r < n && keys[r].less(&keys[l]) {
			l = r
		}
		keys[i] = keys[l]
		i = l
	}
	for i > 0 {
		p := (i - 1) / 2
		if !k.less(&keys[p]) {
			break
		}
		keys[i] = keys[p]
		i = p
	}
	keys[i] = k
}

// up restores the heap order above i.
func (q *queue) up(i int) {
	k := q.keys[i]
	for i > 0 {
		p := (i - 1) / 2
		if !k.less(&q.keys[p]) {
			break
		}
		q.keys[i] = q.keys[p]
		i = p
	}
	q.keys[i] = k
}

// down restores the heap order below i.
func (q *queue) down(i int) {
	n := len(q.keys)
	k := q.keys[i]
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.keys[r].less(&q.keys[l]) {
			m = r
		}
		if !q.keys[m].less(&k) {
			break
		}
		q.keys[i] = q.keys[m]
		i = m
	}
	q.keys[i] = k
}

// filter keeps only the queued items keep accepts.
func (q *queue) filter(keep func(*item) bool) {
	kept := q.keys[:0]
	var it item
	for _, k := range q.keys {
		q.load(k, &it)
		if keep(&it) {
			kept = append(kept, k)
			continue
		}
		q.release(k.slot)
	}
	q.keys = kept
	if !q.heap {
		return // what is left of a sorted array is sorted
	}
	for i := len(q.keys)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
	if len(q.keys) < sortedMin {
		q.toSorted()
	}
}
