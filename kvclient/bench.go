package kvclient

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// BenchConfig configures a closed-loop load run.
type BenchConfig struct {
	// Addr is the address of a standalone server.
	Addr string
	// Servers, if set instead of Addr, are the client addresses of a
	// replicated cluster: each client is then a Session (leader discovery,
	// retries, exactly-once writes) and Pipeline must be 1.
	Servers map[sim.NodeID]string
	// SessionsPerConn is, for a cluster, how many sessions share one
	// connection to each server (their requests are pipelined on it);
	// 0 means all of them.
	SessionsPerConn int
	// Clients is the number of connections, each with one request in
	// flight at a time (closed loop); 0 means 64.
	Clients int
	// Duration is how long to run; ignored if Ops > 0.
	Duration time.Duration
	// Ops, if positive, is the total number of operations to run instead of
	// a duration.
	Ops int
	// Size is the value size of writes in bytes.
	Size int
	// Writes is the fraction of operations that are sets; the rest are gets.
	Writes float64
	// Keys is the number of distinct keys; 0 means 10000.
	Keys int
	// Pipeline is the number of requests each connection keeps in flight;
	// 0 means 1 (a strict closed loop per connection).
	Pipeline int
}

// kv is what Bench needs of a Client or a Session.
type kv interface {
	Get(ctx context.Context, key string) ([]byte, bool, error)
	Set(ctx context.Context, key string, value []byte) error
	Close() error
}

// BenchResult summarizes a load run.
type BenchResult struct {
	Ops           int
	Elapsed       time.Duration
	P50, P99, Max time.Duration
	OpsPerSec     float64
	Writes        int // sets among Ops
}

func (r BenchResult) String() string {
	return fmt.Sprintf("%d ops in %v: %.0f ops/s, latency p50 %v p99 %v max %v",
		r.Ops, r.Elapsed.Round(time.Millisecond), r.OpsPerSec,
		r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Max.Round(time.Microsecond))
}

// Bench runs a closed-loop load: cfg.Clients connections, each with
// cfg.Pipeline workers sending their next request as soon as the previous
// one is answered. Any failed request
// stops the run with an error.
func Bench(ctx context.Context, cfg BenchConfig) (BenchResult, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 64
	}
	if cfg.Keys <= 0 {
		cfg.Keys = 10000
	}
	if cfg.Pipeline <= 0 {
		cfg.Pipeline = 1
	}
	if cfg.Ops <= 0 && cfg.Duration <= 0 {
		return BenchResult{}, errors.New("kvclient: bench needs a duration or an op count")
	}
	if cfg.Writes < 0 || cfg.Writes > 1 {
		return BenchResult{}, fmt.Errorf("kvclient: write fraction %v outside [0, 1]", cfg.Writes)
	}
	if cfg.Size < 0 {
		return BenchResult{}, fmt.Errorf("kvclient: negative value size %d", cfg.Size)
	}
	if cfg.Servers != nil && cfg.Pipeline != 1 {
		return BenchResult{}, errors.New("kvclient: a cluster session runs one call at a time: pipeline must be 1")
	}
	clients := make([]kv, cfg.Clients)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.Close()
			}
		}
	}()
	if cfg.SessionsPerConn <= 0 {
		cfg.SessionsPerConn = cfg.Clients
	}
	var pool *Pool
	for i := range clients {
		if cfg.Servers != nil {
			if i%cfg.SessionsPerConn == 0 {
				pool = NewPool(cfg.Servers)
				defer pool.Close()
			}
			s, err := NewSession(ClusterConfig{Servers: cfg.Servers, Pool: pool})
			if err != nil {
				return BenchResult{}, err
			}
			clients[i] = s
			continue
		}
		if cfg.Pipeline == 1 {
			// One call at a time per connection: the caller's goroutine
			// does the I/O itself.
			c, err := dialSerial(ctx, cfg.Addr)
			if err != nil {
				return BenchResult{}, err
			}
			clients[i] = c
			continue
		}
		c, err := Dial(ctx, cfg.Addr)
		if err != nil {
			return BenchResult{}, err
		}
		clients[i] = c
	}
	keys := make([]string, cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%06d", i)
	}
	value := make([]byte, cfg.Size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Ops <= 0 {
		runCtx, cancel = context.WithTimeout(runCtx, cfg.Duration)
		defer cancel()
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		writes   int
		firstErr error
		left     = cfg.Ops
		budgetMu sync.Mutex
	)
	take := func() bool {
		if cfg.Ops <= 0 {
			return runCtx.Err() == nil
		}
		budgetMu.Lock()
		defer budgetMu.Unlock()
		if left == 0 {
			return false
		}
		left--
		return true
	}
	start := time.Now()
	for i := range cfg.Clients * cfg.Pipeline {
		c := clients[i%cfg.Clients]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			my := make([]time.Duration, 0, 1024)
			w := 0
			var err error
			for take() {
				key := keys[rng.IntN(len(keys))]
				t0 := time.Now()
				write := rng.Float64() < cfg.Writes
				if write {
					err = c.Set(runCtx, key, value)
				} else {
					_, _, err = c.Get(runCtx, key)
				}
				if err != nil {
					break
				}
				my = append(my, time.Since(t0))
				if write {
					w++ // counted with its latency: Writes is a share of Ops
				}
			}
			mu.Lock()
			defer mu.Unlock()
			lats = append(lats, my...)
			writes += w
			if err != nil && firstErr == nil && !(cfg.Ops <= 0 && runCtx.Err() != nil && ctx.Err() == nil) {
				firstErr = err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return BenchResult{}, firstErr
	}
	if len(lats) == 0 {
		return BenchResult{}, errors.New("kvclient: no operation completed")
	}
	slices.Sort(lats)
	q := func(p float64) time.Duration { return lats[min(len(lats)-1, int(p*float64(len(lats))))] }
	return BenchResult{
		Ops: len(lats), Elapsed: elapsed, Writes: writes,
		P50: q(0.50), P99: q(0.99), Max: lats[len(lats)-1],
		OpsPerSec: float64(len(lats)) / elapsed.Seconds(),
	}, nil
}
