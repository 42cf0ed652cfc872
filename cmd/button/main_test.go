package main

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestButtonSendsPressPerLine(t *testing.T) {
	ctl, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	port := strconv.Itoa(ctl.LocalAddr().(*net.UDPAddr).Port)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"127.0.0.1", port}, strings.NewReader("\n\nanything\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if want := strings.Repeat(prompt, 4) + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if err := ctl.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	for i := range 3 {
		n, _, err := ctl.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if string(buf[:n]) != "press" {
			t.Fatalf("datagram %d = %q, want \"press\"", i, buf[:n])
		}
	}
}

func TestButtonUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"localhost"}, {"localhost", "x"}, {"localhost", "0"}, {"localhost", "99999"}, {"a", "1", "2"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: button HOST PORT") {
			t.Errorf("run(%q) = %d, stderr %q; want 2 and usage", args, code, stderr.String())
		}
	}
}
