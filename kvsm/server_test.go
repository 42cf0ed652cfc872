package kvsm_test

import (
	"fmt"
	"testing"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/sim"
)

// disk plays the host's journal for a machine driven by hand.
type disk struct{ j sim.Journal }

func (d *disk) apply(t *testing.T, out *sim.Effects) {
	t.Helper()
	d.j.Records = append(d.j.Records, out.Appends...)
	if s := out.Snapshot; s != nil {
		if s.UpTo < d.j.Base || s.UpTo > d.j.Next() {
			t.Fatalf("snapshot up to %d outside [%d, %d]", s.UpTo, d.j.Base, d.j.Next())
		}
		d.j.Records = d.j.Records[s.UpTo-d.j.Base:]
		d.j.Base, d.j.Snapshot = s.UpTo, s.Data
	}
}

func step(t *testing.T, m sim.Machine, d *disk, ev sim.Event) *sim.Effects {
	t.Helper()
	var out sim.Effects
	m.Step(ev, &out)
	d.apply(t, &out)
	return &out
}

func request(t *testing.T, m sim.Machine, d *disk, from sim.NodeID, req kvsm.Request) kvsm.Response {
	t.Helper()
	out := step(t, m, d, sim.Event{Kind: sim.EventMessage, From: from, Msg: req})
	if len(out.Sends) != 1 || out.Sends[0].To != from {
		t.Fatalf("request %+v: sends %+v, want one reply to %d", req, out.Sends, from)
	}
	if req.Op.IsWrite() && len(out.Appends) != 1 {
		t.Fatalf("write %+v journaled %d records, want 1 before the reply", req, len(out.Appends))
	}
	if req.Op == kvsm.OpGet && len(out.Appends) != 0 {
		t.Fatalf("get journaled %d records", len(out.Appends))
	}
	return out.Sends[0].Msg.(kvsm.Response)
}

func TestServerMachineRestartsFromJournal(t *testing.T) {
	for _, every := range []int{-1, 3} {
		t.Run(fmt.Sprintf("snapshotEvery=%d", every), func(t *testing.T) {
			d := &disk{}
			boot := func() *kvsm.Server {
				m := kvsm.NewServer(kvsm.ServerConfig{SnapshotEvery: every})
				step(t, m, d, sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: 0, Journal: d.j}})
				return m
			}
			m := boot()
			if r := request(t, m, d, 7, kvsm.Request{ID: 1, Op: kvsm.OpGet, Key: []byte("foo")}); r.Status != kvsm.StatusNotFound {
				t.Fatalf("get missing: %+v", r)
			}
			if r := request(t, m, d, 7, kvsm.Request{ID: 2, Op: kvsm.OpDelete, Key: []byte("foo")}); r.Status != kvsm.StatusOK || r.ID != 2 {
				t.Fatalf("delete missing: %+v", r)
			}
			for i := range 10 {
				r := request(t, m, d, 8, kvsm.Request{ID: uint64(10 + i), Op: kvsm.OpSet, Key: []byte(fmt.Sprint("k", i%4)), Value: []byte(fmt.Sprint(i))})
				if r.Status != kvsm.StatusOK || r.ID != uint64(10+i) {
					t.Fatalf("set: %+v", r)
				}
			}
			request(t, m, d, 8, kvsm.Request{ID: 30, Op: kvsm.OpDelete, Key: []byte("k0")})
			want := string(m.Store().Snapshot())
			if every > 0 && d.j.Snapshot == nil {
				t.Fatal("no snapshot taken")
			}
			// Crash: a fresh machine rebuilt from the journal has the same state.
			m = boot()
			if got := string(m.Store().Snapshot()); got != want {
				t.Fatalf("after restart store differs:\n got %q\nwant %q", got, want)
			}
			if r := request(t, m, d, 9, kvsm.Request{ID: 31, Op: kvsm.OpGet, Key: []byte("k1")}); string(r.Value) != "9" {
				t.Fatalf("get k1 after restart: %+v", r)
			}
			if r := request(t, m, d, 9, kvsm.Request{ID: 32, Op: kvsm.OpGet, Key: []byte("k0")}); r.Status != kvsm.StatusNotFound {
				t.Fatalf("get deleted k0 after restart: %+v", r)
			}
		})
	}
}

func TestServerRefusesBadRequests(t *testing.T) {
	d := &disk{}
	m := kvsm.NewServer(kvsm.ServerConfig{})
	step(t, m, d, sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{}})
	out := step(t, m, d, sim.Event{Kind: sim.EventMessage, From: 3, Msg: kvsm.Request{ID: 5, Op: kvsm.OpSet, Key: make([]byte, kvsm.MaxKey+1)}})
	if len(out.Appends) != 0 || len(out.Sends) != 1 || out.Sends[0].Msg.(kvsm.Response).Status != kvsm.StatusBadRequest {
		t.Fatalf("over-long key: %+v", out)
	}
	if m.Store().Len() != 0 {
		t.Fatal("refused request changed the store")
	}
	out = step(t, m, d, sim.Event{Kind: sim.EventMessage, From: 3, Msg: kvsm.Request{ID: 6, Op: kvsm.OpOpen}})
	if len(out.Appends) != 0 || len(out.Sends) != 1 || out.Sends[0].Msg.(kvsm.Response).Status != kvsm.StatusBadRequest {
		t.Fatalf("open on a standalone server: %+v", out)
	}
	out = step(t, m, d, sim.Event{Kind: sim.EventMessage, From: 3, Msg: kvsm.Response{ID: 1}})
	if len(out.Sends)+len(out.Appends) != 0 {
		t.Fatalf("stray response caused effects: %+v", out)
	}
}
