package runtime

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/flotilla-sim/flotilla/sim"
)

// Journal file names inside the journal directory.
const (
	WALFile      = "journal.wal"
	SnapshotFile = "journal.snap"
)

// MaxRecord is the largest journal record Append accepts.
const MaxRecord = 64 << 20

const (
	walMagic      = "FLWL"
	snapMagic     = "FLSN"
	walHeaderSize = 16 // magic, base, crc
	recHeaderSize = 8  // length, crc
	snapHeader    = 20 // magic, base, length, crc
	flushAt       = 4 << 20
)

// ErrCorrupt marks a journal that cannot be recovered without losing data
// that was once durable. Errors from OpenJournal wrap it.
var ErrCorrupt = errors.New("journal corrupt")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal is a node's write-ahead journal: a log file of checksummed records
// and a snapshot file that replaces a prefix of the log. It is not safe for
// concurrent use; the host calls it from the goroutine that owns the
// machine.
//
// Files, all integers little-endian, checksums CRC32C (Castagnoli):
//
//	journal.wal:  "FLWL" | base uint64 | crc(magic, base) uint32
//	              then records: length uint32 | crc(length, data) uint32 | data
//	journal.snap: "FLSN" | base uint64 | length uint32 | crc(base, length, data) uint32 | data
//
// The first record in journal.wal has the absolute index base. A snapshot
// with base b replaces the records with indices below b. Both files are only
// ever replaced atomically (write a temporary file, fsync it, rename it over
// the old one, fsync the directory), so a crash leaves the old or the new
// version, never a mix; only the end of journal.wal can be torn.
//
// Recovery (OpenJournal): a last record that is incomplete, or that ends the
// file and fails its checksum, or whose claimed end is followed by nothing
// but zero bytes, is a torn write: the file is truncated before it. A
// record that fails its checksum with other data after it, or a damaged
// header or snapshot, is corruption: OpenJournal refuses with an error
// naming the file and offset. Records are only ever appended (never
// written into preallocated space), so on a file system that orders data
// before metadata a crash's torn writes lie past the last synced size.
type Journal struct {
	dir      string
	f        *os.File
	base     uint64  // absolute index of the first record in the wal
	offsets  []int64 // file offset of record base+i
	size     int64   // bytes written to the wal file
	pending  []byte  // encoded records not yet written to the file
	dirty    bool    // written but not yet fsync'd
	snapBase uint64
	hasSnap  bool
	rec      sim.Journal
	lock     *os.File // holds the directory lock
}

// OpenJournal opens (creating if needed) the journal in dir and recovers
// it. The recovered contents are available from Recovered. On Unix it holds
// an exclusive lock on dir/LOCK until Close, so a second process opening
// the same directory fails with ErrLocked.
func OpenJournal(dir string) (*Journal, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runtime: journal: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	j, err := openLocked(dir)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	j.lock = lock
	return j, nil
}

func openLocked(dir string) (*Journal, error) {
	j := &Journal{dir: dir}
	snapPath := filepath.Join(dir, SnapshotFile)
	if b, err := os.ReadFile(snapPath); err == nil {
		data, base, err := parseSnapshot(snapPath, b)
		if err != nil {
			return nil, err
		}
		j.rec.Snapshot, j.snapBase, j.hasSnap = data, base, true
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("runtime: journal: %w", err)
	}

	walPath := filepath.Join(dir, WALFile)
	b, err := os.ReadFile(walPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := j.writeWAL(j.snapBase, nil); err != nil {
			return nil, err
		}
		j.rec.Base = j.snapBase
		return j, nil
	case err != nil:
		return nil, fmt.Errorf("runtime: journal: %w", err)
	}
	base, recs, offsets, end, err := scanWAL(walPath, b)
	if err != nil {
		return nil, err
	}
	if !j.hasSnap && base != 0 {
		return nil, fmt.Errorf("runtime: journal %s: records start at index %d but there is no snapshot: %w", walPath, base, ErrCorrupt)
	}
	if j.hasSnap && base > j.snapBase {
		return nil, fmt.Errorf("runtime: journal %s: records start at index %d, after the snapshot's %d: %w", walPath, base, j.snapBase, ErrCorrupt)
	}
	j.f, err = os.OpenFile(walPath, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("runtime: journal: %w", err)
	}
	if end < int64(len(b)) {
		// Torn tail: cut it off so new records follow the last good one.
		if err := j.f.Truncate(end); err != nil {
			j.f.Close()
			return nil, fmt.Errorf("runtime: journal: truncating torn tail of %s: %w", walPath, err)
		}
	}
	// What was read may have come from the page cache of a process killed
	// before its sync: make it durable before the machine acts on it.
	if err := j.f.Sync(); err != nil {
		j.f.Close()
		return nil, fmt.Errorf("runtime: journal: %w", err)
	}
	j.base, j.offsets, j.size = base, offsets, end
	j.rec.Base = base
	j.rec.Records = recs
	if j.hasSnap {
		// A crash between replacing the snapshot and compacting the wal
		// leaves records the snapshot already covers: finish the job.
		next := base + uint64(len(recs))
		if j.snapBase > next {
			j.f.Close()
			return nil, fmt.Errorf("runtime: journal %s: snapshot covers up to index %d but the log ends at %d: %w", snapPath, j.snapBase, next, ErrCorrupt)
		}
		if j.snapBase > base {
			if err := j.compact(j.snapBase); err != nil {
				j.f.Close()
				return nil, err
			}
		}
		j.rec.Base = j.snapBase
		j.rec.Records = recs[j.snapBase-base:]
	}
	return j, nil
}

