// Command button is the push button: every line typed on standard input
// (every press of Return) sends one UDP datagram "press" to the controller.
//
//	button HOST PORT
//
// It prompts "Button: [Press Return]" before each press and exits at the end
// of input.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/flotilla-sim/flotilla/trafficfsm"
)

const usage = "usage: button HOST PORT\n"

const prompt = "Button: [Press Return]"

func main() {
	// Ctrl-C ends the button as cleanly as the end of input does.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println()
		os.Exit(0)
	}()
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] == "" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if p, err := strconv.ParseUint(args[1], 10, 16); err != nil || p == 0 {
		fmt.Fprintf(stderr, "button: bad port %q\n%s", args[1], usage)
		return 2
	}
	conn, err := net.Dial("udp", net.JoinHostPort(args[0], args[1]))
	if err != nil {
		fmt.Fprintf(stderr, "button: %v\n", err)
		return 1
	}
	defer conn.Close()
	press, err := trafficfsm.Codec{}.Encode(nil, trafficfsm.Press{})
	if err != nil {
		fmt.Fprintf(stderr, "button: %v\n", err)
		return 1
	}
	in := bufio.NewScanner(stdin)
	for {
		fmt.Fprint(stdout, prompt)
		if !in.Scan() {
			fmt.Fprintln(stdout)
			break
		}
		// UDP: a send error (say, the controller's port refusing after an
		// earlier datagram) is reported and the button carries on.
		if _, err := conn.Write(press); err != nil {
			fmt.Fprintf(stderr, "button: %v\n", err)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(stderr, "button: reading input: %v\n", err)
		return 1
	}
	return 0
}
