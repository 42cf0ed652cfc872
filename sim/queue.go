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

// item is one entry of the event queue. The queue stores items by value
// in a slab, so scheduling an event allocates nothing.
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
// the heap moves 24 bytes and needs no write barriers.
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

// slabItem is an item without its message: the slab holds these and the
// messages side by side, so that storing, loading and freeing an item
// copies plain memory and only the message needs a write barrier.
type slabItem struct {
	departAt, sentAt time.Duration
	msgID            uint64
	node, from       NodeID
	inc, gen         uint32
	slot             int32
	kind             itemKind
}

// queue is a min-heap of items ordered by (at, seq): the heap orders keys,
// the items themselves stay put in a slab whose free slots are reused.
// Free slots hold no message.
type queue struct {
	keys  []qkey
	items []slabItem
	msgs  []Message
	free  []uint32
}

func (q *queue) len() int { return len(q.keys) }

func (q *queue) push(it *item) {
	var slot uint32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
	} else {
		slot = uint32(len(q.items))
		q.items = append(q.items, slabItem{})
		q.msgs = append(q.msgs, nil)
	}
	q.items[slot] = slabItem{departAt: it.departAt, sentAt: it.sentAt, msgID: it.msgID,
		node: it.node, from: it.from, inc: it.inc, gen: it.gen, slot: it.slot, kind: it.kind}
	if it.msg != nil {
		q.msgs[slot] = it.msg
	}
	q.keys = append(q.keys, qkey{at: it.at, seq: it.seq, slot: slot})
	q.up(len(q.keys) - 1)
}

// load copies the item of key k into dst.
func (q *queue) load(k qkey, dst *item) {
	h := &q.items[k.slot]
	dst.at, dst.seq = k.at, k.seq
	dst.departAt, dst.sentAt, dst.msgID = h.departAt, h.sentAt, h.msgID
	dst.node, dst.from, dst.inc, dst.gen, dst.slot, dst.kind = h.node, h.from, h.inc, h.gen, h.slot, h.kind
	dst.msg = q.msgs[k.slot]
}

// release frees slot for reuse, dropping its message for the collector.
func (q *queue) release(slot uint32) {
	if q.msgs[slot] != nil {
		q.msgs[slot] = nil
	}
	q.free = append(q.free, slot)
}

// pop removes the earliest item and copies it into dst.
func (q *queue) pop(dst *item) {
	k := q.keys[0]
	last := len(q.keys) - 1
	if last > 0 {
		q.replaceTop(q.keys[last])
	}
	q.keys = q.keys[:last]
	q.load(k, dst)
	q.release(k.slot)
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

// nextAt is the time of the earliest item.
func (q *queue) nextAt() time.Duration { return q.keys[0].at }

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
	for i := len(q.keys)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

// each calls f with a copy of every queued item, in no particular order.
func (q *queue) each(f func(*item)) {
	var it item
	for _, k := range q.keys {
		q.load(k, &it)
		f(&it)
	}
}
