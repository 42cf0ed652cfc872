package kvsm_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

func set(client, seq uint64, key, val string) kvsm.Request {
	return kvsm.Request{ID: seq, Op: kvsm.OpSet, Key: []byte(key), Value: []byte(val), Client: client, Seq: seq}
}

func value(t *testing.T, st *kvsm.State, key string) string {
	t.Helper()
	v, _ := st.Store().Get([]byte(key))
	return string(v)
}

// open opens a session at stamp and returns its id.
func open(t *testing.T, st *kvsm.State, stamp time.Duration) uint64 {
	t.Helper()
	r := st.ApplyCommand(kvsm.Request{ID: 1, Op: kvsm.OpOpen}, stamp)
	if r.Status != kvsm.StatusOK || r.Session == 0 {
		t.Fatalf("open: %+v", r)
	}
	return r.Session
}

func TestSessionAppliesRetryOnce(t *testing.T) {
	st := kvsm.NewState(kvsm.SessionConfig{})
	a, b := open(t, st, 0), open(t, st, 0)
	if a == b {
		t.Fatalf("two opens gave one session id %d", a)
	}
	if r := st.ApplyCommand(set(a, 1, "k", "a"), 1); r.Status != kvsm.StatusOK {
		t.Fatalf("first write: %+v", r)
	}
	st.ApplyCommand(set(b, 1, "k", "b"), 2)
	r := st.ApplyCommand(set(a, 1, "k", "a"), 3) // a retry
	if r.Status != kvsm.StatusOK || value(t, st, "k") != "b" {
		t.Fatalf("retry answered %+v and left k=%q; want ok and k=b", r, value(t, st, "k"))
	}
	if d, ok := st.Duplicate(set(a, 1, "k", "a")); !ok || d.Status != kvsm.StatusOK {
		t.Fatalf("Duplicate = %+v, %v", d, ok)
	}
	if _, ok := st.Duplicate(set(a, 2, "k", "c")); ok {
		t.Fatal("a new write reported as duplicate")
	}
	st.ApplyCommand(set(a, 2, "k", "c"), 4)
	if r := st.ApplyCommand(set(a, 1, "k", "a"), 5); r.Status != kvsm.StatusError || value(t, st, "k") != "c" {
		t.Fatalf("superseded write answered %+v, k=%q", r, value(t, st, "k"))
	}
	// A write of a session never opened, even its first, is refused.
	if r := st.ApplyCommand(set(99, 1, "k", "z"), 6); r.Status != kvsm.StatusSessionExpired || value(t, st, "k") != "c" {
		t.Fatalf("write without session answered %+v, k=%q", r, value(t, st, "k"))
	}
}

// TestSessionRetriedFirstWriteAfterExpiry: the first write of a session,
// retried after the session expired, is refused rather than applied again,
// and the ids of later sessions never repeat the expired one.
func TestSessionRetriedFirstWriteAfterExpiry(t *testing.T) {
	st := kvsm.NewState(kvsm.SessionConfig{TTL: time.Second})
	a := open(t, st, 0)
	st.ApplyCommand(set(a, 1, "n", "1"), 0)
	b := open(t, st, 2*time.Second) // moves the clock; a expires
	st.ApplyCommand(set(b, 1, "n", "2"), 2*time.Second)
	if r := st.ApplyCommand(set(a, 1, "n", "1"), 2*time.Second); r.Status != kvsm.StatusSessionExpired || value(t, st, "n") != "2" {
		t.Fatalf("late retry of an expired session's first write: %+v, n=%q", r, value(t, st, "n"))
	}
	if c := open(t, st, 2*time.Second); c == a || c == b {
		t.Fatalf("session id %d reused (earlier: %d, %d)", c, a, b)
	}
}