func parseSnapshot(path string, b []byte) ([]byte, uint64, error) {
	if len(b) < snapHeader || string(b[:4]) != snapMagic {
		return nil, 0, fmt.Errorf("runtime: journal %s: bad snapshot header at offset 0: %w", path, ErrCorrupt)
	}
	base := binary.LittleEndian.Uint64(b[4:])
	n := binary.LittleEndian.Uint32(b[12:])
	sum := binary.LittleEndian.Uint32(b[16:])
	if int64(n) != int64(len(b)-snapHeader) {
		return nil, 0, fmt.Errorf("runtime: journal %s: snapshot length %d does not match file size %d: %w", path, n, len(b), ErrCorrupt)
	}
	if crc32.Update(crc32.Checksum(b[4:16], castagnoli), castagnoli, b[snapHeader:]) != sum {
		return nil, 0, fmt.Errorf("runtime: journal %s: snapshot checksum mismatch at offset %d: %w", path, snapHeader, ErrCorrupt)
	}
	return b[snapHeader:], base, nil
}

// scanWAL parses a wal file image. end is where the valid records end; a
// torn tail lies beyond it.
func scanWAL(path string, b []byte) (base uint64, recs [][]byte, offsets []int64, end int64, err error) {
	if len(b) < walHeaderSize || string(b[:4]) != walMagic ||
		crc32.Checksum(b[:12], castagnoli) != binary.LittleEndian.Uint32(b[12:]) {
		return 0, nil, nil, 0, fmt.Errorf("runtime: journal %s: bad header at offset 0: %w", path, ErrCorrupt)
	}
	base = binary.LittleEndian.Uint64(b[4:])
	off := int64(walHeaderSize)
	for off < int64(len(b)) {
		rest := b[off:]
		if len(rest) < recHeaderSize {
			break // torn header
		}
		n := int64(binary.LittleEndian.Uint32(rest))
		if recHeaderSize+n > int64(len(rest)) {
			break // torn body
		}
		data := rest[recHeaderSize : recHeaderSize+n]
		if crc32.Update(crc32.Checksum(rest[:4], castagnoli), castagnoli, data) != binary.LittleEndian.Uint32(rest[4:]) {
			if recHeaderSize+n == int64(len(rest)) || allZero(rest[recHeaderSize+n:]) {
				break // torn last record
			}
			return 0, nil, nil, 0, fmt.Errorf("runtime: journal %s: record %d at offset %d fails its checksum and is followed by %d more bytes; refusing to start: %w",
				path, base+uint64(len(recs)), off, int64(len(rest))-recHeaderSize-n, ErrCorrupt)
		}
		recs = append(recs, data)
		offsets = append(offsets, off)
		off += recHeaderSize + n
	}
	return base, recs, offsets, off, nil
}

func allZero(b []byte) bool {
	return len(bytes.TrimLeft(b, "\x00")) == 0
}

// Recovered returns what the journal held when it was opened, in the form a
// machine gets at start.
func (j *Journal) Recovered() sim.Journal { return j.rec }

