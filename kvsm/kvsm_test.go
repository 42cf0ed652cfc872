package kvsm_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/sim"
)

func genRequest(t *rapid.T, label string) kvsm.Request {
	op := rapid.SampledFrom([]kvsm.Op{kvsm.OpGet, kvsm.OpSet, kvsm.OpDelete}).Draw(t, label+".op")
	r := kvsm.Request{
		ID:  rapid.Uint64().Draw(t, label+".id"),
		Op:  op,
		Key: []byte(rapid.SampledFrom([]string{"", "a", "b", "foo", "k\x00"}).Draw(t, label+".key")),
	}
	if op == kvsm.OpSet {
		r.Value = rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, label+".value")
	}
	if rapid.Bool().Draw(t, label+".session") {
		r.Client = rapid.Uint64().Draw(t, label+".client")
		r.Seq = rapid.Uint64().Draw(t, label+".seq")
	}
	return r
}

// TestStoreMatchesModel applies random requests to a Store and to a plain
// map and compares every response, and checks that snapshots restore.
func TestStoreMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := kvsm.NewStore()
		model := map[string]string{}
		n := rapid.IntRange(0, 50).Draw(t, "n")
		for i := range n {
			req := genRequest(t, fmt.Sprint(i))
			got := s.Apply(req)
			want := kvsm.Response{ID: req.ID}
			switch req.Op {
			case kvsm.OpGet:
				if v, ok := model[string(req.Key)]; ok {
					want.Value = []byte(v)
				} else {
					want.Status = kvsm.StatusNotFound
				}
			case kvsm.OpSet:
				model[string(req.Key)] = string(req.Value)
			case kvsm.OpDelete:
				delete(model, string(req.Key))
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("request %d %+v (-want +got):\n%s", i, req, diff)
			}
			if want.Status == kvsm.StatusOK && req.Op == kvsm.OpGet && got.Value == nil {
				t.Fatalf("get of a present key answered a nil value")
			}
		}
		if s.Len() != len(model) {
			t.Fatalf("Len %d, model has %d", s.Len(), len(model))
		}
		r := kvsm.NewStore()
		if err := r.Restore(s.Snapshot()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.Snapshot(), s.Snapshot()) {
			t.Fatal("restored store snapshots differently")
		}
		for k, v := range model {
			got, ok := r.Get([]byte(k))
			if !ok || string(got) != v {
				t.Fatalf("restored store: %q = %q, %v; want %q", k, got, ok, v)
			}
		}
	})
}

func TestSnapshotIsDeterministic(t *testing.T) {
	a, b := kvsm.NewStore(), kvsm.NewStore()
	for i := range 100 {
		a.Apply(kvsm.Request{Op: kvsm.OpSet, Key: []byte(fmt.Sprint(i)), Value: []byte{byte(i)}})
		b.Apply(kvsm.Request{Op: kvsm.OpSet, Key: []byte(fmt.Sprint(99 - i)), Value: []byte{byte(99 - i)}})
	}
	if !bytes.Equal(a.Snapshot(), b.Snapshot()) {
		t.Fatal("equal stores built in different orders snapshot differently")
	}
	if err := kvsm.NewStore().Restore([]byte("S\x01\x05")); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	unsorted := []byte{'S', 1, 2, 1, 'b', 0, 1, 'a', 0}
	if err := kvsm.NewStore().Restore(unsorted); err == nil {
		t.Fatal("snapshot with unsorted keys restored")
	}
}

func TestCodecRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var c kvsm.Codec
		req := genRequest(t, "req")
		b, err := c.Encode(nil, req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(req, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("request round trip (-want +got):\n%s", diff)
		}
		resp := kvsm.Response{
			ID:     rapid.Uint64().Draw(t, "id"),
			Status: kvsm.Status(rapid.IntRange(0, 3).Draw(t, "status")),
		}
		if rapid.Bool().Draw(t, "hasValue") {
			resp.Value = rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "value")
		}
		if rapid.Bool().Draw(t, "hasSession") {
			resp.Session = rapid.Uint64Min(1).Draw(t, "session")
		}
		b, err = c.Encode(b[:0], &resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err = c.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		// nil and empty values differ on the wire: compare exactly.
		if diff := cmp.Diff(resp, got); diff != "" {
			t.Fatalf("response round trip (-want +got):\n%s", diff)
		}
		open := kvsm.Request{ID: rapid.Uint64().Draw(t, "openID"), Op: kvsm.OpOpen}
		b, err = c.Encode(b[:0], open)
		if err != nil {
			t.Fatal(err)
		}
		if got, err = c.Decode(b); err != nil || !cmp.Equal(open, got, cmpopts.EquateEmpty()) {
			t.Fatalf("open round trip: %+v, %v; want %+v", got, err, open)
		}
	})
}

