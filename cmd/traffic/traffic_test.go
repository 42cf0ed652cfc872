package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/internal/syncbuf"
)

// bin holds the traffic and button binaries, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "traffic-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := func() int {
		defer os.RemoveAll(dir)
		for _, pkg := range []string{".", "../button"} {
			name := filepath.Base(pkg)
			if pkg == "." {
				name = "traffic"
			}
			cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
			cmd.Stderr = os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n", pkg, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// datagram is one datagram a fake light received.
type datagram struct {
	at time.Time
	c  byte
}

// fakeLight is a UDP listener that records every datagram with the time it
// arrived.
type fakeLight struct {
	conn    *net.UDPConn
	mu      sync.Mutex
	got     []datagram
	arrived chan struct{}
}

func newFakeLight(t *testing.T) *fakeLight {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLight{conn: conn, arrived: make(chan struct{}, 1)}
	go func() {
		buf := make([]byte, 64)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.got = append(l.got, datagram{time.Now(), buf[0]})
			if n != 1 {
				l.got[len(l.got)-1].c = '?'
			}
			l.mu.Unlock()
			select {
			case l.arrived <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return l
}

func (l *fakeLight) addr() string { return l.conn.LocalAddr().String() }

func (l *fakeLight) datagrams() []datagram {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]datagram(nil), l.got...)
}

// change is a colour change: the first datagram of a new colour.
type change struct {
	at time.Time
	c  byte
}

func (l *fakeLight) changes() []change {
	var out []change
	for _, d := range l.datagrams() {
		if len(out) == 0 || out[len(out)-1].c != d.c {
			out = append(out, change(d))
		}
	}
	return out
}

func (l *fakeLight) colours() string {
	var b strings.Builder
	for _, c := range l.changes() {
		b.WriteByte(c.c)
	}
	return b.String()
}

// waitColours waits until the light's sequence of colour changes starts
// with want.
func (l *fakeLight) waitColours(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for !strings.HasPrefix(l.colours(), want) {
		select {
		case <-l.arrived:
		case <-deadline:
			t.Fatalf("light saw colours %q, waited for %q", l.colours(), want)
		}
	}
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// The real controller and the real button on loopback, with fake lights:
// colours in the right order with the right durations, and a press 5 s into
// the north-south green ending it at 30 s.
func TestTrafficOnLoopback(t *testing.T) {
	const speed = 20.0
	// Virtual seconds between two instants.
	vs := func(a, b time.Time) float64 { return b.Sub(a).Seconds() * speed }
	const tol = 3.0 // virtual seconds (150 ms of real time): room for a loaded machine

	ew, ns := newFakeLight(t), newFakeLight(t)
	port := freeUDPPort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var tlog syncbuf.Buffer
	traffic := exec.CommandContext(ctx, filepath.Join(bin, "traffic"),
		"-ew", ew.addr(), "-ns", ns.addr(), "-button", "127.0.0.1:"+strconv.Itoa(port),
		"-speed", strconv.FormatFloat(speed, 'g', -1, 64))
	traffic.Stderr = &tlog
	if err := traffic.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("traffic log:\n%s", tlog.String())
		}
	}()

	button := exec.CommandContext(ctx, filepath.Join(bin, "button"), "127.0.0.1", strconv.Itoa(port))
	press, err := button.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var bout syncbuf.Buffer
	button.Stdout = &bout
	if err := button.Start(); err != nil {
		t.Fatal(err)
	}

	// Junk at the button port is ignored.
	junk, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer junk.Close()

	ns.waitColours(t, "RG", 10*time.Second)
	junk.Write([]byte("hello"))
	junk.Write([]byte("\xffpress"))
	// 5 s into the north-south green, press: it must end at 30 s.
	nsGreen := ns.changes()[1].at
	time.Sleep(time.Until(nsGreen.Add(time.Duration(5 / speed * float64(time.Second)))))
	if _, err := io.WriteString(press, "\n"); err != nil {
		t.Fatal(err)
	}
	pressedAt := time.Now()
	ew.waitColours(t, "RGYRG", 10*time.Second)

	// Stop both cleanly.
	if err := press.Close(); err != nil {
		t.Fatal(err)
	}
	if err := button.Wait(); err != nil {
		t.Errorf("button: %v", err)
	}
	if err := traffic.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := traffic.Wait(); err != nil {
		t.Errorf("traffic did not exit cleanly: %v", err)
	}

	ec, nc := ew.changes(), ns.changes()
	if got := ew.colours(); got != "RGYRG" {
		t.Fatalf("EW colours %q, want RGYRG", got)
	}
	if got := ns.colours(); got != "RGYR" {
		t.Fatalf("NS colours %q, want RGYR", got)
	}
	start := ec[0].at
	if nc[0].at.Before(start) {
		start = nc[0].at
	}
	for _, c := range []struct {
		what      string
		from, to  time.Time
		wantVirtS float64
	}{
		{"all-red clearance", start, ec[1].at, 10},
		{"EW green", ec[1].at, ec[2].at, 30},
		{"EW yellow", ec[2].at, ec[3].at, 5},
		{"EW red to NS green", ec[3].at, nc[1].at, 0},
		{"press after NS green began", nc[1].at, pressedAt, 5},
		{"NS green with an early press", nc[1].at, nc[2].at, 30},
		{"NS yellow", nc[2].at, nc[3].at, 5},
		{"NS red to EW green", nc[3].at, ec[4].at, 0},
	} {
		if got := vs(c.from, c.to); got < c.wantVirtS-tol || got > c.wantVirtS+tol {
			t.Errorf("%s: %.2f s of controller time, want %v ± %v", c.what, got, c.wantVirtS, tol)
		}
	}
	// Refresh: each light hears from the controller about once a
	// (virtual) second, so a lost datagram would heal.
	for name, l := range map[string]*fakeLight{"EW": ew, "NS": ns} {
		d := l.datagrams()
		span := vs(d[0].at, d[len(d)-1].at)
		if n := float64(len(d)); n < span*0.8 {
			t.Errorf("%s light got %v datagrams over %.1f s, want about one a second", name, n, span)
		}
		for _, x := range d {
			if x.c != 'R' && x.c != 'Y' && x.c != 'G' {
				t.Errorf("%s light got a bad datagram %q", name, x.c)
			}
		}
	}
	if !strings.Contains(bout.String(), "Button: [Press Return]") {
		t.Errorf("button output %q lacks the prompt", bout.String())
	}
	for _, want := range []string{"phase=ns-green", "msg=press", "counted=true", "phase=ns-yellow", "traffic controller stopped"} {
		if !strings.Contains(tlog.String(), want) {
			t.Errorf("traffic log lacks %q", want)
		}
	}
}

func TestTrafficUsage(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-speed", "0"}, {"-speed", "-1"}, {"-speed", "x"}, {"-button", "nope"}, {"-clearance", "1s"}, {"-nosuchflag"}} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2; stderr %q", args, code, stderr.String())
		}
	}
}