// Next is the absolute index the next appended record gets.
func (j *Journal) Next() uint64 { return j.base + uint64(len(j.offsets)) }

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Append adds a record. It is written to the file by a later Sync (or
// earlier, once enough is buffered) and is durable only after Sync.
func (j *Journal) Append(rec []byte) error {
	if j.f == nil {
		return errors.New("runtime: journal is closed")
	}
	if len(rec) > MaxRecord {
		return fmt.Errorf("runtime: journal record of %d bytes exceeds the %d byte limit", len(rec), MaxRecord)
	}
	j.offsets = append(j.offsets, j.size+int64(len(j.pending)))
	var h [recHeaderSize]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(rec)))
	binary.LittleEndian.PutUint32(h[4:], crc32.Update(crc32.Checksum(h[:4], castagnoli), castagnoli, rec))
	j.pending = append(j.pending, h[:]...)
	j.pending = append(j.pending, rec...)
	if len(j.pending) >= flushAt {
		return j.write()
	}
	return nil
}

func (j *Journal) write() error {
	if len(j.pending) == 0 {
		return nil
	}
	if _, err := j.f.WriteAt(j.pending, j.size); err != nil {
		return fmt.Errorf("runtime: journal write: %w", err)
	}
	j.size += int64(len(j.pending))
	j.pending = j.pending[:0]
	j.dirty = true
	return nil
}

// Sync makes every record appended so far durable: one write and one fsync
// for everything since the last Sync.
func (j *Journal) Sync() error {
	if j.f == nil {
		return nil
	}
	if err := j.write(); err != nil {
		return err
	}
	if !j.dirty {
		return nil
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("runtime: journal fsync: %w", err)
	}
	j.dirty = false
	return nil
}

// SaveSnapshot durably replaces the records with absolute indices below upTo
// by data: it syncs the log, writes the snapshot file atomically, then
// rewrites the log without the records it covers.
func (j *Journal) SaveSnapshot(data []byte, upTo uint64) error {
	if j.f == nil {
		return errors.New("runtime: journal is closed")
	}
	if upTo < j.base || (j.hasSnap && upTo < j.snapBase) || upTo > j.Next() {
		return fmt.Errorf("runtime: snapshot up to index %d outside the journal's range [%d, %d]", upTo, j.base, j.Next())
	}
	if err := j.Sync(); err != nil {
		return err
	}
	img := make([]byte, snapHeader, snapHeader+len(data))
	copy(img, snapMagic)
	binary.LittleEndian.PutUint64(img[4:], upTo)
	binary.LittleEndian.PutUint32(img[12:], uint32(len(data)))
	binary.LittleEndian.PutUint32(img[16:], crc32.Update(crc32.Checksum(img[4:16], castagnoli), castagnoli, data))
	img = append(img, data...)
	if err := atomicWrite(j.dir, SnapshotFile, func(w io.Writer) error {
		_, err := w.Write(img)
		return err
	}); err != nil {
		return err
	}
	j.snapBase, j.hasSnap = upTo, true
	if upTo == j.base {
		return nil
	}
	return j.compact(upTo)
}

// compact rewrites the wal keeping only the records from index upTo on.
func (j *Journal) compact(upTo uint64) error {
	from := j.size
	if k := upTo - j.base; k < uint64(len(j.offsets)) {
		from = j.offsets[k]
	}
	old, oldBase := j.f, j.base
	src := io.NewSectionReader(old, from, j.size-from)
	if err := j.writeWAL(upTo, src); err != nil {
		return err
	}
	old.Close()
	shift := from - walHeaderSize
	kept := j.offsets[upTo-oldBase:]
	offsets := make([]int64, len(kept))
	for i, o := range kept {
		offsets[i] = o - shift
	}
	j.offsets = offsets
	return nil
}

// writeWAL atomically replaces the wal with a header for base followed by
// the bytes of records (if any), and opens it for appending.
func (j *Journal) writeWAL(base uint64, records io.Reader) error {
	var h [walHeaderSize]byte
	copy(h[:], walMagic)
	binary.LittleEndian.PutUint64(h[4:], base)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	var n int64
	err := atomicWrite(j.dir, WALFile, func(w io.Writer) error {
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		if records != nil {
			var err error
			n, err = io.Copy(w, records)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(j.dir, WALFile), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("runtime: journal: %w", err)
	}
	j.f, j.base, j.size, j.dirty = f, base, walHeaderSize+n, false
	return nil
}

// atomicWrite writes dir/name through a temporary file, fsyncs it, renames
// it into place and fsyncs the directory.
func atomicWrite(dir, name string, fill func(io.Writer) error) error {
	tmp := filepath.Join(dir, name+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("runtime: journal: %w", err)
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("runtime: journal: writing %s: %w", name, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close syncs and closes the journal.
func (j *Journal) Close() error {
	if j.f == nil {
		return nil
	}
	err := j.Sync()
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("runtime: journal: %w", cerr)
	}
	j.f = nil
	if j.lock != nil {
		j.lock.Close()
		j.lock = nil
	}
	return err
}
