package runtime_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// echo answers every message with the message itself.
type echo struct{}

func (echo) Step(ev sim.Event, out *sim.Effects) {
	if ev.Kind == sim.EventMessage {
		out.Send(ev.From, ev.Msg)
	}
}

// startEcho runs an echo machine behind a TCPServer until the test ends and
// returns the server's address.
func startEcho(t *testing.T, sendQueue int, inPlace bool) string {
	t.Helper()
	tr, err := runtime.ListenTCP(runtime.TCPConfig{Listen: "127.0.0.1:0", Codec: strCodec{}, Logger: quiet(), SendQueue: sendQueue, DecodeInPlace: inPlace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runtime.Run(ctx, runtime.Config{Machine: echo{}, Transport: tr, Logger: quiet()}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return tr.Addr().String()
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

func payload(i, n int) string {
	p := []byte(strings.Repeat(fmt.Sprintf("<%d>", i), n/3+1)[:n])
	return string(p)
}

// Frames reach the machine whole and in order however the stream is cut:
// byte by byte, several per write, and larger than the server's read
// buffer; decoded from a copy or in place (strCodec copies).
func TestTCPServerReassemblesFrames(t *testing.T) {
	t.Run("copy", func(t *testing.T) { testReassembly(t, false) })
	t.Run("in place", func(t *testing.T) { testReassembly(t, true) })
}

func testReassembly(t *testing.T, inPlace bool) {
	addr := startEcho(t, 0, inPlace)
	c := dialT(t, addr)
	sizes := []int{0, 1, 100, 3, 70000, 5, 1 << 20, 64<<10 - 4, 64 << 10, 2}
	var stream []byte
	for i, n := range sizes {
		stream = runtime.AppendFrame(stream, []byte(payload(i, n)))
	}
	go func() {
		rng := rand.New(rand.NewPCG(1, 2))
		for len(stream) > 0 {
			k := min(len(stream), 1+rng.IntN(3))
			if rng.IntN(4) == 0 {
				k = min(len(stream), rng.IntN(200000))
			}
			if _, err := c.Write(stream[:k]); err != nil {
				return
			}
			stream = stream[k:]
		}
	}()
	r := bufio.NewReader(c)
	for i, n := range sizes {
		p, err := runtime.ReadFrame(r, nil, 0)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if want := payload(i, n); string(p) != want {
			t.Fatalf("reply %d: %d bytes, want %d bytes %.20q", i, len(p), len(want), want)
		}
	}
}

// A client that does not read its replies for a while holds up neither
// the server nor other clients: its replies wait for it (up to SendQueue
// batches) and arrive complete and in order once it reads.
func TestTCPServerSlowReader(t *testing.T) {
	addr := startEcho(t, 0, false)
	slow := dialT(t, addr)
	const n, size = 48, 256 << 10 // 12 MiB of replies: more than the socket buffers hold
	wrote := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < n && err == nil; i++ {
			err = runtime.WriteFrame(slow, []byte(payload(i, size)))
		}
		wrote <- err
	}()
	// All requests go in although no reply has been read: the server keeps
	// reading this connection while its replies queue.
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	other := dialT(t, addr)
	if err := runtime.WriteFrame(other, []byte("still there?")); err != nil {
		t.Fatal(err)
	}
	if p, err := runtime.ReadFrame(other, nil, 0); err != nil || string(p) != "still there?" {
		t.Fatalf("other client got %q, %v", p, err)
	}
	r := bufio.NewReader(slow)
	for i := range n {
		p, err := runtime.ReadFrame(r, nil, 0)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !bytes.Equal(p, []byte(payload(i, size))) {
			t.Fatalf("reply %d differs", i)
		}
	}
}

// A client that never reads is dropped once SendQueue batches of replies
// wait for it; other clients carry on.
func TestTCPServerDropsClientThatDoesNotRead(t *testing.T) {
	addr := startEcho(t, 2, false)
	stuck := dialT(t, addr)
	big := runtime.AppendFrame(nil, []byte(payload(0, 1<<20)))
	for i := 0; ; i++ {
		if i == 64 {
			t.Fatal("64 MiB sent to a client that reads nothing and it is still connected")
		}
		// The stream sent is echoed back; once the connection is dropped
		// a write fails.
		if _, err := stuck.Write(big); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write blocked: %v", err)
			}
			break
		}
	}
	other := dialT(t, addr)
	if err := runtime.WriteFrame(other, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if p, err := runtime.ReadFrame(other, nil, 0); err != nil || string(p) != "hello" {
		t.Fatalf("other client got %q, %v", p, err)
	}
}

// Many clients with several requests in flight each get every reply, in
// order (they are stepped inline by their readers or queued for the host
// loop, whichever is free).
func TestTCPServerOrderPerClient(t *testing.T) {
	addr := startEcho(t, 0, false)
	const clients, each = 16, 300
	errs := make(chan error, clients)
	for k := range clients {
		c := dialT(t, addr)
		go func() {
			var out []byte
			for i := range each {
				out = runtime.AppendFrame(out, []byte(fmt.Sprintf("%d/%d", k, i)))
			}
			go c.Write(out)
			r := bufio.NewReader(c)
			for i := range each {
				p, err := runtime.ReadFrame(r, nil, 0)
				if err != nil {
					errs <- err
					return
				}
				if want := fmt.Sprintf("%d/%d", k, i); string(p) != want {
					errs <- fmt.Errorf("client %d got %q, want %q", k, p, want)
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A client that sends its requests and its end of stream together gets
// its replies and then sees the server close the connection: the end of
// stream is noticed although it came with the data, in one burst. So is a
// stream that ends inside a frame.
func TestTCPServerNoticesEndOfStreamWithData(t *testing.T) {
	addr := startEcho(t, 0, false)
	for _, tc := range []struct {
		name    string
		stream  []byte
		replies []string
	}{
		{"whole frames", runtime.AppendFrame(runtime.AppendFrame(nil, []byte("one")), []byte("two")), []string{"one", "two"}},
		{"torn frame", append(runtime.AppendFrame(nil, []byte("one")), 0, 0, 0, 9, 'x'), []string{"one"}},
	} {
		c := dialT(t, addr)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(tc.stream); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		r := bufio.NewReader(c)
		for _, want := range tc.replies {
			if p, err := runtime.ReadFrame(r, nil, 0); err != nil || string(p) != want {
				t.Fatalf("%s: reply %q, %v; want %q", tc.name, p, err, want)
			}
		}
		if p, err := runtime.ReadFrame(r, nil, 0); !errors.Is(err, io.EOF) {
			t.Fatalf("%s: after the replies read %q, %v; want the server to close (EOF)", tc.name, p, err)
		}
	}
}

// gate answers every string message with itself; "block" first waits
// until release is closed, keeping the host busy.
type gate struct{ release chan struct{} }

func (g *gate) Step(ev sim.Event, out *sim.Effects) {
	if ev.Kind != sim.EventMessage {
		return
	}
	if ev.Msg == "block" {
		<-g.release
	}
	out.Send(ev.From, ev.Msg)
}

// A client that sends its requests and closes its side at once (a half
// close) while the machine is busy with someone else still gets every
// reply: its reader queues the requests, sees the end of stream, and
// waits for them to be answered before it closes the connection.
func TestHalfClosedClientGetsItsReplies(t *testing.T) {
	srv, err := runtime.ListenTCP(runtime.TCPConfig{Listen: "127.0.0.1:0", Codec: strCodec{}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g := &gate{release: make(chan struct{})}
	halfClosed := make(chan struct{})
	var once sync.Once // a's reader sees its end of stream too, at the end
	defer runtime.SetTestHookHalfClose(func() { once.Do(func() { close(halfClosed) }) })()
	done := make(chan error, 1)
	go func() { done <- runtime.Run(ctx, runtime.Config{Machine: g, Transport: srv, Logger: quiet()}) }()

	a := dialT(t, srv.Addr().String())
	a.Write(runtime.AppendFrame(nil, []byte("block"))) // the machine is now stuck in Step

	b := dialT(t, srv.Addr().String())
	b.Write(runtime.AppendFrame(runtime.AppendFrame(nil, []byte("one")), []byte("two")))
	b.(*net.TCPConn).CloseWrite()
	// The interleaving under test: b's reader has queued both requests and
	// seen the end of stream while the machine is still blocked.
	select {
	case <-halfClosed:
	case <-ctx.Done():
		t.Fatal("the server never saw the client's half close")
	}
	close(g.release)

	r := bufio.NewReader(b)
	for _, want := range []string{"one", "two"} {
		p, err := runtime.ReadFrame(r, nil, 0)
		if err != nil || string(p) != want {
			t.Fatalf("reply %q, %v; want %q", p, err, want)
		}
	}
	if p, err := runtime.ReadFrame(r, nil, 0); !errors.Is(err, io.EOF) {
		t.Fatalf("after the replies: %q, %v; want the server's end of stream", p, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
