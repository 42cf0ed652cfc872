package kvsm_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/sim"
)

// clientHarness steps a Client by hand.
type clientHarness struct {
	t   *testing.T
	c   *kvsm.Client
	now time.Duration
	out sim.Effects
}

func newClientHarness(t *testing.T, cfg kvsm.ClientConfig) *clientHarness {
	h := &clientHarness{t: t, c: kvsm.NewClient(cfg)}
	h.step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: 9, Rand: rand.New(rand.NewPCG(1, 2))}})
	return h
}

func (h *clientHarness) step(ev sim.Event) *sim.Effects {
	ev.Now = h.now
	h.out.Reset()
	h.c.Step(ev, &h.out)
	return &h.out
}

// sent returns the one request the last step sent, and to whom.
func (h *clientHarness) sent() (sim.NodeID, kvsm.Request) {
	h.t.Helper()
	if len(h.out.Sends) != 1 {
		h.t.Fatalf("sent %d messages, want 1: %+v", len(h.out.Sends), h.out.Sends)
	}
	return h.out.Sends[0].To, h.out.Sends[0].Msg.(kvsm.Request)
}

func (h *clientHarness) timer(name string) (time.Duration, bool) {
	for _, op := range h.out.Timers {
		if op.Name == name && !op.Cancel {
			return op.After, true
		}
	}
	return 0, false
}

func (h *clientHarness) done() (kvsm.Done, bool) {
	for _, o := range h.out.Observations {
		if d, ok := o.(kvsm.Done); ok {
			return d, true
		}
	}
	return kvsm.Done{}, false
}

// open expects the last step to have sent an OpOpen, answers it with
// session id, and returns the write the client then sends (to the same
// server) and the open request.
func (h *clientHarness) open(id uint64) (sim.NodeID, kvsm.Request, kvsm.Request) {
	h.t.Helper()
	to, req := h.sent()
	if req.Op != kvsm.OpOpen || req.Client != 0 || req.Seq != 0 {
		h.t.Fatalf("want an open, sent %+v", req)
	}
	h.step(sim.Event{Kind: sim.EventMessage, From: to, Msg: kvsm.Response{ID: req.ID, Status: kvsm.StatusOK, Session: id}})
	to2, w := h.sent()
	if to2 != to || w.Client != id || w.Seq != 1 {
		h.t.Fatalf("after opening session %d at %d sent %+v to %d", id, to, w, to2)
	}
	return to2, w, req
}

func TestClientFollowsRedirectsAndRetriesWithSameSession(t *testing.T) {
	h := newClientHarness(t, kvsm.ClientConfig{Servers: []sim.NodeID{0, 1, 2}, Timeout: 100 * time.Millisecond})
	h.step(sim.Event{Kind: sim.EventMessage, From: sim.External, Msg: kvsm.Call{ID: 5, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("v")}})
	to, req, openReq := h.open(42)
	// A duplicate answer to the open is not an answer to the write.
	h.step(sim.Event{Kind: sim.EventMessage, From: to, Msg: kvsm.Response{ID: openReq.ID, Status: kvsm.StatusOK, Session: 42}})
	if _, ok := h.done(); ok || len(h.out.Sends) != 0 {
		t.Fatalf("a duplicate open answer acted on: %+v", h.out)
	}
	// Redirected to the leader: the very next attempt goes there.
	leader := (to + 1) % 3
	h.step(sim.Event{Kind: sim.EventMessage, From: to, Msg: kvsm.Response{ID: req.ID, Status: kvsm.StatusNotLeader, Leader: leader}})
	to2, req2 := h.sent()
	if to2 != leader || req2.Client != req.Client || req2.Seq != req.Seq {
		t.Fatalf("after redirect to %d sent %+v to %d", leader, req2, to2)
	}
	// The attempt times out: back off, then try the next server.
	h.now += 100 * time.Millisecond
	h.step(sim.Event{Kind: sim.EventTimer, Timer: "kv.attempt"})
	wait, ok := h.timer("kv.backoff")
	if !ok || wait < 5*time.Millisecond || wait > 10*time.Millisecond {
		t.Fatalf("backoff after the first failure: %v, %v (want 5-10ms)", wait, ok)
	}
	h.now += wait
	h.step(sim.Event{Kind: sim.EventTimer, Timer: "kv.backoff"})
	to3, req3 := h.sent()
	if to3 != (leader+1)%3 || req3.Seq != 1 || req3.Client != req.Client {
		t.Fatalf("retry after timeout sent %+v to %d", req3, to3)
	}
	// A late answer to the first attempt still completes the call.
	h.step(sim.Event{Kind: sim.EventMessage, From: to, Msg: kvsm.Response{ID: req.ID, Status: kvsm.StatusOK}})
	d, ok := h.done()
	if !ok || d.ID != 5 || d.Status != kvsm.StatusOK || d.Attempts != 4 || d.Unknown {
		t.Fatalf("done = %+v, %v", d, ok)
	}
	// The next write continues the session.
	h.step(sim.Event{Kind: sim.EventMessage, From: sim.External, Msg: kvsm.Call{ID: 6, Op: kvsm.OpDelete, Key: []byte("k")}})
	if _, req := h.sent(); req.Seq != 2 || req.Client != req3.Client {
		t.Fatalf("second write %+v", req)
	}
	// An answer to an earlier call is ignored.
	h.step(sim.Event{Kind: sim.EventMessage, From: to, Msg: kvsm.Response{ID: req.ID, Status: kvsm.StatusOK}})
	if _, ok := h.done(); ok {
		t.Fatal("a stale answer completed the current call")
	}
}

