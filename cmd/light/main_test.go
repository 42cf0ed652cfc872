package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader, which
// signals every write on wrote.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLightShowsValidDatagramsOnly(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{wrote: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, conn, "EW", out) }()

	snd, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	for _, d := range []string{"G", "g", "GG", "\xff", "press", "", "Y", strings.Repeat("R", 100), "\xc3\xa9", "R"} {
		if _, err := snd.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	want := "\r\x1b[31mEW: R\x1b[0m" + "\r\x1b[32mEW: G\x1b[0m" + "\r\x1b[33mEW: Y\x1b[0m" + "\r\x1b[31mEW: R\x1b[0m"
	// Loopback UDP does not lose these; wait for the last redraw.
	timeout := time.After(5 * time.Second)
	for out.String() != want {
		select {
		case <-out.wrote:
		case <-timeout:
			t.Fatalf("output %q, want %q", out.String(), want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestLightUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"EW"}, {"EW", "x"}, {"EW", "70000"}, {"EW", "1", "2"}, {"", "10000"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: light LABEL PORT") {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and usage", args, code, stderr.String())
		}
	}
}
