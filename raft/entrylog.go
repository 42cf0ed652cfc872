package raft

// entryLog is the sequence of log entries after the snapshot, held in
// blocks of logBlock entries rather than in one array.
//
// One array has to be copied whole whenever it fills, so a log that grows
// one entry at a time allocates about twice its final size and moves every
// entry (with a write barrier per Data pointer while the collector runs)
// once or twice. Blocks are allocated once and never copied: a growing log
// allocates only what it holds, rounded up to a block.
//
// Messages share the log's memory: an AppendEntries carries a slice of a
// block, clipped to its entries. So a slot, once written and part of the
// log, is never written again; the only slots ever written are those past
// the end of the log, which no message can reach. Truncation therefore
// copies the surviving part of the block it cuts into a fresh block (the
// slots it frees may be in messages still in flight), and a batch that
// spans two blocks is copied into an array of its own.
type entryLog struct {
	blocks []*[logBlock]Entry // entry i is at position off+i
	off    int                // position of entry 0 in blocks[0]
	n      int                // number of entries
}

// logBlock is the number of entries per block: 256 entries of 48 bytes are
// 12 KiB, one allocation size class, with no waste; large enough that
// batches rarely span two blocks, small enough not to matter for a node
// with a short log.
const (
	logBlockShift = 8
	logBlock      = 1 << logBlockShift
	logBlockMask  = logBlock - 1
)

// len returns the number of entries.
func (l *entryLog) len() int { return l.n }

// at returns entry i (0 <= i < len), which must not be modified.
func (l *entryLog) at(i int) *Entry {
	p := l.off + i
	return &l.blocks[p>>logBlockShift][p&logBlockMask]
}

// append adds es after the last entry.
func (l *entryLog) append(es []Entry) {
	for i := range es {
		p := l.off + l.n
		if p>>logBlockShift == len(l.blocks) {
			l.blocks = append(l.blocks, new([logBlock]Entry))
		}
		setEntry(&l.blocks[p>>logBlockShift][p&logBlockMask], &es[i])
		l.n++
	}
}

// slice returns entries lo..hi-1 (0 <= lo < hi <= len) as a slice that
// must not be modified and has no spare capacity. It shares the log's
// memory when they lie in one block, which is the usual case; otherwise it
// is a copy.
func (l *entryLog) slice(lo, hi int) []Entry {
	p := l.off + lo
	j := p & logBlockMask // where the entries start in their block
	k := j + hi - lo      // and end, if they fit
	if k > logBlock {
		return l.copySlice(lo, hi)
	}
	return l.blocks[p>>logBlockShift][j:k:k]
}

// copySlice returns a copy of entries lo..hi-1.
func (l *entryLog) copySlice(lo, hi int) []Entry {
	s := make([]Entry, hi-lo)
	for i := range s {
		setEntry(&s[i], l.at(lo+i))
	}
	return s
}

// all returns every entry, as slice does (nil if there are none).
func (l *entryLog) all() []Entry {
	if l.n == 0 {
		return nil
	}
	return l.slice(0, l.n)
}

// truncate drops entries i and after (0 <= i <= len).
func (l *entryLog) truncate(i int) {
	if i == l.n {
		return
	}
	if i == 0 {
		*l = entryLog{}
		return
	}
	p := l.off + i // position of the first entry dropped
	b := p >> logBlockShift
	if p&logBlockMask == 0 {
		// The cut is at a block boundary: keep whole blocks only.
		clear(l.blocks[b:])
		l.blocks = l.blocks[:b]
	} else {
		// Later appends will write the slots just freed, and messages in
		// flight may hold them: move the survivors to a fresh block.
		// (In the first block, the slots before off hold entries already
		// dropped: they are not copied, so as not to keep their data.)
		from := 0
		if b == 0 {
			from = l.off
		}
		fresh := new([logBlock]Entry)
		copy(fresh[from:], l.blocks[b][from:p&logBlockMask])
		clear(l.blocks[b+1:])
		l.blocks = l.blocks[:b+1]
		l.blocks[b] = fresh
	}
	l.n = i
}

// dropFront drops the first k entries (0 <= k <= len), releasing the
// blocks that held only those. (The rest of the first block they shared
// with entries kept stays allocated until its own entries go.)
func (l *entryLog) dropFront(k int) {
	if k == l.n {
		*l = entryLog{}
		return
	}
	p := l.off + k
	b := p >> logBlockShift
	if b > 0 {
		// A fresh block list, so that the old one no longer holds the
		// dropped blocks.
		l.blocks = append([]*[logBlock]Entry(nil), l.blocks[b:]...)
	}
	l.off = p & logBlockMask
	l.n -= k
}

// setEntry copies *e to *d field by field. While the collector runs,
// copying an Entry whole (or a slice of them) goes through the runtime's
// bulk write barrier, which looks up the type's pointer layout; a copy of
// the fields takes the plain write barrier of the one pointer, several
// times cheaper, and the log copies an entry for every entry appended.
func setEntry(d, e *Entry) {
	d.Index, d.Term, d.Type = e.Index, e.Term, e.Type
	d.Data = e.Data
}
