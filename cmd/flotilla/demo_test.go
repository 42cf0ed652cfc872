package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/internal/syncbuf"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

func TestParseLightOutput(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want trafficfsm.Colour
		ok   bool
	}{
		{"", 0, false},
		{"\r\x1b[31;1mEW: R\x1b[0m", trafficfsm.Red, true},
		{"\r\x1b[31;1mEW: R\x1b[0m\r\x1b[32;1mEW: G\x1b[0m", trafficfsm.Green, true},
		{"\r\x1b[31;1mEW: R\x1b[0m\r\x1b[32;1mEW", trafficfsm.Red, true}, // a half-written redraw
		{"NS: Y\n", trafficfsm.Yellow, true},
		{"\rEW: X", 0, false},
	} {
		c, ok := parseLightOutput(tc.in)
		if c != tc.want || ok != tc.ok {
			t.Errorf("parseLightOutput(%q) = %v, %v; want %v, %v", tc.in, c, ok, tc.want, tc.ok)
		}
	}
}

func TestCheckTraffic(t *testing.T) {
	var out, errb bytes.Buffer
	if code := checkRun([]string{"traffic"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"140 states", "ok  never both directions non-red", "ok  every state can reach east-west green", "all properties hold"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, args := range [][]string{nil, {"raft"}, {"traffic", "extra"}, {"traffic", "-step", "0s"}, {"traffic", "-step", "10s"}, {"traffic", "-bogus"}} {
		var o, e bytes.Buffer
		if code := checkRun(args, &o, &e); code != 2 {
			t.Errorf("checkRun(%q) = %d, want 2", args, code)
		}
	}
}

func TestDemoUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"raft"}, {"traffic", "extra"}, {"traffic", "-speed", "0"}, {"traffic", "-ew-port", "70000"}, {"traffic", "-bin"}} {
		var o, e bytes.Buffer
		if code := demoRun(context.Background(), args, strings.NewReader(""), &o, &e); code != 2 {
			t.Errorf("demoRun(%q) = %d, want 2; stderr %q", args, code, e.String())
		}
	}
}

// waitFor waits until out shows s.
func waitFor(t *testing.T, out *syncbuf.Buffer, s string, timeout time.Duration) {
	t.Helper()
	if got, ok := out.WaitFor(func(got string) bool { return strings.Contains(got, s) }, timeout); !ok {
		t.Fatalf("output never showed %q:\n%s", s, got)
	}
}

func freePort(t *testing.T) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
}

// The demo runs the four real processes, shows the lights changing and the
// controller's log, passes a Return on to the button, and stops all four
// cleanly when its context ends (as on Ctrl-C).
func TestDemoTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../light", "../button", "../traffic")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the binaries: %v\n%s", err, out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdin, typing := io.Pipe()
	defer typing.Close()
	out := &syncbuf.Buffer{}
	var errb bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- demoRun(ctx, []string{"traffic", "-bin", dir, "-speed", "40",
			"-ew-port", freePort(t), "-ns-port", freePort(t), "-button-port", freePort(t)}, stdin, out, &errb)
	}()
	waitFor(t, out, "phase=clear", 10*time.Second)
	waitFor(t, out, "EW \x1b[32;1m● G", 10*time.Second)
	waitFor(t, out, "phase=ns-green", 10*time.Second)
	waitFor(t, out, "NS \x1b[32;1m● G", 10*time.Second)
	if _, err := io.WriteString(typing, "\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, out, "button pressed", 5*time.Second)
	waitFor(t, out, "counted=true", 5*time.Second)
	waitFor(t, out, "phase=ns-yellow", 5*time.Second)
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("demo exited %d\nstderr: %s\nstdout: %s", c, errb.String(), out.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("demo did not stop")
	}
	if !strings.Contains(out.String(), "traffic controller stopped") {
		t.Errorf("controller did not log a clean stop:\n%s", out.String())
	}
}
