package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/internal/syncbuf"
)

func TestLightShowsValidDatagramsOnly(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
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
	if got, ok := out.WaitFor(func(s string) bool { return s == want }, 5*time.Second); !ok {
		t.Fatalf("output %q, want %q", got, want)
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