// TestSessionExpiry: sessions idle for longer than the TTL of the log's
// clock are dropped, whatever order clients come in; a later write of the
// expired client is refused, not applied.
func TestSessionExpiry(t *testing.T) {
	st := kvsm.NewState(kvsm.SessionConfig{TTL: time.Second})
	c1 := open(t, st, 0)
	st.ApplyCommand(set(c1, 1, "a", "1"), 0)
	c2 := open(t, st, 500*time.Millisecond)
	st.ApplyCommand(set(c2, 1, "b", "1"), 500*time.Millisecond)
	st.ApplyCommand(set(c2, 2, "b", "2"), 1400*time.Millisecond)
	// A stamp from a leader whose clock is behind does not move the clock back.
	st.ApplyCommand(set(c2, 3, "b", "3"), 100*time.Millisecond)
	if _, ok := st.LastSeq(c1); ok {
		t.Fatal("client 1 idle for 1.4s of a 1s TTL still has a session")
	}
	if seq, ok := st.LastSeq(c2); !ok || seq != 3 {
		t.Fatalf("client 2 session: seq %d, %v", seq, ok)
	}
	if st.Clock() != 1400*time.Millisecond {
		t.Fatalf("clock %v", st.Clock())
	}
	if r := st.ApplyCommand(set(c1, 2, "a", "2"), 1500*time.Millisecond); r.Status != kvsm.StatusSessionExpired || value(t, st, "a") != "1" {
		t.Fatalf("write of an expired session: %+v, a=%q", r, value(t, st, "a"))
	}
}

func TestSessionEviction(t *testing.T) {
	st := kvsm.NewState(kvsm.SessionConfig{MaxSessions: 2})
	c1 := open(t, st, 1)
	open(t, st, 2)
	open(t, st, 3)
	if _, ok := st.LastSeq(c1); ok || st.Sessions() != 2 {
		t.Fatalf("sessions %d, client 1 kept: %v", st.Sessions(), ok)
	}
}

// TestStateSnapshotRoundTrip: any state restores from its snapshot into an
// equal state (same bytes), which then behaves the same.
func TestStateSnapshotRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := kvsm.SessionConfig{TTL: time.Duration(rapid.IntRange(1, 50).Draw(t, "ttl")), MaxSessions: rapid.IntRange(1, 5).Draw(t, "max")}
		a := kvsm.NewState(cfg)
		n := rapid.IntRange(0, 40).Draw(t, "n")
		var stamp time.Duration
		for i := range n {
			stamp += time.Duration(rapid.IntRange(0, 10).Draw(t, "dt"))
			req := kvsm.Request{ID: uint64(i), Op: kvsm.Op(rapid.IntRange(1, 4).Draw(t, "op")),
				Key: []byte{byte('a' + rapid.IntRange(0, 3).Draw(t, "key"))}, Client: uint64(rapid.IntRange(0, 6).Draw(t, "client")),
				Seq: uint64(rapid.IntRange(0, 4).Draw(t, "seq"))}
			switch req.Op {
			case kvsm.OpSet:
				req.Value = rapid.SliceOfN(rapid.Byte(), 0, 4).Draw(t, "value")
			case kvsm.OpOpen:
				req.Key, req.Seq = nil, 0
			}
			a.ApplyCommand(req, stamp)
		}
		snap := a.Snapshot()
		b := kvsm.NewState(cfg)
		if err := b.Restore(snap); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Snapshot(), snap) {
			t.Fatal("restored state snapshots differently")
		}
		next := set(uint64(rapid.IntRange(1, 6).Draw(t, "c")), uint64(rapid.IntRange(1, 4).Draw(t, "s")), "a", "x")
		ra, rb := a.ApplyCommand(next, stamp+5), b.ApplyCommand(next, stamp+5)
		if diff := cmp.Diff(ra, rb); diff != "" || !bytes.Equal(a.Snapshot(), b.Snapshot()) {
			t.Fatalf("restored state diverges (-orig +restored):\n%s", diff)
		}
	})
}

