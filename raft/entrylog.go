package raft

// entryLog is the sequence of log entries after the snapshot, held as
// pointers in blocks of logBlock rather than as entries in one array.
//
// An entry is immutable once in a log, so a log need not hold a copy of
// its own: an entry a follower takes from an AppendEntries stays where the
// message has it (in the leader's log, in the simulator), and the
// follower's log holds a pointer to it: 8 bytes per entry rather than 48.
// Only the entries a node appends itself (as leader: appendOwn) are stored
// by the log, in blocks of its own (own) at the same positions as their
// pointers.
//
// Blocks are allocated once and never copied: one array would have to be
// copied whole whenever it fills.
//
// Messages share the own blocks: an AppendEntries carries a slice of one,
// clipped to its entries. So an own slot is written at most once: only
// slots at or past ownEnd, which no message can reach, are ever written,
// and an append below ownEnd (after a truncation) starts a fresh block.
// Entries that are not in an own block, or that span two, go out as a copy.
type entryLog struct {
	refs   []*[logBlock]*Entry // entry i is *refs[p>>logBlockShift][p&logBlockMask], p = off+i
	own    []*[logBlock]Entry  // the entries appendOwn stored, at their positions (nil: none in that block)
	off    int                 // position of entry 0 in refs[0]
	n      int                 // number of entries
	ownEnd int                 // own slots at positions from ownEnd on were never written
}

// logBlock is the number of entries per block: 256 entries of 48 bytes are
// 12 KiB and 256 pointers 2 KiB, allocation size classes both, with no
// waste; large enough that batches rarely span two blocks, small enough
// not to matter for a node with a short log.
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
	return l.refs[p>>logBlockShift][p&logBlockMask]
}

// ref returns the slot for the pointer to the entry at position p (the end
// of the log), adding a block if p starts one.
func (l *entryLog) ref(p int) **Entry {
	if p>>logBlockShift == len(l.refs) {
		l.refs = append(l.refs, new([logBlock]*Entry))
	}
	return &l.refs[p>>logBlockShift][p&logBlockMask]
}

// append adds es after the last entry. The log keeps pointers to es's
// entries, which must never be modified (as no entry in a message is).
func (l *entryLog) append(es []Entry) {
	for i := range es {
		*l.ref(l.off + l.n) = &es[i]
		l.n++
	}
}

// appendOwn adds a copy of *e after the last entry, stored by the log, and
// returns the copy.
func (l *entryLog) appendOwn(e *Entry) *Entry {
	p := l.off + l.n
	b := p >> logBlockShift
	if p < l.ownEnd && b < len(l.own) {
		// A truncation cut the log below slots already written, which
		// messages may hold: leave those blocks to them.
		clear(l.own[b:])
		l.own = l.own[:b]
	}
	for len(l.own) <= b {
		l.own = append(l.own, nil)
	}
	if l.own[b] == nil {
		l.own[b] = new([logBlock]Entry)
	}
	d := &l.own[b][p&logBlockMask]
	setEntry(d, e)
	l.ownEnd = p + 1
	*l.ref(p) = d
	l.n++
	return d
}

// slice returns entries lo..hi-1 (0 <= lo < hi <= len) as a slice that
// must not be modified and has no spare capacity. It shares the log's
// memory when they lie in one own block, which is the usual case for a
// leader; otherwise it is a copy.
func (l *entryLog) slice(lo, hi int) []Entry {
	p := l.off + lo
	b := p >> logBlockShift
	j := p & logBlockMask // where the entries start in their block
	k := j + hi - lo      // and end, if they fit
	if k > logBlock || b >= len(l.own) || l.own[b] == nil {
		return l.copySlice(lo, hi)
	}
	blk, rs := l.own[b], l.refs[b]
	for x := j; x < k; x++ {
		if rs[x] != &blk[x] {
			return l.copySlice(lo, hi)
		}
	}
	return blk[j:k:k]
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

// truncate drops entries i and after (0 <= i <= len). Pointer slots are
// rewritten by later appends (no message holds them); own slots are not
// (see appendOwn).
func (l *entryLog) truncate(i int) {
	if i == l.n {
		return
	}
	if i == 0 {
		*l = entryLog{}
		return
	}
	// Release the blocks that now lie wholly past the end, and the
	// pointers to dropped entries in the block the cut falls in (pointer
	// blocks are the log's alone; own slots are not cleared, as messages
	// may hold them).
	end := l.off + i
	nb := (end + logBlockMask) >> logBlockShift
	clear(l.refs[nb:])
	l.refs = l.refs[:nb]
	if j := end & logBlockMask; j != 0 {
		clear(l.refs[nb-1][j:])
	}
	if len(l.own) > nb {
		clear(l.own[nb:])
		l.own = l.own[:nb]
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
		// Fresh block lists, so that the old ones no longer hold the
		// dropped blocks.
		l.refs = append([]*[logBlock]*Entry(nil), l.refs[b:]...)
		if len(l.own) > b {
			l.own = append([]*[logBlock]Entry(nil), l.own[b:]...)
		} else {
			l.own = nil
		}
		l.ownEnd = max(l.ownEnd-b*logBlock, 0)
	}
	l.off = p & logBlockMask
	l.n -= k
}

// setEntry copies *e to *d field by field. While the collector runs,
// copying an Entry whole (or a slice of them) goes through the runtime's
// bulk write barrier, which looks up the type's pointer layout; a copy of
// the fields takes the plain write barrier of the one pointer, several
// times cheaper.
func setEntry(d, e *Entry) {
	d.Index, d.Term, d.Type = e.Index, e.Term, e.Type
	d.Data = e.Data
}
