package kvclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvclient"
	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/runtime"
)

// startServer runs a KV server in this process on a loopback port; dir ""
// means in memory.
func startServer(tb testing.TB, dir string) string {
	tb.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var j *runtime.Journal
	if dir != "" {
		var err error
		if j, err = runtime.OpenJournal(dir); err != nil {
			tb.Fatal(err)
		}
	}
	tr, err := runtime.ListenTCP(runtime.TCPConfig{Listen: "127.0.0.1:0", Codec: kvsm.Codec{}, Logger: log, DecodeInPlace: true})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runtime.Run(ctx, runtime.Config{Machine: kvsm.NewServer(kvsm.ServerConfig{}), Transport: tr, Journal: j, Logger: log})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("server: %v", err)
		}
		if j != nil {
			j.Close()
		}
	})
	return tr.Addr().String()
}

func TestClientOperations(t *testing.T) {
	addr := startServer(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := kvclient.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok, err := c.Get(ctx, "foo"); err != nil || ok {
		t.Fatalf("get missing: ok=%v err=%v", ok, err)
	}
	if err := c.Delete(ctx, "foo"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	if err := c.Set(ctx, "foo", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx, "foo"); err != nil || !ok || string(v) != "hello" {
		t.Fatalf("get foo = %q, %v, %v", v, ok, err)
	}
	if err := c.Set(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := c.Get(ctx, "empty"); err != nil || !ok || len(v) != 0 {
		t.Fatalf("get empty = %q, %v, %v", v, ok, err)
	}
	if err := c.Delete(ctx, "foo"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.Get(ctx, "foo"); err != nil || ok {
		t.Fatalf("get deleted: ok=%v err=%v", ok, err)
	}
	var se *kvclient.ServerError
	if err := c.Set(ctx, string(make([]byte, kvsm.MaxKey+1)), nil); err == nil || errors.As(err, &se) {
		t.Fatalf("over-long key: %v, want a client-side refusal", err)
	}
}

// TestClientPipelines runs many goroutines over one client; every answer
// must be the one for its own request.
func TestClientPipelines(t *testing.T) {
	addr := startServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kvclient.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errs := make(chan error, 32)
	for g := range 32 {
		go func() {
			for i := range 50 {
				k := fmt.Sprintf("g%d-%d", g, i)
				if err := c.Set(ctx, k, []byte(k)); err != nil {
					errs <- err
					return
				}
				v, ok, err := c.Get(ctx, k)
				if err != nil || !ok || string(v) != k {
					errs <- fmt.Errorf("get %s = %q, %v, %v", k, v, ok, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 32 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestClientServerGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := kvclient.Dial(ctx, "127.0.0.1:1"); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

func TestBenchSmall(t *testing.T) {
	addr := startServer(t, "")
	res, err := kvclient.Bench(context.Background(), kvclient.BenchConfig{Addr: addr, Clients: 4, Ops: 400, Size: 16, Writes: 0.5, Keys: 10})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 400 || res.P50 > res.P99 || res.P99 > res.Max || res.OpsPerSec <= 0 {
		t.Fatalf("implausible result %+v", res)
	}
}

// Values larger than the bench connection's read buffer come back whole: a
// response read short would put the connection out of step and fail the
// run, and the values written are there to read.
func TestBenchLargeValues(t *testing.T) {
	addr := startServer(t, "")
	ctx := context.Background()
	const size = 200 << 10
	res, err := kvclient.Bench(ctx, kvclient.BenchConfig{Addr: addr, Clients: 2, Ops: 60, Size: size, Writes: 0.5, Keys: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops != 60 {
		t.Fatalf("implausible result %+v", res)
	}
	checkBenchValues(t, addr, 3, size)
}

// checkBenchValues checks that each of the keys a bench run over keys keys
// uses holds the bench's value of size bytes (its clients' choices are
// seeded, and enough writes reach every key).
func checkBenchValues(t *testing.T, addr string, keys, size int) {
	t.Helper()
	ctx := context.Background()
	c, err := kvclient.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := make([]byte, size)
	for i := range want {
		want[i] = byte('a' + i%26)
	}
	for k := range keys {
		key := fmt.Sprintf("key-%06d", k)
		if v, ok, err := c.Get(ctx, key); err != nil || !ok || !bytes.Equal(v, want) {
			t.Fatalf("after the run %s = %d bytes, %v, %v; want the bench's %d", key, len(v), ok, err, size)
		}
	}
}

// A timed run ends cleanly although every connection has a request in
// flight when time is up (the one-in-flight connections are cut by their
// deadline), and what it read back is what it wrote.
func TestBenchDuration(t *testing.T) {
	addr := startServer(t, "")
	ctx := context.Background()
	res, err := kvclient.Bench(ctx, kvclient.BenchConfig{Addr: addr, Clients: 8, Duration: 300 * time.Millisecond, Size: 100, Writes: 0.5, Keys: 5})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ops == 0 || res.Writes == 0 || res.Writes == res.Ops || res.Elapsed > 5*time.Second {
		t.Fatalf("implausible result %+v", res)
	}
	checkBenchValues(t, addr, 5, 100)
}

func benchServer(b *testing.B, dir string, pipeline int) {
	addr := startServer(b, dir)
	b.ResetTimer()
	res, err := kvclient.Bench(context.Background(), kvclient.BenchConfig{
		Addr: addr, Clients: 64, Pipeline: pipeline, Ops: max(b.N, 64*pipeline), Size: 256, Writes: 0.5, Keys: 10000})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.OpsPerSec, "ops/s")
	b.ReportMetric(float64(res.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(res.P99.Microseconds()), "p99-µs")
}

// BenchmarkServer64 measures a standalone in-memory server with 64
// closed-loop clients (one connection each, one request in flight), half
// sets of 256-byte values over 10,000 keys, half gets. The load generator
// shares the machine with the server.
func BenchmarkServer64(b *testing.B) { benchServer(b, "", 1) }

// BenchmarkServer64Durable is BenchmarkServer64 with the fsync'd journal.
func BenchmarkServer64Durable(b *testing.B) { benchServer(b, b.TempDir(), 1) }

// BenchmarkServer64Pipelined keeps 16 requests in flight on each of the 64
// connections, so that requests share syscalls on both sides.
func BenchmarkServer64Pipelined(b *testing.B) { benchServer(b, "", 16) }

// BenchmarkServer64PipelinedDurable is BenchmarkServer64Pipelined with the
// fsync'd journal: group commit makes one fsync cover many writes.
func BenchmarkServer64PipelinedDurable(b *testing.B) { benchServer(b, b.TempDir(), 16) }

func Example() {
	ctx := context.Background()
	addr := exampleServer()
	c, err := kvclient.Dial(ctx, addr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	if err := c.Set(ctx, "foo", []byte("hello")); err != nil {
		fmt.Println(err)
		return
	}
	v, ok, err := c.Get(ctx, "foo")
	fmt.Println(string(v), ok, err)
	_, ok, err = c.Get(ctx, "missing")
	fmt.Println(ok, err)
	// Output:
	// hello true <nil>
	// false <nil>
}

// exampleServer starts an in-memory server for the example; it runs until
// the test binary exits.
func exampleServer() string {
	tr, err := runtime.ListenTCP(runtime.TCPConfig{Listen: "127.0.0.1:0", Codec: kvsm.Codec{}})
	if err != nil {
		panic(err)
	}
	go runtime.Run(context.Background(), runtime.Config{Machine: kvsm.NewServer(kvsm.ServerConfig{}), Transport: tr,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return tr.Addr().String()
}
