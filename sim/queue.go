package sim

import "time"

type itemKind uint8

const (
	itemStart itemKind = iota + 1
	itemMessage
	itemTimer
	itemSyncDone
	itemSynced
	itemFault
)

// item is one entry of the event queue. Items are stored by value in a
// slab so that scheduling an event allocates nothing.
type item struct {
	at       time.Duration
	seq      uint64 // insertion order: breaks ties deterministically
	departAt time.Duration
	sentAt   time.Duration // when the machine sent the message
	msgID    uint64        // shared by a message's duplicates; a sync notification's token
	msg      Message
	node     NodeID // the node the item happens to
	from     NodeID // message sender
	inc      uint32 // incarnation of the node that created the item
	gen      uint32 // timer generation
	slot     int32  // timer slot, or fault index
	kind     itemKind
}

// qkey is a heap entry: the ordering key of one queued item and the slab
// slot that holds it. Keys hold no pointers, so sifting them up and down
// the heap moves 24 bytes and needs no write barriers, however large an
// item is.
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

// queue is a min-heap of items ordered by (at, seq): the heap orders keys,
// the items themselves stay put in a slab whose free slots are reused.
// Free slots are zeroed (kind 0), so they hold no references.
type queue struct {
	keys  []qkey
	items []item
	free  []uint32
}

func (q *queue) len() int { return len(q.keys) }

func (q *queue) push(it item) {
	var slot uint32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.items[slot] = it
	} else {
		slot = uint32(len(q.items))
		q.items = append(q.items, it)
	}
	q.keys = append(q.keys, qkey{at: it.at, seq: it.seq, slot: slot})
	q.up(len(q.keys) - 1)
}

// pop removes the earliest item and copies it into dst.
func (q *queue) pop(dst *item) {
	slot := q.keys[0].slot
	last := len(q.keys) - 1
	q.keys[0] = q.keys[last]
	q.keys = q.keys[:last]
	if last > 0 {
		q.down(0)
	}
	*dst = q.items[slot]
	q.items[slot] = item{} // release references for the collector
	q.free = append(q.free, slot)
}

// peek returns the earliest item; it stays valid until the next push or pop.
func (q *queue) peek() *item { return &q.items[q.keys[0].slot] }

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

// filter keeps only the queued items keep accepts, in place.
func (q *queue) filter(keep func(*item) bool) {
	kept := q.keys[:0]
	for _, k := range q.keys {
		if keep(&q.items[k.slot]) {
			kept = append(kept, k)
			continue
		}
		q.items[k.slot] = item{}
		q.free = append(q.free, k.slot)
	}
	q.keys = kept
	for i := len(q.keys)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

// each calls f for every queued item, in no particular order.
func (q *queue) each(f func(*item)) {
	for _, k := range q.keys {
		f(&q.items[k.slot])
	}
}
