package kvclient

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// fakeServer answers kvsm requests with answer (nil: no answer) and
// records what it received.
type fakeServer struct {
	ln     net.Listener
	mu     sync.Mutex
	got    []kvsm.Request
	answer func(kvsm.Request, int) *kvsm.Response // int: how many requests this server had before
}

func newFake(t *testing.T, answer func(kvsm.Request, int) *kvsm.Response) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln, answer: answer}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeServer) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	for {
		p, err := runtime.ReadFrame(r, nil, 0)
		if err != nil {
			return
		}
		req, err := kvsm.DecodeRequest(p)
		if err != nil {
			return
		}
		f.mu.Lock()
		n := len(f.got)
		f.got = append(f.got, req)
		f.mu.Unlock()
		resp := f.answer(req, n)
		if resp == nil {
			continue
		}
		resp.ID = req.ID
		b, _ := kvsm.AppendResponse(nil, resp)
		if runtime.WriteFrame(c, b) != nil {
			return
		}
	}
}

// requests returns the requests the server got, except session opens.
func (f *fakeServer) requests() []kvsm.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var rs []kvsm.Request
	for _, r := range f.got {
		if r.Op != kvsm.OpOpen {
			rs = append(rs, r)
		}
	}
	return rs
}

// withOpens answers session opens with ids 42, 43, ... and passes every
// other request to answer, with the number of such requests before it.
func withOpens(answer func(kvsm.Request, int) *kvsm.Response) func(kvsm.Request, int) *kvsm.Response {
	var mu sync.Mutex
	next, n := uint64(42), 0
	return func(req kvsm.Request, _ int) *kvsm.Response {
		mu.Lock()
		defer mu.Unlock()
		if req.Op == kvsm.OpOpen {
			next++
			return &kvsm.Response{Status: kvsm.StatusOK, Session: next - 1}
		}
		n++
		return answer(req, n-1)
	}
}

// A write is retried with the same client id and sequence number: first
// at a server that redirects, then (after a timeout) elsewhere; the next
// write gets the next number.
func TestSessionRetriesWithSameSeq(t *testing.T) {
	ok := &kvsm.Response{Status: kvsm.StatusOK}
	var s0, s1, s2 *fakeServer
	s0 = newFake(t, func(kvsm.Request, int) *kvsm.Response { return &kvsm.Response{Status: kvsm.StatusNotLeader, Leader: 1} })
	s1 = newFake(t, withOpens(func(_ kvsm.Request, n int) *kvsm.Response {
		if n == 0 {
			return nil // the first write attempt here is lost: time out
		}
		return ok
	}))
	s2 = newFake(t, func(kvsm.Request, int) *kvsm.Response { return &kvsm.Response{Status: kvsm.StatusNotLeader, Leader: 1} })
	servers := map[sim.NodeID]string{0: s0.ln.Addr().String(), 1: s1.ln.Addr().String(), 2: s2.ln.Addr().String()}
	s, err := NewSession(ClusterConfig{Servers: servers, AttemptTimeout: 100 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Set(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if s.Leader() != 1 {
		t.Fatalf("leader %d, want 1", s.Leader())
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	var all []kvsm.Request
	for _, f := range []*fakeServer{s0, s1, s2} {
		all = append(all, f.requests()...)
	}
	client := s.ClientID()
	seen := map[uint64]int{}
	for _, r := range all {
		if r.Client != client {
			t.Fatalf("request with client %d, want %d", r.Client, client)
		}
		seen[r.Seq]++
	}
	if seen[1] < 2 || seen[2] != 1 || len(seen) != 2 {
		t.Fatalf("attempts per sequence number: %v (want seq 1 retried, seq 2 once)", seen)
	}
	if got := s1.requests(); len(got) != 3 || got[0].Seq != 1 || got[1].Seq != 1 || got[2].Seq != 2 {
		t.Fatalf("leader got %+v", got)
	}
}

// A write whose answer never comes ends, at the context's deadline, with
// ErrUnknownOutcome; a session-expired answer too, and the session then
// opens a new session and starts over at sequence number 1. A session that
// could not even be opened wrote nothing: a plain error.
func TestSessionUnknownOutcome(t *testing.T) {
	mute := newFake(t, func(kvsm.Request, int) *kvsm.Response { return nil })
	s0, _ := NewSession(ClusterConfig{Servers: map[sim.NodeID]string{0: mute.ln.Addr().String()}, AttemptTimeout: 50 * time.Millisecond})
	defer s0.Close()
	ctx0, cancel0 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel0()
	if err := s0.Set(ctx0, "k", []byte("v")); err == nil || errors.Is(err, ErrUnknownOutcome) || len(mute.requests()) != 0 {
		t.Fatalf("no session could be opened: %v (writes sent: %d)", err, len(mute.requests()))
	}

	silent := newFake(t, withOpens(func(kvsm.Request, int) *kvsm.Response { return nil }))
	s, _ := NewSession(ClusterConfig{Servers: map[sim.NodeID]string{0: silent.ln.Addr().String()}, AttemptTimeout: 50 * time.Millisecond})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := s.Set(ctx, "k", []byte("v"))
	if !errors.Is(err, ErrUnknownOutcome) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
	// A read that times out is a plain error: it changed nothing.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel2()
	if _, _, err := s.Get(ctx2, "k"); err == nil || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("read from a silent server: %v", err)
	}

	expired := newFake(t, withOpens(func(_ kvsm.Request, n int) *kvsm.Response {
		if n == 0 {
			return &kvsm.Response{Status: kvsm.StatusSessionExpired}
		}
		return &kvsm.Response{Status: kvsm.StatusOK}
	}))
	s2, _ := NewSession(ClusterConfig{Servers: map[sim.NodeID]string{0: expired.ln.Addr().String()}})
	defer s2.Close()
	ctx3, cancel3 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel3()
	if err := s2.Set(ctx3, "k", []byte("v")); !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("session expired: %v", err)
	}
	first := expired.requests()[0].Client
	if err := s2.Set(ctx3, "k", []byte("w")); err != nil {
		t.Fatal(err)
	}
	got := expired.requests()
	if len(got) != 2 || first != 42 || got[1].Client != 43 || got[1].Seq != 1 {
		t.Fatalf("after expiry: %+v (first client %d)", got, first)
	}
}

// Sessions sharing a pool that dial one server at the same time end up on
// one connection (the dials run outside the pool's lock, and the losers
// close theirs); a closed pool dials nothing.
func TestPoolSharesOneConnectionPerServer(t *testing.T) {
	f := newFake(t, func(kvsm.Request, int) *kvsm.Response { return nil })
	p := NewPool(map[sim.NodeID]string{0: f.ln.Addr().String()})
	const n = 8
	got := make(chan *Client, n)
	for range n {
		go func() {
			c, err := p.get(context.Background(), 0)
			if err != nil {
				t.Error(err)
			}
			got <- c
		}()
	}
	first := <-got
	for range n - 1 {
		if c := <-got; c != first {
			t.Fatalf("two connections to one server: %p and %p", first, c)
		}
	}
	p.Close()
	if _, err := p.get(context.Background(), 0); !errors.Is(err, errPoolClosed) {
		t.Fatalf("get on a closed pool = %v, want errPoolClosed", err)
	}
}
