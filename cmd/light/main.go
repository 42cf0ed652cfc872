// Command light is one traffic light: a UDP server that shows the colour it
// was last sent.
//
//	light LABEL PORT
//
// It binds UDP port PORT on all interfaces, starts red, and on every
// datagram of exactly "R", "Y" or "G" redraws the line "LABEL: C" in that
// colour (a carriage return and ANSI colour codes, so the line updates in
// place). Any other datagram, including non-ASCII bytes, is ignored. It
// never answers. Ctrl-C ends it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/flotilla-sim/flotilla/trafficfsm"
)

const usage = "usage: light LABEL PORT\n"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] == "" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	port, err := strconv.ParseUint(args[1], 10, 16)
	if err != nil {
		fmt.Fprintf(stderr, "light: bad port %q\n%s", args[1], usage)
		return 2
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: int(port)})
	if err != nil {
		fmt.Fprintf(stderr, "light: %v\n", err)
		return 1
	}
	if err := serve(ctx, conn, args[0], stdout); err != nil {
		fmt.Fprintf(stderr, "light: %v\n", err)
		return 1
	}
	return 0
}

// ANSI escape sequences for the three colours.
var ansi = map[trafficfsm.Colour]string{
	trafficfsm.Red:    "\x1b[31m",
	trafficfsm.Yellow: "\x1b[33m",
	trafficfsm.Green:  "\x1b[32m",
}

const ansiReset = "\x1b[0m"

// draw writes the light's line: a carriage return, then "LABEL: C" in the
// colour.
func draw(w io.Writer, label string, c trafficfsm.Colour) error {
	_, err := fmt.Fprintf(w, "\r%s%s: %c%s", ansi[c], label, byte(c), ansiReset)
	return err
}

// serve shows red, then redraws on every valid datagram until ctx ends. It
// closes conn.
func serve(ctx context.Context, conn *net.UDPConn, label string, w io.Writer) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	if err := draw(w, label, trafficfsm.Red); err != nil {
		return err
	}
	var codec trafficfsm.Codec
	buf := make([]byte, 64) // longer datagrams are truncated, hence invalid
	for {
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				fmt.Fprintln(w)
				return nil
			}
			continue // e.g. ICMP errors surfacing on the socket
		}
		if n == len(buf) {
			continue // truncated: not one of ours
		}
		m, err := codec.Decode(buf[:n])
		if err != nil {
			continue
		}
		c, ok := m.(trafficfsm.Colour)
		if !ok {
			continue // "press" is not for a light
		}
		if err := draw(w, label, c); err != nil {
			return err
		}
	}
}
