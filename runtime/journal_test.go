package runtime_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func records(n int) [][]byte {
	var rs [][]byte
	for i := range n {
		rs = append(rs, []byte(fmt.Sprintf("record-%d-%s", i, strings.Repeat("x", i%7))))
	}
	return rs
}

func writeJournal(t testing.TB, dir string, rs [][]byte) {
	t.Helper()
	j, err := runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := j.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func recovered(t testing.TB, dir string) sim.Journal {
	t.Helper()
	j, err := runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	return j.Recovered()
}

func TestJournalRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if got := recovered(t, dir); !got.Empty() {
		t.Fatalf("fresh journal not empty: %+v", got)
	}
	rs := records(20)
	writeJournal(t, dir, rs[:10])
	writeJournal(t, dir, rs[10:]) // reopen and append more
	got := recovered(t, dir)
	if diff := cmp.Diff(sim.Journal{Records: rs}, got); diff != "" {
		t.Fatalf("recovered journal (-want +got):\n%s", diff)
	}
}

func TestJournalSnapshot(t *testing.T) {
	dir := t.TempDir()
	rs := records(10)
	j, err := runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs[:6] {
		j.Append(r)
	}
	if err := j.SaveSnapshot([]byte("state@4"), 4); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs[6:] {
		j.Append(r)
	}
	if err := j.SaveSnapshot([]byte("bad"), 3); err == nil {
		t.Fatal("snapshot below the current one accepted")
	}
	if err := j.SaveSnapshot([]byte("bad"), 11); err == nil {
		t.Fatal("snapshot beyond the end of the journal accepted")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	want := sim.Journal{Snapshot: []byte("state@4"), Base: 4, Records: rs[4:]}
	if diff := cmp.Diff(want, recovered(t, dir)); diff != "" {
		t.Fatalf("after snapshot (-want +got):\n%s", diff)
	}
	// A snapshot covering everything leaves no records.
	j, err = runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := j.SaveSnapshot([]byte("state@10"), 10); err != nil {
		t.Fatal(err)
	}
	j.Append([]byte("after"))
	j.Close()
	want = sim.Journal{Snapshot: []byte("state@10"), Base: 10, Records: [][]byte{[]byte("after")}}
	if diff := cmp.Diff(want, recovered(t, dir)); diff != "" {
		t.Fatalf("after full snapshot (-want +got):\n%s", diff)
	}
}

// TestJournalTornTail cuts the file at every byte offset inside the last
// record: recovery keeps every earlier record, truncates the rest, and
// appends after it work.
func TestJournalTornTail(t *testing.T) {
	base := t.TempDir()
	rs := records(5)
	full := filepath.Join(base, "full")
	writeJournal(t, full, rs)
	img, err := os.ReadFile(filepath.Join(full, runtime.WALFile))
	if err != nil {
		t.Fatal(err)
	}
	last := len(img) - (8 + len(rs[4]))
	for cut := last; cut < len(img); cut++ {
		dir := filepath.Join(base, fmt.Sprint(cut))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, runtime.WALFile), img[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		got := recovered(t, dir)
		if diff := cmp.Diff(sim.Journal{Records: rs[:4]}, got); diff != "" {
			t.Fatalf("cut at %d (-want +got):\n%s", cut, diff)
		}
		writeJournal(t, dir, [][]byte{[]byte("next")})
		want := append(append([][]byte{}, rs[:4]...), []byte("next"))
		if diff := cmp.Diff(sim.Journal{Records: want}, recovered(t, dir)); diff != "" {
			t.Fatalf("append after cut at %d (-want +got):\n%s", cut, diff)
		}
	}
	// A last record whose bytes were garbled, or a tail of zeros, is torn too.
	for name, mutate := range map[string]func([]byte) []byte{
		"garbled": func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b },
		"zeros":   func(b []byte) []byte { return append(b[:last], make([]byte, 100)...) },
	} {
		dir := filepath.Join(base, name)
		os.MkdirAll(dir, 0o755)
		os.WriteFile(filepath.Join(dir, runtime.WALFile), mutate(append([]byte(nil), img...)), 0o644)
		if diff := cmp.Diff(sim.Journal{Records: rs[:4]}, recovered(t, dir)); diff != "" {
			t.Fatalf("%s tail (-want +got):\n%s", name, diff)
		}
	}
}