func TestCommandRoundTrip(t *testing.T) {
	req := set(3, 4, "key", "value")
	b, err := kvsm.AppendCommand(nil, &req, 1234*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	got, stamp, err := kvsm.DecodeCommand(b)
	if err != nil || stamp != 1234*time.Millisecond {
		t.Fatalf("decode: %v, stamp %v", err, stamp)
	}
	if diff := cmp.Diff(req, got); diff != "" {
		t.Fatal(diff)
	}
}

func TestNotLeaderResponseRoundTrip(t *testing.T) {
	var c kvsm.Codec
	for _, l := range []sim.NodeID{-1, 0, 4, 1<<31 - 1} {
		in := kvsm.Response{ID: 9, Status: kvsm.StatusNotLeader, Leader: l}
		b, err := c.Encode(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Decode(b)
		if err != nil || !cmp.Equal(out, in) {
			t.Fatalf("leader %d: decoded %+v, %v", l, out, err)
		}
	}
	if _, err := c.Encode(nil, kvsm.Response{Status: kvsm.StatusNotLeader, Leader: -2}); err == nil {
		t.Fatal("encoded a leader hint of -2")
	}
	// A leader hint with another status is refused.
	if _, err := c.Decode([]byte{'R', 0, 4, 1, 1}); err == nil {
		t.Fatal("decoded a leader hint on an ok response")
	}
}

func FuzzDecodeCommand(f *testing.F) {
	req := set(3, 4, "key", "value")
	b, _ := kvsm.AppendCommand(nil, &req, time.Second)
	f.Add(b)
	f.Add([]byte{'C', 1, 0})
	v1, _ := kvsm.AppendRequest([]byte{'C', 1, 5}, &req) // a version 1 entry
	f.Add(v1)
	f.Fuzz(func(t *testing.T, b []byte) {
		req, stamp, err := kvsm.DecodeCommand(b)
		if err != nil {
			return
		}
		again, err := kvsm.AppendCommand(nil, &req, stamp)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", req, err)
		}
		if req2, stamp2, err := kvsm.DecodeCommand(again); err != nil || stamp2 != stamp || !cmp.Equal(req, req2) {
			t.Fatalf("re-decoding differs: %+v %v %v", req2, stamp2, err)
		}
	})
}

func FuzzRestoreState(f *testing.F) {
	st := kvsm.NewState(kvsm.SessionConfig{})
	c := st.ApplyCommand(kvsm.Request{Op: kvsm.OpOpen}, time.Second).Session
	st.ApplyCommand(set(c, 1, "k", "v"), time.Second)
	st.ApplyCommand(kvsm.Request{Op: kvsm.OpSet, Key: []byte("x"), Value: []byte("y")}, 2*time.Second)
	if st.Sessions() != 1 {
		f.Fatalf("seed state has %d sessions, want 1", st.Sessions())
	}
	f.Add(st.Snapshot())
	f.Add(kvsm.NewState(kvsm.SessionConfig{}).Snapshot())
	// Version 1: clock, next sweep, applied, one session (id 9, seq 1, ok,
	// active 0, no value), an empty store.
	f.Add(append([]byte{'K', 1, 0, 0, 1, 1, 9, 1, 0, 0, 0}, kvsm.NewStore().Snapshot()...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := kvsm.NewState(kvsm.SessionConfig{})
		if err := s.Restore(b); err != nil {
			return
		}
		u := kvsm.NewState(kvsm.SessionConfig{})
		if err := u.Restore(s.Snapshot()); err != nil || !bytes.Equal(u.Snapshot(), s.Snapshot()) {
			t.Fatalf("accepted snapshot does not round-trip: %v", err)
		}
	})
}

// ---- the replica in the simulator ----

func replicaCluster(seed uint64, n, snapEvery int) *sim.Sim {
	peers := make([]sim.NodeID, n)
	for i := range peers {
		peers[i] = sim.NodeID(i)
	}
	rc := raft.Config{Peers: peers, PreVote: true, CheckQuorum: true, SnapshotEvery: uint64(snapEvery)}
	return sim.New(sim.Config{
		Seed: seed, Nodes: n, Network: sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond},
		Codec: kvsm.ReplicaCodec{},
		New: func(id sim.NodeID) sim.Machine {
			return kvsm.NewReplica(id, kvsm.ReplicaConfig{Raft: rc})
		},
		Checkers: []sim.Checker{raft.Checker(func(m sim.Machine) *raft.Node { return m.(*kvsm.Replica).Raft() })},
	})
}

func leaderOf(s *sim.Sim, n int) sim.NodeID {
	for i := range n {
		if r, ok := s.Machine(sim.NodeID(i)).(*kvsm.Replica); ok && r.IsLeader() {
			return sim.NodeID(i)
		}
	}
	return raft.None
}

