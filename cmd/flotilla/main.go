// Command flotilla simulates, checks and demonstrates Flotilla's systems.
//
//	flotilla sim [flags]        sweep seeds over a system in the simulator
//	flotilla trace FILE -o OUT  export a trace to Perfetto (.json) or HTML (.html)
//	flotilla check traffic      exhaustively explore the traffic controller
//	flotilla demo traffic       run the traffic light for real on loopback
//	flotilla cluster up|status|down  run a local replicated KV cluster
//	flotilla echo serve|test    the framing echo check over real TCP
//
// Run "flotilla COMMAND -h" for a command's flags.
package main

import (
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string) int
}

func commands() []command {
	return []command{
		{"sim", "sweep seeds over a system in the simulator", simMain},
		{"check", "exhaustively explore a system's state space (traffic)", checkMain},
		{"demo", "run a system for real on loopback (traffic)", demoMain},
		{"trace", "export a simulation trace to Perfetto (.json) or HTML (.html)", traceMain},
		{"cluster", "start, inspect and stop a local replicated KV cluster (up | status | down)", clusterMain},
		{"echo", "framing echo check over real TCP (serve | test)", echoMain},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: flotilla COMMAND [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-7s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'flotilla COMMAND -h' for a command's flags.")
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) == 0 {
		usage(os.Stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(os.Stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:])
		}
	}
	fmt.Fprintf(os.Stderr, "flotilla: unknown command %q\n\n", args[0])
	usage(os.Stderr)
	return 2
}
