package runtime_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/internal/syncbuf"
	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// gossip greets every other node at start and observes "from→to: msg" for
// each message it receives.
type gossip struct {
	id, n sim.NodeID
}

func (g *gossip) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		g.id = ev.Boot.ID
		for p := range g.n {
			if p != g.id {
				out.Send(p, fmt.Sprintf("hi from %d", g.id))
			}
		}
	case sim.EventMessage:
		out.Observe(fmt.Sprintf("%d→%d: %v", ev.From, g.id, ev.Msg))
	}
}

func TestTCPPeersCluster(t *testing.T) {
	const n = 3
	// Node 0 is not listening yet: reserve its address and free it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr0 := l.Addr().String()
	l.Close()
	var logs logBuffer
	ps := make([]*runtime.TCPPeers, n)
	for i := 1; i < n; i++ {
		p, err := runtime.ListenTCPPeers(runtime.TCPPeersConfig{ID: sim.NodeID(i), Listen: "127.0.0.1:0", Codec: strCodec{},
			Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
		p.AddPeer(0, addr0)
	}
	ps[1].AddPeer(2, ps[2].Addr().String())
	ps[2].AddPeer(1, ps[1].Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	obs := make(chan any, 16)
	errs := make(chan error, n)
	run := func(i int) {
		errs <- runtime.Run(ctx, runtime.Config{ID: sim.NodeID(i), Machine: &gossip{n: n}, Transport: ps[i], Logger: quiet(),
			OnObserve: func(o any) { obs <- o }})
	}
	// Nodes 1 and 2 start first: their dials to node 0 fail and are
	// retried, and their greetings wait in the queue meanwhile.
	go run(1)
	go run(2)
	// Each of them has failed twice: the first dial and a retry.
	for logs.failedDials(1, 0) < 2 || logs.failedDials(2, 0) < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("the dials to the absent node were not retried; log:\n%s", logs.String())
		case <-time.After(5 * time.Millisecond): // polling the log
		}
	}
	ps[0], err = runtime.ListenTCPPeers(runtime.TCPPeersConfig{ID: 0, Listen: addr0, Codec: strCodec{}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	for j := 1; j < n; j++ {
		ps[0].AddPeer(sim.NodeID(j), ps[j].Addr().String())
	}
	go run(0)
	var got []string
	for len(got) < n*(n-1) {
		select {
		case o := <-obs:
			got = append(got, o.(string))
		case <-ctx.Done():
			t.Fatalf("only %d greetings arrived: %q", len(got), got)
		}
	}
	slices.Sort(got)
	var want []string
	for from := range n {
		for to := range n {
			if from != to {
				want = append(want, fmt.Sprintf("%d→%d: hi from %d", from, to, from))
			}
		}
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	cancel()
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestTCPPeersRejectsStrangers(t *testing.T) {
	p, err := runtime.ListenTCPPeers(runtime.TCPPeersConfig{ID: 0, Listen: "127.0.0.1:0", Codec: strCodec{}, Logger: quiet(),
		Peers: map[sim.NodeID]string{1: "127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	obs := make(chan any, 1)
	done := make(chan error, 1)
	go func() {
		done <- runtime.Run(ctx, runtime.Config{Machine: &gossip{n: 1}, Transport: p, Logger: quiet(), OnObserve: func(o any) { obs <- o }})
	}()
	for name, hello := range map[string][]byte{
		"no hello":     []byte("hi from 7"),
		"unknown node": []byte("FLPEER\x00\x00\x00\x07"),
	} {
		c, err := net.Dial("tcp", p.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		runtime.WriteFrame(c, hello)
		runtime.WriteFrame(c, []byte("sneaky"))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err == nil {
			t.Fatalf("%s: connection left open", name)
		}
		c.Close()
	}
	// A proper peer is heard.
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runtime.WriteFrame(c, []byte("FLPEER\x00\x00\x00\x01"))
	runtime.WriteFrame(c, []byte("hello"))
	select {
	case o := <-obs:
		if o != "1→0: hello" {
			t.Fatalf("observed %v; a stranger's message got through?", o)
		}
	case <-ctx.Done():
		t.Fatal("peer's message never arrived")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// echoer answers every message to its sender.
type echoer struct{}

func (echoer) Step(ev sim.Event, out *sim.Effects) {
	if ev.Kind == sim.EventMessage {
		out.Send(ev.From, fmt.Sprintf("echo %d: %v", ev.From, ev.Msg))
	}
}

func TestCombineRoutesToClientsAndPeers(t *testing.T) {
	peers, err := runtime.ListenTCPPeers(runtime.TCPPeersConfig{ID: 0, Listen: "127.0.0.1:0", Codec: strCodec{}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	clients, err := runtime.ListenTCP(runtime.TCPConfig{Listen: "127.0.0.1:0", Codec: strCodec{}, Logger: quiet(), FirstClientID: 100})
	if err != nil {
		t.Fatal(err)
	}
	// Node 1 is a raw listener standing in for a peer.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peers.AddPeer(1, ln.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runtime.Run(ctx, runtime.Config{Machine: echoer{}, Transport: runtime.Combine(peers, clients), Logger: quiet()})
	}()
	// A client is answered on its own connection.
	c, err := net.Dial("tcp", clients.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	runtime.WriteFrame(c, []byte("x"))
	if p, err := runtime.ReadFrame(c, nil, 0); err != nil || string(p) != "echo 100: x" {
		t.Fatalf("client got %q, %v", p, err)
	}
	// A peer's message is answered over the connection node 0 dials to it.
	pc, err := net.Dial("tcp", peers.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	runtime.WriteFrame(pc, []byte("FLPEER\x00\x00\x00\x01"))
	runtime.WriteFrame(pc, []byte("y"))
	back, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	back.SetDeadline(time.Now().Add(5 * time.Second))
	if p, err := runtime.ReadFrame(back, nil, 0); err != nil || string(p) != "FLPEER\x00\x00\x00\x00" {
		t.Fatalf("hello from node 0: %q, %v", p, err)
	}
	if p, err := runtime.ReadFrame(back, nil, 0); err != nil || string(p) != "echo 1: y" {
		t.Fatalf("peer got %q, %v", p, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects log output from several goroutines.
type logBuffer struct{ syncbuf.Buffer }

// failedDials counts the log lines saying node's dial to peer failed.
func (l *logBuffer) failedDials(node, peer int) int {
	n := 0
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, "dial to peer failed") && strings.Contains(line, fmt.Sprintf(" node=%d ", node)) &&
			strings.Contains(line, fmt.Sprintf(" peer=%d ", peer)) {
			n++
		}
	}
	return n
}

// burst sends n numbered messages to node 1 in one event at start; node 1
// observes what it receives.
type burst struct{ n int }

func (b burst) Step(ev sim.Event, out *sim.Effects) {
	switch {
	case ev.Kind == sim.EventStart && ev.Boot.ID == 0:
		for i := range b.n {
			out.Send(1, fmt.Sprint(i))
		}
	case ev.Kind == sim.EventMessage:
		out.Observe(ev.Msg)
	}
}

// Messages a peer sends in one burst arrive in several frames per read;
// the receiving reader hands them to the machine (inline, as one batch)
// all of them, in order.
func TestTCPPeersBurstArrivesInOrder(t *testing.T) {
	const n = 500
	ps := make([]*runtime.TCPPeers, 2)
	for i := range ps {
		p, err := runtime.ListenTCPPeers(runtime.TCPPeersConfig{ID: sim.NodeID(i), Listen: "127.0.0.1:0", Codec: strCodec{}, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	ps[0].AddPeer(1, ps[1].Addr().String())
	ps[1].AddPeer(0, ps[0].Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan any, n)
	errs := make(chan error, 2)
	for i, p := range ps {
		go func() {
			errs <- runtime.Run(ctx, runtime.Config{ID: sim.NodeID(i), Machine: burst{n: n}, Transport: p, Logger: quiet(),
				OnObserve: func(o any) { got <- o }})
		}()
	}
	for i := range n {
		select {
		case o := <-got:
			if o != fmt.Sprint(i) {
				t.Fatalf("message %d is %q", i, o)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d messages arrived", i, n)
		}
	}
	cancel()
	for range ps {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A frame that arrived in the same read as a bad one after it (here, over
// MaxFrame) is still delivered before the connection is dropped.
func TestTCPPeersDeliversFramesBeforeABadOne(t *testing.T) {
	p, err := runtime.ListenTCPPeers(runtime.TCPPeersConfig{ID: 0, Listen: "127.0.0.1:0", MaxFrame: 100,
		Peers: map[sim.NodeID]string{1: "127.0.0.1:1"}, Codec: strCodec{}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan sim.Message, 10)
	go p.Run(ctx, func(_ sim.NodeID, m sim.Message) bool { got <- m; return true })
	c, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := runtime.AppendFrame(nil, binary.BigEndian.AppendUint32([]byte("FLPEER"), 1)) // hello from node 1
	b = runtime.AppendFrame(b, []byte("valid"))
	b = runtime.AppendFrame(b, make([]byte, 200)) // over MaxFrame
	if _, err := c.Write(b); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "valid" {
			t.Fatalf("delivered %q, want \"valid\"", m)
		}
	case <-ctx.Done():
		t.Fatal("the frame before the oversized one was never delivered")
	}
}