func TestCodecRejects(t *testing.T) {
	var c kvsm.Codec
	good, _ := c.Encode(nil, kvsm.Request{ID: 7, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("v")})
	for name, b := range map[string][]byte{
		"empty":         {},
		"tag":           {'X'},
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"bad op":        {'Q', 9, 0, 0, 0},
		"unknown flags": {'Q', 1, 0x80, 0, 0},
		"huge key":      {'Q', 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad status":    {'R', 9, 0, 0},
		"open with key": {'Q', 4, 0, 0, 1, 'k'},
		"open w/ seq":   {'Q', 4, 1, 0, 5, 1, 0},
		"session 0":     {'R', 0, 8, 0, 0},
	} {
		if m, err := c.Decode(b); err == nil {
			t.Errorf("%s: decoded %+v", name, m)
		}
	}
	if _, err := c.Encode(nil, kvsm.Request{Op: kvsm.OpGet, Key: make([]byte, kvsm.MaxKey+1)}); err == nil {
		t.Error("encoded an over-long key")
	}
	if _, err := c.Encode(nil, "string"); err == nil {
		t.Error("encoded a foreign message")
	}
}

func fuzzSeeds(f *testing.F) {
	var c kvsm.Codec
	for _, m := range []sim.Message{
		kvsm.Request{ID: 1, Op: kvsm.OpGet, Key: []byte("foo")},
		kvsm.Request{ID: 2, Op: kvsm.OpSet, Key: []byte("foo"), Value: []byte("hello"), Client: 3, Seq: 4},
		kvsm.Request{ID: 300, Op: kvsm.OpDelete, Key: []byte("")},
		kvsm.Response{ID: 1, Status: kvsm.StatusOK, Value: []byte("hello")},
		kvsm.Response{ID: 2, Status: kvsm.StatusNotFound},
		kvsm.Response{ID: 3, Status: kvsm.StatusOK, Value: []byte{}},
		kvsm.Request{ID: 4, Op: kvsm.OpOpen},
		kvsm.Response{ID: 4, Status: kvsm.StatusOK, Session: 12},
	} {
		b, err := c.Encode(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{'Q', 2, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
}

// FuzzDecodeRequest: decoding never panics, and whatever decodes encodes
// back to something that decodes to the same request.
func FuzzDecodeRequest(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := kvsm.DecodeRequest(b)
		if err != nil {
			return
		}
		enc, err := kvsm.AppendRequest(nil, &q)
		if err != nil {
			t.Fatalf("decoded request %+v does not encode: %v", q, err)
		}
		q2, err := kvsm.DecodeRequest(enc)
		if err != nil {
			t.Fatalf("re-encoded request does not decode: %v", err)
		}
		if diff := cmp.Diff(q, q2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzDecodeResponse: as FuzzDecodeRequest, for responses.
func FuzzDecodeResponse(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := kvsm.DecodeResponse(b)
		if err != nil {
			return
		}
		enc, err := kvsm.AppendResponse(nil, &p)
		if err != nil {
			t.Fatalf("decoded response %+v does not encode: %v", p, err)
		}
		p2, err := kvsm.DecodeResponse(enc)
		if err != nil {
			t.Fatalf("re-encoded response does not decode: %v", err)
		}
		if diff := cmp.Diff(p, p2); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// FuzzRestore: restoring arbitrary bytes never panics and leaves the store
// unchanged on error; an accepted snapshot re-snapshots to bytes that
// restore to the same store.
func FuzzRestore(f *testing.F) {
	s := kvsm.NewStore()
	s.Apply(kvsm.Request{Op: kvsm.OpSet, Key: []byte("a"), Value: []byte("1")})
	s.Apply(kvsm.Request{Op: kvsm.OpSet, Key: []byte("b"), Value: []byte{}})
	f.Add(s.Snapshot())
	f.Add(kvsm.NewStore().Snapshot())
	f.Add([]byte{'S', 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		st := kvsm.NewStore()
		st.Apply(kvsm.Request{Op: kvsm.OpSet, Key: []byte("keep"), Value: []byte("me")})
		before := st.Snapshot()
		if err := st.Restore(b); err != nil {
			if !bytes.Equal(st.Snapshot(), before) {
				t.Fatal("failed restore changed the store")
			}
			return
		}
		snap := st.Snapshot()
		again := kvsm.NewStore()
		if err := again.Restore(snap); err != nil {
			t.Fatalf("own snapshot refused: %v", err)
		}
		if !bytes.Equal(again.Snapshot(), snap) {
			t.Fatal("snapshot does not round-trip")
		}
	})
}
