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

// recordLog is a sequence of journal records held in chunks that stay put
// as it grows. A single slice regrown by doubling would copy every record
// reference it holds at each doubling and leave the old array to the
// collector; over a long run that is as many bytes again as the log
// itself, all of them pointers for the collector to scan.
type recordLog struct {
	full  [][][]byte // filled chunks, oldest first
	nfull int        // records in full
	tail  [][]byte   // the chunk being filled
}

// Chunk sizes, in records: a new chunk is as large as the log so far,
// within these bounds, so a short log allocates little and a long one
// few chunks (maxChunk record references are 24 KiB).
const (
	minChunk = 64
	maxChunk = 1024
)

func (l *recordLog) len() int { return l.nfull + len(l.tail) }

func (l *recordLog) append(rec []byte) {
	if len(l.tail) == cap(l.tail) {
		if l.tail != nil {
			l.full = append(l.full, l.tail)
			l.nfull += len(l.tail)
		}
		l.tail = make([][]byte, 0, min(max(l.nfull, minChunk), maxChunk))
	}
	l.tail = append(l.tail, rec)
}

// clone returns the records in one slice of their own (nil if none).
func (l *recordLog) clone() [][]byte {
	if l.len() == 0 {
		return nil
	}
	recs := make([][]byte, 0, l.len())
	for _, c := range l.full {
		recs = append(recs, c...)
	}
	return append(recs, l.tail...)
}

// from returns a new log of the records from index i on.
func (l *recordLog) from(i int) recordLog {
	var kept recordLog
	for _, c := range l.full {
		if i >= len(c) {
			i -= len(c)
			continue
		}
		for _, rec := range c[i:] {
			kept.append(rec)
		}
		i = 0
	}
	for _, rec := range l.tail[min(i, len(l.tail)):] {
		kept.append(rec)
	}
	return kept
}