func TestClientBackoffGrowsAndIsCapped(t *testing.T) {
	h := newClientHarness(t, kvsm.ClientConfig{Servers: []sim.NodeID{0}, BackoffMin: 10 * time.Millisecond, BackoffMax: 80 * time.Millisecond})
	h.step(sim.Event{Kind: sim.EventMessage, Msg: kvsm.Call{ID: 1, Op: kvsm.OpGet, Key: []byte("k")}})
	var waits []time.Duration
	for range 8 {
		_, req := h.sent()
		h.step(sim.Event{Kind: sim.EventMessage, Msg: kvsm.Response{ID: req.ID, Status: kvsm.StatusNotLeader, Leader: -1}})
		w, ok := h.timer("kv.backoff")
		if !ok {
			t.Fatal("no backoff after a refusal")
		}
		waits = append(waits, w)
		h.now += w
		h.step(sim.Event{Kind: sim.EventTimer, Timer: "kv.backoff"})
	}
	for i, w := range waits {
		ceil := min(10*time.Millisecond<<i, 80*time.Millisecond)
		if w < ceil/2 || w > ceil {
			t.Fatalf("wait %d is %v, want within [%v, %v] (all: %v)", i, w, ceil/2, ceil, waits)
		}
	}
}

func TestClientSessionExpiredEndsCallUnknown(t *testing.T) {
	h := newClientHarness(t, kvsm.ClientConfig{Servers: []sim.NodeID{0}})
	h.step(sim.Event{Kind: sim.EventMessage, Msg: kvsm.Call{ID: 1, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("1")}})
	_, first, _ := h.open(42)
	h.step(sim.Event{Kind: sim.EventMessage, Msg: kvsm.Response{ID: first.ID, Status: kvsm.StatusSessionExpired}})
	if d, ok := h.done(); !ok || !d.Unknown {
		t.Fatalf("done = %+v, %v; want an unknown outcome", d, ok)
	}
	// The next write opens a new session first.
	h.step(sim.Event{Kind: sim.EventMessage, Msg: kvsm.Call{ID: 2, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("2")}})
	h.open(43)
}

func TestClientGivesUp(t *testing.T) {
	h := newClientHarness(t, kvsm.ClientConfig{Servers: []sim.NodeID{0, 1}, Timeout: 50 * time.Millisecond, GiveUpAfter: 120 * time.Millisecond})
	h.step(sim.Event{Kind: sim.EventMessage, Msg: kvsm.Call{ID: 1, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("1")}})
	for range 10 {
		h.now += 60 * time.Millisecond
		h.step(sim.Event{Kind: sim.EventTimer, Timer: "kv.attempt"})
		if d, ok := h.done(); ok {
			if !d.Unknown || h.now < 120*time.Millisecond {
				t.Fatalf("gave up at %v with %+v", h.now, d)
			}
			return
		}
		h.now += time.Second
		h.step(sim.Event{Kind: sim.EventTimer, Timer: "kv.backoff"})
	}
	t.Fatal("never gave up")
}
