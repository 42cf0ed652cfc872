package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

type simFlags struct {
	system      string
	nodes       int
	seeds       int
	seed        uint64
	seedSet     bool
	faults      string
	duration    time.Duration
	workers     int
	trace       string
	determinism bool
}

func simMain(args []string) int {
	var f simFlags
	fs := flag.NewFlagSet("flotilla sim", flag.ContinueOnError)
	fs.StringVar(&f.system, "system", "pingpong", "system to simulate")
	fs.IntVar(&f.nodes, "nodes", 0, "number of nodes (default: the system's)")
	fs.IntVar(&f.seeds, "seeds", 1000, "number of seeds to sweep, starting at 1")
	fs.Func("seed", "run this one seed only", func(s string) error {
		_, err := fmt.Sscan(s, &f.seed)
		f.seedSet = true
		return err
	})
	fs.StringVar(&f.faults, "faults", "swarm", "faults: swarm, all, none, or a list of "+strings.Join(sim.FaultNames, ","))
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "virtual length of the fault phase")
	fs.IntVar(&f.workers, "workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	fs.StringVar(&f.trace, "trace", "", "write the run's trace as JSON lines to this file (with -seed)")
	fs.BoolVar(&f.determinism, "check-determinism", false, "run every seed twice and report the first step where the runs differ")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: flotilla sim [flags]\n\nSweeps seeds over a system in the deterministic simulator and\nprints the command that replays each failure.\n\nSystems:")
		for _, s := range systems() {
			fmt.Fprintf(fs.Output(), "  %-9s %s\n", s.name, s.about)
		}
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := f.validate(fs); err != nil {
		fmt.Fprintln(os.Stderr, "flotilla sim:", err)
		fs.Usage()
		return 2
	}
	sys, _ := findSystem(f.system)
	if f.nodes == 0 {
		f.nodes = sys.defaultNodes
	}
	return sweep(sys, f, os.Stdout, os.Stderr)
}

func (f *simFlags) validate(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sys, err := findSystem(f.system)
	if err != nil {
		return err
	}
	if f.nodes != 0 && (f.nodes < sys.minNodes || f.nodes > 64) {
		return fmt.Errorf("-nodes %d: %s needs %d to 64", f.nodes, sys.name, sys.minNodes)
	}
	if f.seeds < 1 || f.workers < 1 || f.duration < 0 {
		return errors.New("-seeds and -workers must be positive, -duration not negative")
	}
	if _, err := sim.ParsePlan(f.faults, 0, sys.base, 1); err != nil {
		return err
	}
	if f.trace != "" && !f.seedSet {
		return errors.New("-trace needs -seed")
	}
	return nil
}

// outcome is one seed's result.
type outcome struct {
	seed uint64
	res  sim.Result
	err  error
}

func (f *simFlags) config(sys system, seed uint64) sim.Config {
	plan, _ := sim.ParsePlan(f.faults, seed, sys.base, f.nodes)
	return sys.scenario(seed, f.nodes, plan, f.duration)
}

func runSeed(sys system, f *simFlags, seed uint64) outcome {
	if f.determinism {
		res, err := sim.CheckDeterminism(func() sim.Config { return f.config(sys, seed) })
		if err == nil {
			err = res.Err
		}
		return outcome{seed, res, err}
	}
	cfg := f.config(sys, seed)
	if f.trace != "" {
		file, err := os.Create(f.trace)
		if err != nil {
			return outcome{seed: seed, err: fmt.Errorf("trace: %w", err)}
		}
		defer file.Close()
		cfg.Trace = file
	}
	res := sim.New(cfg).Run()
	return outcome{seed, res, res.Err}
}

func (f *simFlags) replay(seed uint64) string {
	cmd := fmt.Sprintf("go run ./cmd/flotilla sim -system %s -nodes %d -faults %s -duration %v -seed %d",
		f.system, f.nodes, f.faults, f.duration, seed)
	if f.determinism {
		cmd += " -check-determinism"
	}
	return cmd
}

func sweep(sys system, f simFlags, stdout, stderr io.Writer) int {
	seeds := make([]uint64, f.seeds)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	if f.seedSet {
		seeds = []uint64{f.seed}
	}
	start := time.Now()
	results := make(chan outcome)
	var next sync.Mutex
	i := 0
	for range min(f.workers, len(seeds)) {
		go func() {
			for {
				next.Lock()
				if i >= len(seeds) {
					next.Unlock()
					return
				}
				s := seeds[i]
				i++
				next.Unlock()
				results <- runSeed(sys, &f, s)
			}
		}()
	}
	var (
		done      int
		events    uint64
		virtual   time.Duration
		failed    []outcome
		byChecker = map[string]int{}
		lastDraw  time.Time
		last      outcome
	)
	for done < len(seeds) {
		o := <-results
		last = o
		done++
		events += o.res.Stats.Events
		virtual += o.res.Virtual
		if o.err != nil {
			failed = append(failed, o)
			var fl *sim.Failure
			name := "error"
			if errors.As(o.err, &fl) {
				name = fl.Checker
			}
			byChecker[name]++
		}
		if now := time.Now(); len(seeds) > 1 && (now.Sub(lastDraw) > 200*time.Millisecond || done == len(seeds)) {
			lastDraw = now
			progress(stderr, done, len(seeds), len(failed), now.Sub(start))
		}
	}
	if len(seeds) > 1 {
		fmt.Fprintln(stderr)
	}
	wall := time.Since(start)
	slices.SortFunc(failed, func(a, b outcome) int { return int(a.seed) - int(b.seed) })
	for _, o := range failed {
		fmt.Fprintf(stdout, "FAIL seed %d: %v\n  replay: %s\n", o.seed, o.err, f.replay(o.seed))
	}
	summary(stdout, sys, f, len(seeds), failed, byChecker, events, virtual, wall)
	if len(seeds) == 1 {
		fmt.Fprintf(stdout, "trace hash %016x\n", last.res.Hash)
	}
	if len(failed) > 0 {
		return 1
	}
	return 0
}

func progress(w io.Writer, done, total, failed int, elapsed time.Duration) {
	rate := float64(done) / elapsed.Seconds()
	eta := time.Duration(float64(total-done)/rate) * time.Second
	const width = 30
	bar := strings.Repeat("#", done*width/total) + strings.Repeat(".", width-done*width/total)
	fmt.Fprintf(w, "\r[%s] %d/%d seeds  %.1f seeds/s  %d failed  ETA %v   ", bar, done, total, rate, failed, eta.Round(time.Second))
}

func summary(w io.Writer, sys system, f simFlags, seeds int, failed []outcome, byChecker map[string]int,
	events uint64, virtual, wall time.Duration) {
	fmt.Fprintf(w, "system %s, %d nodes, faults %s, %v per seed\n", sys.name, f.nodes, f.faults, f.duration)
	fmt.Fprintf(w, "seeds: %d run, %d failed\n", seeds, len(failed))
	if len(byChecker) > 0 {
		var names []string
		for name := range byChecker {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			fmt.Fprintf(w, "  %-30s %d\n", name, byChecker[name])
		}
	}
	fmt.Fprintf(w, "events: %d in %v (%.0f events/s)\n", events, wall.Round(time.Millisecond), float64(events)/wall.Seconds())
	fmt.Fprintf(w, "virtual time: %v, %.0f× real time\n", virtual.Round(time.Millisecond), virtual.Seconds()/wall.Seconds())
}
