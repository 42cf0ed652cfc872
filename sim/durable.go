package sim

// durableJournal is what a node has made durable: the Journal a restarted
// machine boots with, kept in a form that is cheap to append to.
type durableJournal struct {
	snapshot []byte
	base     uint64 // absolute index of the first record
	records  recordLog
}

// next is the absolute index the next appended record will get.
func (d *durableJournal) next() uint64 { return d.base + uint64(d.records.len()) }

// journal returns the durable journal as a machine sees it at boot. Its
// Records are a copy of their own, so the caller may keep them while the
// node appends more.
func (d *durableJournal) journal() Journal {
	return Journal{Snapshot: d.snapshot, Base: d.base, Records: d.records.clone()}
}

// applySnapshot makes snap durable: it replaces the records below its UpTo.
func (d *durableJournal) applySnapshot(snap *SnapshotOp) {
	upTo := min(snap.UpTo, d.next())
	if upTo >= d.base {
		d.records = d.records.from(int(upTo - d.base))
		d.base = upTo
	}
	d.snapshot = snap.Data
}

// recordLog is a sequence of journal records, kept so that appending a
// record usually writes two bytes and no pointer.
//
// A machine that carves its records out of a shared buffer, as raft's
// record arena does, hands the host records that lie back to back in one
// array. The log keeps such a run of records as one slice, the run's first
// record with the capacity it came with, and the length of every other
// record of the run in a pointer-free array: a record that starts where
// the run so far ends, within that capacity, joins the run; any other
// record starts a run of its own. Holding a slice header per record
// instead would cost 24 bytes for the collector to scan and a pointer
// write (with its write barrier while the collector marks) per record.
//
// Records are immutable once appended (see Effects.Append), so the bytes
// of a run never change under the log. The log never writes them, and
// hands records out clipped to their length, so that a caller appending to
// one cannot reach its neighbour.
type recordLog struct {
	runs chunked[[]byte] // each run's first record, with its capacity
	lens chunked[uint16] // per record, in order: runStart, or its length
	run  []byte          // the last run's first record, at its capacity
	end  int             // bytes in the last run so far
}

// runStart is the lens entry of a record that starts a run: its length is
// that of the run's slice. A longer record never joins a run.
const runStart = 1<<16 - 1

// Chunk bounds, in elements: a new chunk is as large as the chunks so far,
// within these bounds, so a short log allocates little and a long one few
// chunks (maxRunChunk run slices are 24 KiB, maxLenChunk lengths 16 KiB).
const (
	minRunChunk = 64
	maxRunChunk = 1024
	minLenChunk = 256
	maxLenChunk = 8192
)

func (l *recordLog) len() int { return l.lens.len() }

// append adds rec.
func (l *recordLog) append(rec []byte) {
	if !l.join(rec) {
		l.appendSlow(rec)
	}
}

// join adds rec if it is the common case, a record that joins the run
// while the chunk of lengths has room, and reports whether it was. It is
// small enough to be inlined where records are appended one per event
// (see Sim.stepMachine); appendSlow adds the others.
func (l *recordLog) join(rec []byte) bool {
	// rec joins the run if its first byte is the one after the run's
	// last, and its bytes lie within the run's capacity.
	// (The run's slice reaches no further than runStart-1 bytes past its
	// first record, so a record that fits is short enough; see appendSlow.)
	n, e := len(rec), l.end
	if uint(n-1) < uint(len(l.run)-e) && uint(l.lens.ntail) < uint(len(l.lens.tail)) && &l.run[e] == &rec[0] {
		l.lens.tail[l.lens.ntail] = uint16(n)
		l.lens.ntail++
		l.end = e + n
		return true
	}
	return false
}

// appendSlow is append's case of a record that starts a run or needs a new
// chunk of lengths.
func (l *recordLog) appendSlow(rec []byte) {
	n, e := len(rec), l.end
	if uint(n-1) < uint(len(l.run)-e) && &l.run[e] == &rec[0] {
		l.lens.append(uint16(n), minLenChunk, maxLenChunk)
		l.end = e + n
		return
	}
	l.runs.append(rec, minRunChunk, maxRunChunk)
	l.lens.append(runStart, minLenChunk, maxLenChunk)
	// The run may grow into rec's capacity, by records shorter than
	// runStart: any that fits in runStart-1 bytes is.
	l.run, l.end = rec[:min(cap(rec), len(rec)+runStart-1)], len(rec)
}

// each calls f with every record from index i on, in order, each with the
// capacity of the rest of its run's array (callers handing a record out
// clip it).
func (l *recordLog) each(i int, f func(rec []byte)) {
	var runs cursor[[]byte]
	var lens cursor[uint16]
	runs.c, lens.c = &l.runs, &l.lens
	var run []byte
	off := 0
	for j := range l.lens.len() {
		n := int(lens.next())
		if n == runStart {
			run, off = runs.next(), 0
			n = len(run)
		}
		if j >= i {
			f(run[off : off+n])
		}
		off += n
	}
}

// clone returns the records in one slice of their own (nil if none), each
// clipped to its length.
func (l *recordLog) clone() [][]byte {
	if l.len() == 0 {
		return nil
	}
	recs := make([][]byte, 0, l.len())
	l.each(0, func(rec []byte) { recs = append(recs, rec[:len(rec):len(rec)]) })
	return recs
}

// from returns a new log of the records from index i on. l must not be
// used afterwards: when no record is kept (a snapshot of the whole
// journal, the usual case), the new log reuses l's last chunks.
func (l *recordLog) from(i int) recordLog {
	var kept recordLog
	if i >= l.len() {
		kept.runs, kept.lens = l.runs.emptied(), l.lens.emptied()
		return kept
	}
	// Unclipped, so that records adjacent here form runs there too, and
	// the last run can grow as it could here.
	l.each(i, kept.append)
	return kept
}

// chunked is a sequence held in chunks that stay put as it grows. A single
// slice regrown by doubling would copy every element at each doubling and
// leave the old array to the collector; over a long run that is as many
// bytes again as the sequence itself.
type chunked[T any] struct {
	full  [][]T // filled chunks, oldest first
	nfull int   // elements in full
	tail  []T   // the chunk being filled, at its full length
	ntail int   // elements in tail
}

func (c *chunked[T]) len() int { return c.nfull + c.ntail }

// append adds v, starting a chunk as large as the sequence so far, within
// [minChunk, maxChunk], if the last is full.
func (c *chunked[T]) append(v T, minChunk, maxChunk int) {
	if c.ntail == len(c.tail) {
		if c.tail != nil {
			c.full = append(c.full, c.tail)
			c.nfull += len(c.tail)
		}
		c.tail, c.ntail = make([]T, min(max(c.nfull, minChunk), maxChunk)), 0
	}
	c.tail[c.ntail] = v
	c.ntail++
}

// emptied returns an empty sequence that fills c's last chunk again, its
// elements cleared (c must not be used afterwards).
func (c *chunked[T]) emptied() chunked[T] {
	clear(c.tail[:c.ntail])
	return chunked[T]{tail: c.tail}
}

// cursor reads a chunked sequence from its start.
type cursor[T any] struct {
	c     *chunked[T]
	chunk int // index in c.full, or len(c.full) for the tail
	i     int // index in the chunk
}

// next returns the next element; there must be one.
func (r *cursor[T]) next() T {
	for r.chunk < len(r.c.full) {
		if ch := r.c.full[r.chunk]; r.i < len(ch) {
			r.i++
			return ch[r.i-1]
		}
		r.chunk, r.i = r.chunk+1, 0
	}
	r.i++
	return r.c.tail[r.i-1]
}
