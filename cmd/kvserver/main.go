// Command kvserver serves the key-value store over TCP.
//
// Standalone (the default), it runs the kvsm server machine through the
// runtime host: every TCP connection is a client, requests and responses
// are kvsm messages in length-prefixed frames. With -data DIR every write is
// appended to a checksummed journal and fsync'd (group commit) before it is
// acknowledged, and the store is recovered from DIR at start; without it
// the store lives in memory only.
//
// Clustered (-cluster FILE -id N -data DIR), it runs node N of a
// replicated store: the kvsm.Replica machine (Raft plus the store and
// exactly-once client sessions), the very code the simulator tests, hosted
// by the runtime with TCP to its peers (the node's "peer" address in the
// cluster file), a client listener (its "client" address) and an fsync'd
// journal in DIR. Clients find the leader themselves (kvclient -cluster).
// Besides kvsm requests, the client port answers status requests (see
// package cluster), which "flotilla cluster status" uses.
//
// Usage:
//
//	kvserver [-addr :12345] [-data DIR] [-v]
//	kvserver -cluster cluster.json -id N -data DIR [-snapshot-every N] [-v]
//
// Standalone, it prints "KV Server listening on port N" once it accepts
// connections; clustered, "KV node N listening: peers ADDR, clients ADDR".
// Either shuts down cleanly on SIGINT or SIGTERM: events already received
// are handled, the journal is synced, and the process exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/runtime"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kvserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", ":12345", "TCP address to listen on")
	data := fs.String("data", "", "directory for the durable journal (empty: in-memory only)")
	snapEvery := fs.Int("snapshot-every", 100000, "journaled writes between snapshots (negative: never)")
	verbose := fs.Bool("v", false, "debug logging")
	clusterFile := fs.String("cluster", "", "cluster file (JSON): run as node -id of this replicated cluster")
	id := fs.Int("id", -1, "this node's id in the cluster file (with -cluster)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile to this file until shutdown")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: kvserver [-addr :12345] [-data DIR] [-snapshot-every N] [-v]")
		fmt.Fprintln(stderr, "       kvserver -cluster cluster.json -id N -data DIR [-snapshot-every N] [-v]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "kvserver: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return 2
	}
	if *snapEvery == 0 {
		fmt.Fprintln(stderr, "kvserver: -snapshot-every must not be 0")
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "kvserver: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "kvserver: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	if *clusterFile != "" || *id >= 0 {
		return runNode(ctx, fs, *clusterFile, *id, *data, *snapEvery, log, stdout, stderr)
	}
	if err := serve(ctx, *addr, *data, *snapEvery, log, stdout); err != nil {
		log.Error("kvserver stopped", "err", err)
		return 1
	}
	log.Info("kvserver stopped")
	return 0
}

func serve(ctx context.Context, addr, data string, snapEvery int, log *slog.Logger, stdout io.Writer) error {
	var j *runtime.Journal
	if data != "" {
		var err error
		j, err = runtime.OpenJournal(data)
		if err != nil {
			return err
		}
		defer j.Close()
		rec := j.Recovered()
		log.Info("journal recovered", "dir", data, "snapshot_bytes", len(rec.Snapshot), "base", rec.Base, "records", len(rec.Records))
	}
	tr, err := runtime.ListenTCP(runtime.TCPConfig{Listen: addr, Codec: kvsm.Codec{}, Logger: log, DecodeInPlace: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "KV Server listening on port %d\n", tr.Addr().Port)
	if f, ok := stdout.(*os.File); ok {
		f.Sync()
	}
	log.Info("serving", "addr", tr.Addr().String(), "durable", data != "")
	err = runtime.Run(ctx, runtime.Config{
		ID:        0,
		Machine:   kvsm.NewServer(kvsm.ServerConfig{SnapshotEvery: snapEvery}),
		Transport: tr,
		Journal:   j,
		Logger:    log,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if j != nil {
		return j.Close()
	}
	return nil
}
