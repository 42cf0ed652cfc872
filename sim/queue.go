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
// binary heap so that scheduling an event allocates nothing.
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

// queue is a min-heap of items ordered by (at, seq).
type queue struct{ items []item }

func (q *queue) less(i, j int) bool {
	a, b := &q.items[i], &q.items[j]
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

func (q *queue) len() int { return len(q.items) }

func (q *queue) push(it item) {
	q.items = append(q.items, it)
	i := len(q.items) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.items[i], q.items[p] = q.items[p], q.items[i]
		i = p
	}
}

func (q *queue) pop() item {
	top := q.items[0]
	last := len(q.items) - 1
	q.items[0] = q.items[last]
	q.items[last] = item{} // release references for the collector
	q.items = q.items[:last]
	q.down(0)
	return top
}

// down restores the heap order below i.
func (q *queue) down(i int) {
	n := len(q.items)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.items[i], q.items[m] = q.items[m], q.items[i]
		i = m
	}
}

// heapify restores the heap order of the whole queue in place, after items
// were removed from the middle.
func (q *queue) heapify() {
	for i := len(q.items)/2 - 1; i >= 0; i-- {
		q.down(i)
	}
}

func (q *queue) peek() *item { return &q.items[0] }
