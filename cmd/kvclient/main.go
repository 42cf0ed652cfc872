// Command kvclient talks to kvserver.
//
// Usage:
//
//	kvclient [-addr localhost:12345] [-timeout 5s] get KEY
//	kvclient [-addr ...] set KEY VALUE
//	kvclient [-addr ...] delete KEY
//	kvclient [-addr ...] bench [-c 64] [-d 10s] [-size 256] [-writes 0.5] [-keys 10000] [-pipeline 1]
//	kvclient -cluster cluster.json [-machine] get|set|delete|bench|status ...
//
// get prints the value, or "(nil)" if the key is not set; set and delete
// print "ok". With -cluster the client talks to a replicated cluster
// (kvserver -cluster): it finds the leader itself and retries safely, each
// write exactly once through a session (kvclient.Session); status prints
// every node's role, term, commit and applied index. A write whose outcome
// could not be learned before -timeout says so ("outcome unknown"). With
// -machine, get/set/delete run the kvsm.Client machine — the client the
// simulator tests — on the runtime host (kvclient.StartMachine). bench runs a closed-loop load and prints ops/s and latency
// percentiles. Errors go to stderr as one line, with exit status 1.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvclient"
	"github.com/flotilla-sim/flotilla/kvsm"
)

const usage = `usage: kvclient [-addr localhost:12345] [-timeout 5s] COMMAND
commands:
  get KEY          print the value of KEY, or (nil)
  set KEY VALUE    set KEY to VALUE, print ok
  delete KEY       delete KEY, print ok
  bench [-c 64] [-d 10s] [-size 256] [-writes 0.5] [-keys 10000] [-pipeline 1] [-share 0]
                   closed-loop load: ops/s and p50/p99/max latency
  status           (-cluster only) every node's role, term, commit, applied
With -cluster FILE (instead of -addr) the client talks to a replicated
cluster: it finds the leader and retries, writes exactly once. With
-cluster, -machine runs get/set/delete through the kvsm.Client machine
(the client the simulator tests) hosted on the runtime.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvclient", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	addr := fs.String("addr", "localhost:12345", "server address")
	timeout := fs.Duration("timeout", 5*time.Second, "time limit for get/set/delete")
	clusterFile := fs.String("cluster", "", "cluster file: talk to a replicated cluster instead of -addr")
	useMachine := fs.Bool("machine", false, "with -cluster: run the kvsm.Client machine (the simulated client's code) on the runtime instead of kvclient.Session")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(stderr, "kvclient: missing command")
		fs.Usage()
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	cmd, rest := rest[0], rest[1:]
	want := map[string]int{"get": 1, "set": 2, "delete": 1}
	var cl *cluster.Cluster
	if *clusterFile != "" {
		var err error
		if cl, err = cluster.Load(*clusterFile); err != nil {
			fmt.Fprintf(stderr, "kvclient: %v\n", err)
			return 1
		}
		want["status"] = 0
	}
	if cmd == "bench" {
		return bench(ctx, *addr, cl, rest, stdout, stderr)
	}
	n, ok := want[cmd]
	if !ok {
		fmt.Fprintf(stderr, "kvclient: unknown command %q\n", cmd)
		fs.Usage()
		return 1
	}
	if len(rest) != n {
		fmt.Fprintf(stderr, "kvclient: %s takes %d argument(s), got %d\n", cmd, n, len(rest))
		fs.Usage()
		return 1
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var out string
	var err error
	if cl != nil && *useMachine && cmd != "status" {
		out, err = doMachine(ctx, cl, *timeout, cmd, rest)
	} else if cl != nil {
		out, err = doCluster(ctx, cl, cmd, rest)
	} else {
		out, err = do(ctx, *addr, cmd, rest)
	}
	if err != nil {
		if cl != nil {
			// The session's error says what it knows (outcome unknown).
		} else if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer from %s within %v", *addr, *timeout)
		}
		fmt.Fprintf(stderr, "kvclient: %s\n", strings.TrimPrefix(err.Error(), "kvclient: "))
		return 1
	}
	fmt.Fprintln(stdout, out)
	return 0
}

func do(ctx context.Context, addr, cmd string, args []string) (string, error) {
	c, err := kvclient.Dial(ctx, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return call(ctx, c, cmd, args)
}

// store is what both a kvclient.Client (one server) and a kvclient.Session
// (a cluster) offer.
type store interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
}

// call runs get, set or delete on s and renders the answer.
func call(ctx context.Context, s store, cmd string, args []string) (string, error) {
	switch cmd {
	case "get":
		v, ok, err := s.Get(ctx, args[0])
		if err != nil {
			return "", err
		}
		if !ok {
			return "(nil)", nil
		}
		return string(v), nil
	case "set":
		return "ok", s.Set(ctx, args[0], []byte(args[1]))
	default:
		return "ok", s.Delete(ctx, args[0])
	}
}

func bench(ctx context.Context, addr string, cl *cluster.Cluster, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvclient bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := fs.Int("c", 64, "concurrent clients (connections), each with one request in flight")
	d := fs.Duration("d", 10*time.Second, "duration")
	size := fs.Int("size", 256, "value size in bytes")
	writes := fs.Float64("writes", 0.5, "fraction of operations that are sets")
	keys := fs.Int("keys", 10000, "number of distinct keys")
	pipeline := fs.Int("pipeline", 1, "requests in flight per connection")
	share := fs.Int("share", 0, "with -cluster: sessions sharing one connection to each server (0: all)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kvclient [-addr ADDR | -cluster FILE] bench [-c 64] [-d 10s] [-size 256] [-writes 0.5] [-keys 10000] [-pipeline 1] [-share 0]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() != 0 || *c <= 0 || *d <= 0 || *size < 0 || *writes < 0 || *writes > 1 || *keys <= 0 || *pipeline <= 0 {
		fmt.Fprintln(stderr, "kvclient: bad bench arguments")
		fs.Usage()
		return 1
	}
	cfg := kvclient.BenchConfig{Addr: addr, Clients: *c, Duration: *d, Size: *size, Writes: *writes, Keys: *keys, Pipeline: *pipeline}
	if cl != nil {
		cfg.Servers = cl.Clients()
		cfg.SessionsPerConn = *share
	}
	res, err := kvclient.Bench(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "kvclient: bench: %s\n", strings.TrimPrefix(err.Error(), "kvclient: "))
		return 1
	}
	fmt.Fprintf(stdout, "clients %d, pipeline %d, value size %d, writes %.0f%%\n", *c, *pipeline, *size, *writes*100)
	fmt.Fprintf(stdout, "ops/s %.0f (%d ops in %v)\n", res.OpsPerSec, res.Ops, res.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "latency p50 %v  p99 %v  max %v\n", res.P50.Round(time.Microsecond), res.P99.Round(time.Microsecond), res.Max.Round(time.Microsecond))
	return 0
}

func doCluster(ctx context.Context, cl *cluster.Cluster, cmd string, args []string) (string, error) {
	if cmd == "status" {
		return kvclient.StatusTable(ctx, cl), nil // asks each node itself: no session
	}
	s, err := kvclient.NewClusterSession(cl)
	if err != nil {
		return "", err
	}
	defer s.Close()
	return call(ctx, s, cmd, args)
}

// doMachine runs one call through the kvsm.Client machine hosted on the
// runtime.
func doMachine(ctx context.Context, cl *cluster.Cluster, timeout time.Duration, cmd string, args []string) (string, error) {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m := kvclient.StartMachine(mctx, cl.Clients(), timeout*9/10, nil)
	op := map[string]kvsm.Op{"get": kvsm.OpGet, "set": kvsm.OpSet, "delete": kvsm.OpDelete}[cmd]
	var value []byte
	if cmd == "set" {
		value = []byte(args[1])
	}
	d, err := m.Do(ctx, op, args[0], value)
	if err != nil {
		if op != kvsm.OpGet {
			return "", fmt.Errorf("%w: %w", kvclient.ErrUnknownOutcome, err)
		}
		return "", err
	}
	switch {
	case d.Unknown && op == kvsm.OpGet:
		return "", fmt.Errorf("no answer within %v", timeout)
	case d.Unknown:
		return "", kvclient.ErrUnknownOutcome
	case d.Status == kvsm.StatusNotFound:
		return "(nil)", nil
	case d.Status != kvsm.StatusOK:
		return "", &kvclient.ServerError{Status: d.Status, Msg: string(d.Result)}
	case op == kvsm.OpGet:
		return string(d.Result), nil
	}
	return "ok", nil
}
