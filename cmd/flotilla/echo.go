package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla-sim/flotilla/runtime/echo"
)

const echoUsage = `usage: flotilla echo serve [-addr ADDR]
       flotilla echo test  [-addr ADDR] [-sizes N,N,...] [-timeout D]

serve runs a frame echo server over TCP until interrupted.
test round-trips messages of each size through the server and checks that
every byte comes back unchanged (default sizes 1, 10, ..., 10000000).
`

// echoMain runs the echo subcommand and returns the process exit code.
func echoMain(args []string) int {
	return echoRun(args, os.Stdout, os.Stderr)
}

func echoRun(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, echoUsage)
		return 2
	}
	mode := args[0]
	fs := flag.NewFlagSet("flotilla echo "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, echoUsage) }
	addr := fs.String("addr", "127.0.0.1:7000", "server address")
	sizes := fs.String("sizes", "", "comma-separated message sizes for test (default 1,10,...,10000000)")
	timeout := fs.Duration("timeout", time.Minute, "overall time limit for test")
	if mode != "serve" && mode != "test" {
		fmt.Fprintf(stderr, "flotilla echo: unknown mode %q\n", mode)
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "flotilla echo: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))

	if mode == "serve" {
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			fmt.Fprintf(stderr, "flotilla echo: %v\n", err)
			return 1
		}
		log.Info("echo server listening", "addr", ln.Addr().String())
		if err := echo.Serve(ctx, ln, log); err != nil {
			fmt.Fprintf(stderr, "flotilla echo: %v\n", err)
			return 1
		}
		log.Info("echo server stopped")
		return 0
	}

	list := echo.DefaultSizes
	if *sizes != "" {
		list = nil
		for _, f := range strings.Split(*sizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 0 {
				fmt.Fprintf(stderr, "flotilla echo: bad size %q\n", f)
				return 2
			}
			list = append(list, n)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := echo.Check(ctx, *addr, list)
	for _, r := range res {
		fmt.Fprintf(stdout, "ok %10d bytes  %v\n", r.Size, r.Elapsed.Round(time.Microsecond))
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", *timeout, err)
		}
		fmt.Fprintf(stderr, "flotilla echo: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "all %d messages echoed intact\n", len(res))
	return 0
}
