// Package simtest connects simulations to `go test`: it registers the
// -seed and -seeds flags in every test binary that imports it, sweeps seeds
// in parallel, and prints the exact command that replays a failing seed.
//
//	go test ./raft -run Sim              # the CI-sized sweep
//	go test ./raft -run Sim -seeds=100000 # a long sweep
//	go test ./raft -run Sim -seed=42 -v  # replay one seed
package simtest

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

var (
	seed     optionalSeed
	seeds    = flag.Int("seeds", 0, "number of seeds a simulation sweep runs (0: each test's default)")
	seedBase = flag.Uint64("seedbase", 1, "first seed of a sweep")
)

func init() {
	flag.Var(&seed, "seed", "run simulation tests on this one seed only")
}

type optionalSeed struct {
	set bool
	v   uint64
}

func (o *optionalSeed) String() string {
	if !o.set {
		return ""
	}
	return strconv.FormatUint(o.v, 10)
}

func (o *optionalSeed) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return err
	}
	o.v, o.set = v, true
	return nil
}

// Seeds returns the seeds a sweep should run: the one -seed if given, else
// -seeds seeds (or defaultN) starting at -seedbase.
func Seeds(defaultN int) []uint64 {
	if seed.set {
		return []uint64{seed.v}
	}
	n := defaultN
	if *seeds > 0 {
		n = *seeds
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = *seedBase + uint64(i)
	}
	return out
}

// Single reports whether -seed was given.
func Single() bool { return seed.set }

// maxReported bounds how many failing seeds a sweep lists.
const maxReported = 5

// Sweep runs run for every seed of Seeds(defaultN), on all cores, and fails
// t for each seed whose run returns an error, printing the command that
// replays it. It stops starting new seeds after maxReported failures.
func Sweep(t *testing.T, defaultN int, run func(seed uint64) error) {
	t.Helper()
	list := Seeds(defaultN)
	var (
		mu     sync.Mutex
		failed []uint64
		errs   = map[uint64]error{}
		next   int
		wg     sync.WaitGroup
	)
	workers := min(runtime.GOMAXPROCS(0), len(list))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(list) || len(failed) >= maxReported {
					mu.Unlock()
					return
				}
				s := list[next]
				next++
				mu.Unlock()
				if err := run(s); err != nil {
					mu.Lock()
					failed = append(failed, s)
					errs[s] = err
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	slices.Sort(failed)
	for _, s := range failed {
		t.Errorf("seed %d: %v\n    replay: %s", s, errs[s], ReplayCommand(t, s))
	}
	if len(failed) == 0 {
		t.Logf("%d seeds passed", len(list))
	}
}

// ReplayCommand is the go test command line that reruns t's top-level test
// on one seed.
func ReplayCommand(t testing.TB, seed uint64) string {
	name, _, _ := strings.Cut(t.Name(), "/")
	return fmt.Sprintf("go test ./%s -run '^%s$' -seed=%d -count=1 -v", packageDir(), name, seed)
}

// packageDir is the test's package directory relative to the module root
// (go test runs a test binary in its package's directory).
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return ""
			}
			return filepath.ToSlash(rel)
		}
		if filepath.Dir(dir) == dir {
			return "."
		}
	}
}
