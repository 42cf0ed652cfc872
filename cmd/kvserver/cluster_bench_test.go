package main_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvclient"
)

var (
	benchBinOnce sync.Once
	benchBin     string
	benchBinErr  error
)

// BenchmarkCluster3 measures writes on a local 3-node cluster of kvserver
// processes built without the race detector, fsync on (each node's journal
// in the test's temp directory), 256-byte values, every operation a set
// through a kvclient.Session (leader discovery, exactly-once sessions).
// With 64 sessions it runs them on 64 connections per server (conns=64),
// then all on one connection per server (conns=1: requests of all
// sessions pipelined on it, as kvclient bench does by default).
// It reports writes/s and the p50/p99 latency of one closed-loop run of
// b.N operations.
//
//	go test ./cmd/kvserver -run '^$' -bench Cluster3 -benchtime 20000x
func BenchmarkCluster3(b *testing.B) {
	benchBinOnce.Do(func() {
		dir := filepath.Join(bin, "norace")
		out, err := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "github.com/flotilla-sim/flotilla/cmd/kvserver").CombinedOutput()
		if err != nil {
			benchBinErr = fmt.Errorf("%v\n%s", err, out)
		}
		benchBin = dir
	})
	if benchBinErr != nil {
		b.Fatal(benchBinErr)
	}
	for _, c := range []struct{ clients, share int }{{1, 1}, {64, 1}, {64, 64}} {
		clients, share := c.clients, c.share
		b.Run(fmt.Sprintf("clients=%d/conns=%d", clients, clients/share), func(b *testing.B) {
			tc := startClusterWith(b, 3, filepath.Join(benchBin, "kvserver"))
			tc.leader(10 * time.Second)
			ctx := context.Background()
			// Warm up: open sessions and connections.
			if _, err := kvclient.Bench(ctx, kvclient.BenchConfig{Servers: tc.c.Clients(), Clients: clients, SessionsPerConn: share, Ops: 200, Size: 256, Writes: 1}); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			res, err := kvclient.Bench(ctx, kvclient.BenchConfig{Servers: tc.c.Clients(), Clients: clients, SessionsPerConn: share, Ops: b.N, Size: 256, Writes: 1})
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(res.OpsPerSec, "writes/s")
			b.ReportMetric(float64(res.P50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(res.P99.Microseconds())/1000, "p99-ms")
		})
	}
}
