package kvsm

import (
	"encoding/binary"
	"math"
	"testing"
	"time"
)

// appendCommandV1 writes a log entry as releases before explicit session
// opens did.
func appendCommandV1(req Request, stamp time.Duration) []byte {
	b := binary.AppendUvarint([]byte{'C', 1}, uint64(stamp))
	b, _ = AppendRequest(b, &req)
	return b
}

// A log written before sessions were opened through the log replays to
// the state it had then: a version 1 write numbered 1 opens its session
// under the client's own id, and a retry of it is answered from it.
func TestVersion1EntriesReplayByTheirRules(t *testing.T) {
	st := NewState(SessionConfig{})
	w := Request{ID: 1, Op: OpSet, Key: []byte("k"), Value: []byte("v"), Client: 0xabcdef, Seq: 1}
	for i := range 2 { // the write and a retry of it
		req, stamp, version, err := decodeCommand(appendCommandV1(w, time.Second))
		if err != nil || version != 1 {
			t.Fatalf("decode: %v, version %d", err, version)
		}
		if r := st.applyEntry(req, stamp, version); r.Status != StatusOK {
			t.Fatalf("attempt %d: %+v", i, r)
		}
	}
	if seq, ok := st.LastSeq(0xabcdef); !ok || seq != 1 || st.applied != 2 {
		t.Fatalf("session %d, %v after %d commands", seq, ok, st.applied)
	}
	// The same entry written today needs an open session.
	req, stamp, version, _ := decodeCommand(mustCommand(t, Request{ID: 2, Op: OpSet, Key: []byte("k"), Value: []byte("w"), Client: 77, Seq: 1}))
	if r := st.applyEntry(req, stamp, version); r.Status != StatusSessionExpired {
		t.Fatalf("version 2 write without a session: %+v", r)
	}
}

func mustCommand(t *testing.T, req Request) []byte {
	t.Helper()
	b, err := AppendCommand(nil, &req, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A version 1 snapshot restores, whatever ids its sessions had drawn (the
// largest possible included), and new sessions never take one of them.
func TestVersion1SnapshotRestores(t *testing.T) {
	ids := []uint64{3, math.MaxUint64}
	b := []byte{'K', 1}
	for _, v := range []uint64{uint64(time.Second), uint64(2 * time.Second), 5, uint64(len(ids))} {
		b = binary.AppendUvarint(b, v) // clock, next sweep, applied, count
	}
	for _, id := range ids {
		b = binary.AppendUvarint(b, id)
		b = binary.AppendUvarint(b, 7) // seq
		b = append(b, byte(StatusOK))
		b = binary.AppendUvarint(b, uint64(time.Second)) // active
		b = append(b, 0)                                 // no value
	}
	b = append(b, NewStore().Snapshot()...)
	st := NewState(SessionConfig{})
	if err := st.Restore(b); err != nil {
		t.Fatal(err)
	}
	opened := map[uint64]bool{}
	for range 5 {
		r := st.ApplyCommand(Request{Op: OpOpen}, time.Second)
		if r.Session == 3 || r.Session == math.MaxUint64 || r.Session == 0 || opened[r.Session] {
			t.Fatalf("open gave session %d (restored: %v, opened: %v)", r.Session, ids, opened)
		}
		opened[r.Session] = true
	}
	if seq, ok := st.LastSeq(3); !ok || seq != 7 {
		t.Fatalf("restored session 3 at seq %d, %v", seq, ok)
	}
	again := NewState(SessionConfig{})
	if err := again.Restore(st.Snapshot()); err != nil {
		t.Fatalf("the version 2 snapshot of a restored version 1 state: %v", err)
	}
}