// TestJournalCorruptMiddle flips a byte in a record that has others after
// it: OpenJournal refuses, naming the file and the offset.
func TestJournalCorruptMiddle(t *testing.T) {
	dir := t.TempDir()
	rs := records(5)
	writeJournal(t, dir, rs)
	path := filepath.Join(dir, runtime.WALFile)
	img, _ := os.ReadFile(path)
	off := 16 + 8 + len(rs[0]) // record 1
	img[off+8] ^= 0x01
	os.WriteFile(path, img, 0o644)
	_, err := runtime.OpenJournal(dir)
	if !errors.Is(err, runtime.ErrCorrupt) {
		t.Fatalf("OpenJournal = %v, want ErrCorrupt", err)
	}
	for _, want := range []string{path, fmt.Sprintf("offset %d", off), "record 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// A damaged snapshot is refused as well.
	dir2 := t.TempDir()
	j, _ := runtime.OpenJournal(dir2)
	j.Append([]byte("a"))
	j.SaveSnapshot([]byte("snap"), 1)
	j.Close()
	sp := filepath.Join(dir2, runtime.SnapshotFile)
	simg, _ := os.ReadFile(sp)
	simg[len(simg)-1] ^= 0xff
	os.WriteFile(sp, simg, 0o644)
	if _, err := runtime.OpenJournal(dir2); !errors.Is(err, runtime.ErrCorrupt) || !strings.Contains(err.Error(), sp) {
		t.Fatalf("OpenJournal with damaged snapshot = %v", err)
	}
}

// TestJournalCrashBetweenSnapshotAndCompaction recovers a directory holding
// the new snapshot but the old, uncompacted log.
func TestJournalCrashBetweenSnapshotAndCompaction(t *testing.T) {
	dir := t.TempDir()
	rs := records(6)
	writeJournal(t, dir, rs)
	oldWAL, _ := os.ReadFile(filepath.Join(dir, runtime.WALFile))
	j, _ := runtime.OpenJournal(dir)
	if err := j.SaveSnapshot([]byte("s3"), 3); err != nil {
		t.Fatal(err)
	}
	j.Close()
	os.WriteFile(filepath.Join(dir, runtime.WALFile), oldWAL, 0o644)
	want := sim.Journal{Snapshot: []byte("s3"), Base: 3, Records: rs[3:]}
	if diff := cmp.Diff(want, recovered(t, dir)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	writeJournal(t, dir, [][]byte{[]byte("z")})
	want.Records = append(append([][]byte{}, rs[3:]...), []byte("z"))
	if diff := cmp.Diff(want, recovered(t, dir)); diff != "" {
		t.Fatalf("after append (-want +got):\n%s", diff)
	}
}

// FuzzOpenJournal recovers arbitrary bytes as a log file: OpenJournal never
// panics; when it accepts the file, the records it returns are exactly the
// ones encoded at the start of the file, and appending after them works.
func FuzzOpenJournal(f *testing.F) {
	dir := f.TempDir()
	writeJournal(f, dir, records(3))
	img, err := os.ReadFile(filepath.Join(dir, runtime.WALFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img)
	f.Add(img[:len(img)-3])
	f.Add(append(append([]byte{}, img...), 0, 0, 0, 0, 0))
	f.Add(img[:16])
	f.Add([]byte("FLWL"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, runtime.WALFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		j, err := runtime.OpenJournal(dir)
		if err != nil {
			if !errors.Is(err, runtime.ErrCorrupt) {
				t.Fatalf("error not marked ErrCorrupt: %v", err)
			}
			return
		}
		rec := j.Recovered()
		if err := j.Append([]byte("next")); err != nil {
			t.Fatal(err)
		}
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		again := recovered(t, dir)
		want := append(append([][]byte{}, rec.Records...), []byte("next"))
		if diff := cmp.Diff(want, again.Records, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("records after reopening (-want +got):\n%s", diff)
		}
	})
}

func TestJournalLockedWhileOpen(t *testing.T) {
	dir := t.TempDir()
	j, err := runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runtime.OpenJournal(dir); !errors.Is(err, runtime.ErrLocked) {
		t.Fatalf("second OpenJournal = %v, want ErrLocked", err)
	}
	j.Close()
	j, err = runtime.OpenJournal(dir)
	if err != nil {
		t.Fatalf("OpenJournal after Close: %v", err)
	}
	j.Close()
}

// TestJournalZeroTail: a crash can leave the wal with zeros after its
// records (space the file system allocated but never wrote) and maybe a
// half-written record in them; recovery keeps every whole record, cuts the
// rest, and new records follow.
func TestJournalZeroTail(t *testing.T) {
	base := t.TempDir()
	live := filepath.Join(base, "live")
	j, err := runtime.OpenJournal(live)
	if err != nil {
		t.Fatal(err)
	}
	rs := records(6)
	for _, r := range rs {
		j.Append(r)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(filepath.Join(live, runtime.WALFile)) // what a crash now leaves
	if err != nil {
		t.Fatal(err)
	}
	end := 16
	for _, r := range rs {
		end += 8 + len(r)
	}
	if len(img) < end {
		t.Fatalf("wal holds %d bytes, want at least the %d of its records", len(img), end)
	}
	img = append(img, make([]byte, 4096)...)
	half := append([]byte(nil), img...)
	copy(half[end:], []byte{50, 0, 0, 0, 1, 2, 3, 4, 'p', 'a', 'r', 't'}) // a record cut off after 4 of 50 bytes
	for name, b := range map[string][]byte{"zeros": img, "half record": half} {
		dir := filepath.Join(base, strings.ReplaceAll(name, " ", "-"))
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, runtime.WALFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(sim.Journal{Records: rs}, recovered(t, dir)); diff != "" {
			t.Fatalf("%s: recovered (-want +got):\n%s", name, diff)
		}
		writeJournal(t, dir, [][]byte{[]byte("next")})
		want := append(append([][]byte{}, rs...), []byte("next"))
		if diff := cmp.Diff(sim.Journal{Records: want}, recovered(t, dir)); diff != "" {
			t.Fatalf("%s: after appending (-want +got):\n%s", name, diff)
		}
		if fi, err := os.Stat(filepath.Join(dir, runtime.WALFile)); err != nil || fi.Size() != int64(end+8+len("next")) {
			t.Fatalf("%s: wal is %v bytes (%v), want exactly its records, %d", name, fi.Size(), err, end+8+len("next"))
		}
	}
	j.Close()
}
