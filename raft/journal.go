package raft

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Journal record format (all integers are unsigned varints, "vote" is the
// voted-for id plus one so that 0 means none):
//
//	hard state:  0x01 term vote                         crc32c
//	entries:     0x02 first count {term type len data}*  crc32c
//
// The trailing 4 bytes are the CRC-32C (Castagnoli, little endian) of
// everything before them. An entries record replaces the log from index
// first on: replay truncates the log to first-1 and appends. A hard state
// record replaces term and vote.
//
// The journal snapshot (Effects.SaveSnapshot) holds a node's whole durable
// state at the time it was taken, so it can replace every record before it:
//
//	snapshot:    0x03 term vote index lastTerm len appData count {term type len data}* crc32c
//
// where index/lastTerm describe the last entry the application state covers
// and the entries that follow are the log tail after it.
//
// Replay skips records that fail to decode (bad checksum, truncated) and
// entries records that would leave a gap; both are deterministic, so every
// replay of the same journal gives the same state.
const (
	recHardState byte = 1
	recEntries   byte = 2
	recSnapshot  byte = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errCorrupt = errors.New("raft: corrupt journal record")

// maxIndex bounds log indices (and terms are never near it either), so
// that index arithmetic cannot overflow on corrupt or hostile input.
const maxIndex = 1 << 62

func sealRecord(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func openRecord(b []byte) ([]byte, error) {
	if len(b) < 5 {
		return nil, errCorrupt
	}
	body := b[:len(b)-4]
	if binary.LittleEndian.Uint32(b[len(b)-4:]) != crc32.Checksum(body, castagnoli) {
		return nil, errCorrupt
	}
	return body, nil
}

func encodeHardState(term uint64, vote int64) []byte {
	b := make([]byte, 0, 16)
	b = append(b, recHardState)
	b = binary.AppendUvarint(b, term)
	b = binary.AppendUvarint(b, uint64(vote+1))
	return sealRecord(b)
}

func appendEntryBody(b []byte, es []Entry) []byte {
	b = binary.AppendUvarint(b, uint64(len(es)))
	for i := range es {
		b = binary.AppendUvarint(b, es[i].Term)
		b = append(b, byte(es[i].Type))
		b = binary.AppendUvarint(b, uint64(len(es[i].Data)))
		b = append(b, es[i].Data...)
	}
	return b
}

func entriesSize(es []Entry) int {
	n := 0
	for i := range es {
		n += len(es[i].Data) + 12
	}
	return n
}

func encodeEntries(es []Entry) []byte {
	return appendEntriesRecord(make([]byte, 0, entriesRecordSize(es)), es)
}

// entriesRecordSize estimates the encoded size of an entries record of es
// (varints may take more than it allows: see recordArena.entries).
func entriesRecordSize(es []Entry) int { return 16 + entriesSize(es) + 4 }

// appendEntriesRecord appends the entries record of es to dst.
func appendEntriesRecord(dst []byte, es []Entry) []byte {
	start := len(dst)
	dst = append(dst, recEntries)
	dst = binary.AppendUvarint(dst, es[0].Index)
	dst = appendEntryBody(dst, es)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// recordArena carves small journal records out of shared chunks, so that
// a node appending one record per message does not allocate one per
// message. A record is never modified once it is handed to the host, and
// the arena never writes a byte twice: records share a chunk's backing
// array, never bytes. A record keeps the capacity of the rest of its chunk,
// so that a host can tell that consecutive records lie back to back (the
// simulator's durable journal keeps such a run as one slice); the host
// never writes to a record (see sim.Effects.Append), and the journal a
// machine boots with holds records clipped to their length.
type recordArena struct{ buf []byte }

// A chunk is one allocation size class. A small one wastes little at its
// end, where the next record did not fit, and in the last chunk a node
// filled: a node of a short run (the standard scenario's nodes each write
// some 27 KB of records) lost a fifth of its record bytes to that with 16
// KiB chunks; 4 KiB ones cost an allocation per 150-odd records.
const (
	arenaChunk     = 4 << 10
	arenaMaxRecord = arenaChunk / 4 // larger records get their own array
)

// entries encodes the entries record of es.
func (a *recordArena) entries(es []Entry) []byte {
	if len(es) == 1 {
		if rec := a.oneEntry(&es[0]); rec != nil {
			return rec
		}
	}
	return a.batch(es)
}

// batch encodes the entries record of es, in the arena if it is small.
func (a *recordArena) batch(es []Entry) []byte {
	size := entriesRecordSize(es)
	if size > arenaMaxRecord {
		return encodeEntries(es)
	}
	// The size is a hint (varints may be longer), so leave room for the
	// longest encoding and check that append did not move the bytes.
	bound := size + 9 + 9*len(es)
	if cap(a.buf)-len(a.buf) < bound {
		a.buf = make([]byte, 0, arenaChunk)
	}
	free := cap(a.buf) - len(a.buf)
	rec := appendEntriesRecord(a.buf[len(a.buf):len(a.buf)], es)
	if cap(rec) != free {
		return rec // reallocated by append: not in the arena
	}
	a.buf = a.buf[:len(a.buf)+len(rec)]
	return rec
}

// oneEntry encodes the entries record of the single entry e if its head
// fits in 8 bytes (first index below 2^21, term below 2^7, data shorter
// than 2^7 bytes), or returns nil. It is the record of every entry a leader
// appends and of most a follower does, so its head is built in a register
// and stored at once, rather than field by field with a capacity check
// each.
func (a *recordArena) oneEntry(e *Entry) []byte {
	idx, term, d := e.Index, e.Term, uint64(len(e.Data))
	if term >= 1<<7 || d >= 1<<7 {
		return nil
	}
	var w uint64 // the head, first byte lowest: type, first index, count 1, term, entry type, length
	var h int    // its length
	switch {
	case idx < 1<<7:
		w, h = idx<<8, 6
	case idx < 1<<14:
		w, h = (idx&0x7f|0x80)<<8|(idx>>7)<<16, 7
	case idx < 1<<21:
		w, h = (idx&0x7f|0x80)<<8|(idx>>7&0x7f|0x80)<<16|(idx>>14)<<24, 8
	default:
		return nil
	}
	sh := uint(8 * (h - 4)) // where the count goes
	w |= uint64(recEntries) | 1<<sh | term<<(sh+8) | uint64(e.Type)<<(sh+16) | d<<(sh+24)
	size := h + int(d) + 4
	if cap(a.buf)-len(a.buf) < size {
		a.buf = make([]byte, 0, arenaChunk)
	}
	start := len(a.buf)
	a.buf = a.buf[:start+size]
	rec := a.buf[start:]                // with the chunk's free space as capacity
	b := rec[:size:size]                // (written through a clipped view: cheaper bounds)
	binary.LittleEndian.PutUint64(b, w) // size >= 10: the data and checksum overwrite what lies past the head
	copy(b[h:], e.Data)
	binary.LittleEndian.PutUint32(b[size-4:], crc32.Checksum(b[:size-4], castagnoli))
	return rec
}

// reader decodes varint fields, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return nil
	}
	if n == 0 {
		r.b = r.b[0:]
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// entries decodes count entries numbered from first. Each entry takes at
// least 3 bytes, which bounds count before anything is allocated.
func (r *reader) entries(first uint64) []Entry {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b))/3 {
		r.err = errCorrupt
		return nil
	}
	if n == 0 {
		return nil
	}
	es := make([]Entry, n)
	for i := range es {
		es[i].Index = first + uint64(i)
		es[i].Term = r.uvarint()
		t := r.byte1()
		if t > byte(EntryNoop) {
			r.err = errCorrupt
		}
		es[i].Type = EntryType(t)
		es[i].Data = r.bytes()
		if r.err != nil {
			return nil
		}
	}
	return es
}

// snapshotState is what a journal snapshot holds.
type snapshotState struct {
	term, index, lastTerm uint64
	vote                  int64
	app                   []byte
	tail                  []Entry
}

func encodeSnapshot(st *snapshotState) []byte {
	b := make([]byte, 0, 32+len(st.app)+entriesSize(st.tail))
	b = append(b, recSnapshot)
	b = binary.AppendUvarint(b, st.term)
	b = binary.AppendUvarint(b, uint64(st.vote+1))
	b = binary.AppendUvarint(b, st.index)
	b = binary.AppendUvarint(b, st.lastTerm)
	b = binary.AppendUvarint(b, uint64(len(st.app)))
	b = append(b, st.app...)
	b = appendEntryBody(b, st.tail)
	return sealRecord(b)
}

func decodeSnapshot(raw []byte) (*snapshotState, error) {
	body, err := openRecord(raw)
	if err != nil {
		return nil, err
	}
	r := reader{b: body}
	if r.byte1() != recSnapshot {
		return nil, errCorrupt
	}
	st := &snapshotState{}
	st.term = r.uvarint()
	st.vote = int64(r.uvarint()) - 1
	st.index = r.uvarint()
	st.lastTerm = r.uvarint()
	st.app = r.bytes()
	if st.index > maxIndex {
		return nil, errCorrupt
	}
	st.tail = r.entries(st.index + 1)
	if r.err != nil || len(r.b) != 0 {
		return nil, errCorrupt
	}
	return st, nil
}

// record is one decoded journal record.
type record struct {
	kind  byte
	term  uint64
	vote  int64
	first uint64
	es    []Entry
}

func decodeRecord(raw []byte) (record, error) {
	body, err := openRecord(raw)
	if err != nil {
		return record{}, err
	}
	r := reader{b: body}
	rec := record{kind: r.byte1()}
	switch rec.kind {
	case recHardState:
		rec.term = r.uvarint()
		rec.vote = int64(r.uvarint()) - 1
	case recEntries:
		rec.first = r.uvarint()
		if rec.first > maxIndex {
			return record{}, errCorrupt
		}
		rec.es = r.entries(rec.first)
		if r.err == nil && (len(rec.es) == 0 || rec.first == 0) {
			r.err = errCorrupt
		}
	default:
		return record{}, errCorrupt
	}
	if r.err != nil || len(r.b) != 0 {
		return record{}, errCorrupt
	}
	return rec, nil
}