// TestReplicaRetryAcrossRestart sends a write, another client's write to
// the same key, and then the first write again — after the whole cluster
// restarted from its journals (with snapshots): the retry must not be
// applied again, so every replica ends with the second value.
func TestReplicaRetryAcrossRestart(t *testing.T) {
	const n = 3
	s := replicaCluster(1, n, 3)
	inject := func(req kvsm.Request) {
		t.Helper()
		if err := s.RunUntil(func(s *sim.Sim) bool { return leaderOf(s, n) != raft.None }, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		s.Inject(leaderOf(s, n), req)
		if err := s.RunFor(200 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // sessions 1, 2 and 3
		inject(kvsm.Request{ID: 1, Op: kvsm.OpOpen})
	}
	inject(set(1, 1, "k", "first"))
	inject(set(2, 1, "k", "second"))
	for i := range 5 { // enough entries for a snapshot
		inject(set(3, uint64(i+1), "other", "x"))
	}
	for i := range n {
		s.Crash(sim.NodeID(i))
	}
	for i := range n {
		s.Restart(sim.NodeID(i))
	}
	inject(set(1, 1, "k", "first"))
	for i := range n {
		r := s.Machine(sim.NodeID(i)).(*kvsm.Replica)
		if r.Raft().SnapshotIndex() == 0 {
			t.Errorf("replica %d never compacted", i)
		}
		if got := value(t, r.State(), "k"); got != "second" {
			t.Errorf("replica %d: k = %q, want second (the retry was applied again)", i, got)
		}
		if seq, ok := r.State().LastSeq(1); !ok || seq != 1 {
			t.Errorf("replica %d: session 1 at seq %d, %v", i, seq, ok)
		}
	}
}

// FuzzReplicaCodec: the cluster codec never panics, and whatever it
// decodes it encodes back to something that decodes to the same message.
func FuzzReplicaCodec(f *testing.F) {
	var c kvsm.ReplicaCodec
	for _, m := range []sim.Message{
		set(1, 2, "k", "v"),
		kvsm.Response{ID: 3, Status: kvsm.StatusNotLeader, Leader: 2},
		raft.AppendEntries{Term: 2, PrevIndex: 1, PrevTerm: 1, Commit: 1, Entries: []raft.Entry{{Index: 2, Term: 2, Data: []byte("x")}}},
		raft.Heartbeat{Term: 1, Commit: 4, Seq: 9},
	} {
		b, err := c.Encode(nil, m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := c.Decode(b)
		if err != nil {
			return
		}
		again, err := c.Encode(nil, m)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", m, err)
		}
		m2, err := c.Decode(again)
		if err != nil || !cmp.Equal(m, m2) {
			t.Fatalf("re-decoding %#v gave %#v, %v", m, m2, err)
		}
	})
}

// TestReplicaAnswersOnlyItsOwnEntry: node 0 leads term 1 and proposes
// client A's write (request id 1) at index 2; a leader of term 2 puts
// client B's write, also request id 1, at index 2 and commits it. Node 0
// learns of it in one step — steps down, replaces its entry, applies B's —
// and must tell A "not leader", not B's "ok": A's write was never applied.
func TestReplicaAnswersOnlyItsOwnEntry(t *testing.T) {
	r := kvsm.NewReplica(0, kvsm.ReplicaConfig{Raft: raft.Config{Peers: []sim.NodeID{0, 1, 2}}})
	var out sim.Effects
	var now time.Duration
	step := func(ev sim.Event) {
		now += time.Millisecond
		ev.Now = now
		out.Reset()
		r.Step(ev, &out)
	}
	step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: 0, Rand: rand.New(rand.NewPCG(1, 2))}})
	now += time.Second
	step(sim.Event{Kind: sim.EventTimer, Timer: raft.TimerPrefix + "election"})
	step(sim.Event{Kind: sim.EventMessage, From: 1, Msg: raft.RequestVoteReply{Term: 1, Granted: true}})
	if !r.IsLeader() {
		t.Fatalf("node 0 is %v, want leader", r.Raft().Role())
	}
	const clientA, clientB = 100, 101
	step(sim.Event{Kind: sim.EventMessage, From: clientA, Msg: kvsm.Request{ID: 1, Op: kvsm.OpSet, Key: []byte("a"), Value: []byte("A")}})
	b, err := kvsm.AppendCommand(nil, &kvsm.Request{ID: 1, Op: kvsm.OpSet, Key: []byte("b"), Value: []byte("B")}, now)
	if err != nil {
		t.Fatal(err)
	}
	step(sim.Event{Kind: sim.EventMessage, From: 1, Msg: raft.AppendEntries{Term: 2, PrevIndex: 1, PrevTerm: 1, Commit: 2,
		Entries: []raft.Entry{{Index: 2, Term: 2, Type: raft.EntryNormal, Data: b}}}})
	var answered bool
	for _, s := range out.Sends {
		if resp, ok := s.Msg.(kvsm.Response); ok && s.To == clientA {
			answered = true
			if resp.Status != kvsm.StatusNotLeader {
				t.Errorf("client A answered %+v; want not leader (the store has b=B, no a)", resp)
			}
		}
	}
	if !answered || value(t, r.State(), "b") != "B" || value(t, r.State(), "a") != "" {
		t.Fatalf("answered A: %v; store a=%q b=%q", answered, value(t, r.State(), "a"), value(t, r.State(), "b"))
	}
}
