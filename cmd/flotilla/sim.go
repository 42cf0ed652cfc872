package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	clients     int
	shrink      bool
	shrinkDir   string
	shrinkMax   int
	shrinkRuns  int
	replayPath  string
}

// clientKnob is a system's number of clients: -clients sets it, and the
// shrinker cuts it down. Its scenario must number the clients after the
// nodes (simulation ids nodes..nodes+clients-1), as kvsim does.
type clientKnob struct {
	defaultClients, minClients int
	scenario                   func(seed uint64, nodes, clients int, plan sim.Plan, d time.Duration) sim.Config
}

// clientKnobs holds the knob of every system that has one, by system name.
var clientKnobs = map[string]clientKnob{}

func simMain(args []string) int { return simRun(args, os.Stdout, os.Stderr) }

func simRun(args []string, stdout, stderr io.Writer) int {
	var f simFlags
	fs := flag.NewFlagSet("flotilla sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.system, "system", "pingpong", "system to simulate")
	fs.IntVar(&f.nodes, "nodes", 0, "number of nodes (default: the system's)")
	fs.IntVar(&f.seeds, "seeds", 1000, "number of seeds to sweep, starting at 1")
	fs.Func("seed", "run this one seed only", func(s string) error {
		_, err := fmt.Sscan(s, &f.seed)
		f.seedSet = true
		return err
	})
	fs.StringVar(&f.faults, "faults", "swarm", "faults: swarm, all, none, or a list of "+strings.Join(sim.FaultNames, ","))
	fs.DurationVar(&f.duration, "duration", 0, "virtual length of the fault phase (default: the system's)")
	fs.IntVar(&f.workers, "workers", runtime.GOMAXPROCS(0), "seeds run in parallel")
	fs.StringVar(&f.trace, "trace", "", "write the run's trace as JSON lines to this file (with -seed)")
	fs.BoolVar(&f.determinism, "check-determinism", false, "run every seed twice and report the first step where the runs differ")
	fs.IntVar(&f.clients, "clients", 0, "number of clients, for systems that have them (default: the system's)")
	fs.BoolVar(&f.shrink, "shrink", false, "shrink each failing seed's schedule to a minimal one that fails the same checker, and write it as a replayable file")
	fs.StringVar(&f.shrinkDir, "shrink-dir", ".", "directory for the reproduction files -shrink writes")
	fs.IntVar(&f.shrinkMax, "shrink-max", 3, "shrink at most this many failing seeds (the lowest)")
	fs.IntVar(&f.shrinkRuns, "shrink-runs", 500, "at most this many simulations per shrink")
	fs.StringVar(&f.replayPath, "replay", "", "replay a reproduction file written by -shrink (the system, seed, size and schedule come from the file)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: flotilla sim [flags]\n\nSweeps seeds over a system in the deterministic simulator and\nprints the command that replays each failure.\n\nSystems:")
		for _, s := range systems() {
			fmt.Fprintf(fs.Output(), "  %-9s %s\n", s.name, s.about)
		}
		fmt.Fprintln(fs.Output(), "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := f.validate(fs); err != nil {
		fmt.Fprintln(stderr, "flotilla sim:", err)
		fs.Usage()
		return 2
	}
	if f.replayPath != "" {
		return replayFile(f, stdout, stderr)
	}
	sys, _ := findSystem(f.system)
	if f.nodes == 0 {
		f.nodes = sys.defaultNodes
	}
	if f.duration == 0 {
		f.duration = sys.duration()
	}
	if k, ok := clientKnobs[sys.name]; ok && f.clients == 0 {
		f.clients = k.defaultClients
	}
	return sweep(sys, f, stdout, stderr)
}

func (f *simFlags) validate(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	sys, err := findSystem(f.system)
	if err != nil {
		return err
	}
	if lo, hi := sys.nodeRange(); f.nodes != 0 && (f.nodes < lo || f.nodes > hi) {
		return fmt.Errorf("-nodes %d: %s needs %d to %d", f.nodes, sys.name, lo, hi)
	}
	if f.seeds < 1 || f.workers < 1 || f.duration < 0 {
		return errors.New("-seeds and -workers must be positive, -duration not negative")
	}
	if f.clients != 0 {
		k, ok := clientKnobs[sys.name]
		if !ok {
			return fmt.Errorf("-clients: %s has no clients", sys.name)
		}
		if f.clients < k.minClients {
			return fmt.Errorf("-clients %d: %s needs at least %d", f.clients, sys.name, k.minClients)
		}
	}
	if f.shrinkMax < 1 || f.shrinkRuns < 1 {
		return errors.New("-shrink-max and -shrink-runs must be positive")
	}
	if f.replayPath != "" && f.shrink {
		return errors.New("-replay and -shrink do not go together: the file is already shrunk")
	}
	if _, err := sim.ParsePlan(f.faults, 0, sys.base, 1); err != nil {
		return err
	}
	if f.trace != "" && !f.seedSet && f.replayPath == "" {
		return errors.New("-trace needs -seed or -replay")
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
	if k, ok := clientKnobs[sys.name]; ok {
		return k.scenario(seed, f.nodes, f.clients, plan, f.duration)
	}
	return sys.scenario(seed, f.nodes, plan, f.duration)
}

// schedule is the recorded schedule of one seed's run: what -shrink starts
// from.
func (f *simFlags) schedule(sys system, seed uint64) sim.Schedule {
	sc := sim.ScheduleOf(f.config(sys, seed))
	if _, ok := clientKnobs[sys.name]; ok {
		// The simulation's nodes are the system's nodes, then its clients.
		sc.Nodes, sc.Clients = f.nodes, f.clients
	}
	return sc
}

// buildSchedule builds sys for a recorded schedule: the system's scenario
// for the schedule's seed, nodes and clients, with the schedule's faults,
// network, drift, sync latency and duration in place of the ones the
// scenario would draw.
func buildSchedule(sys system, sc sim.Schedule) sim.Config {
	plan := sim.Plan{Network: sc.Network}
	var cfg sim.Config
	if k, ok := clientKnobs[sys.name]; ok {
		cfg = k.scenario(sc.Seed, sc.Nodes, sc.Clients, plan, sc.Duration)
	} else {
		cfg = sys.scenario(sc.Seed, sc.Nodes, plan, sc.Duration)
	}
	sc.Apply(&cfg)
	return cfg
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
	if _, ok := clientKnobs[f.system]; ok {
		cmd += fmt.Sprintf(" -clients %d", f.clients)
	}
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
	if f.shrink && len(failed) > 0 {
		shrinkFailures(sys, &f, failed, stdout, stderr)
	}
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

// shrinkFailures shrinks the lowest failing seeds' schedules, in parallel,
// writes each minimal schedule as a reproduction file and prints where it
// is and how to replay it.
func shrinkFailures(sys system, f *simFlags, failed []outcome, stdout, stderr io.Writer) {
	var todo []uint64
	for _, o := range failed {
		var fl *sim.Failure
		if errors.As(o.err, &fl) && len(todo) < f.shrinkMax {
			todo = append(todo, o.seed)
		}
	}
	if len(todo) == 0 {
		fmt.Fprintln(stdout, "shrink: no checker failure to shrink")
		return
	}
	if n := len(failed); n > len(todo) {
		fmt.Fprintf(stdout, "shrinking the first %d of %d failing seeds (-shrink-max)\n", len(todo), n)
	}
	if err := os.MkdirAll(f.shrinkDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "shrink:", err)
		return
	}
	reports := make([]string, len(todo))
	var wg sync.WaitGroup
	sem := make(chan struct{}, f.workers)
	for i, seed := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			reports[i] = shrinkSeed(sys, f, seed)
		}()
	}
	wg.Wait()
	for _, r := range reports {
		fmt.Fprint(stdout, r)
	}
}

// shrinkSeed shrinks one failing seed and reports the result.
func shrinkSeed(sys system, f *simFlags, seed uint64) string {
	sc := f.schedule(sys, seed)
	opts := sim.ShrinkOptions{
		Build:    func(sc sim.Schedule) sim.Config { return buildSchedule(sys, sc) },
		MinNodes: sys.minNodes,
		MaxRuns:  f.shrinkRuns,
	}
	if k, ok := clientKnobs[sys.name]; ok {
		opts.MinClients = k.minClients
	}
	r, err := sim.Shrink(sc, opts)
	if err != nil {
		return fmt.Sprintf("SHRINK seed %d: cannot shrink: %v\n", seed, err)
	}
	path := filepath.Join(f.shrinkDir, fmt.Sprintf("repro-%s-seed%d.json", sys.name, seed))
	rep := sim.Repro{System: sys.name, Schedule: r.Schedule, Checker: r.Failure.Checker, Error: r.Failure.Err.Error()}
	if err := writeRepro(path, rep); err != nil {
		return fmt.Sprintf("SHRINK seed %d: %v\n", seed, err)
	}
	var b strings.Builder
	small := r.Schedule
	fmt.Fprintf(&b, "SHRUNK seed %d (%s): %d faults -> %d, %v -> %v, %d -> %d nodes", seed, r.Failure.Checker,
		sc.Size(), small.Size(), sc.Duration, small.Duration, sc.Nodes, small.Nodes)
	if sc.Clients > 0 {
		fmt.Fprintf(&b, ", %d -> %d clients", sc.Clients, small.Clients)
	}
	fmt.Fprintf(&b, " in %d runs", r.Runs)
	if r.Exhausted {
		b.WriteString(" (run budget spent; -shrink-runs for more)")
	}
	b.WriteString("\n")
	for _, flt := range small.Faults {
		fmt.Fprintf(&b, "  fault: %v\n", flt)
	}
	fmt.Fprintf(&b, "  file:   %s\n  replay: go run ./cmd/flotilla sim -replay %s\n", path, path)
	fmt.Fprintf(&b, "  look:   go run ./cmd/flotilla sim -replay %s -trace repro.jsonl && go run ./cmd/flotilla trace repro.jsonl -o repro.html\n", path)
	return b.String()
}

func writeRepro(path string, r sim.Repro) error {
	return writeFile(path, func(w io.Writer) error { return sim.WriteRepro(w, r) })
}

// writeFile creates path and fills it with write, reporting a failed Close
// (a short write on a full disk) when write itself succeeded.
func writeFile(path string, write func(io.Writer) error) (err error) {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := file.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	return write(file)
}

// replayFile runs the schedule of a reproduction file once (twice with
// -check-determinism). It exits 1 if the run fails, as a sweep does.
func replayFile(f simFlags, stdout, stderr io.Writer) int {
	file, err := os.Open(f.replayPath)
	if err != nil {
		fmt.Fprintln(stderr, "flotilla sim:", err)
		return 1
	}
	rep, err := sim.ReadRepro(file)
	file.Close()
	if err != nil {
		fmt.Fprintf(stderr, "flotilla sim: %s: %v\n", f.replayPath, err)
		return 1
	}
	sys, err := findSystem(rep.System)
	if lo, hi := sys.nodeRange(); err == nil && (rep.Schedule.Nodes < lo || rep.Schedule.Nodes > hi) {
		err = fmt.Errorf("%s needs %d to %d nodes, the file has %d", sys.name, lo, hi, rep.Schedule.Nodes)
	}
	if _, ok := clientKnobs[sys.name]; err == nil && rep.Schedule.Clients > 0 && !ok {
		err = fmt.Errorf("%s has no clients, the file has %d", sys.name, rep.Schedule.Clients)
	}
	if err != nil {
		fmt.Fprintf(stderr, "flotilla sim: %s: %v\n", f.replayPath, err)
		return 1
	}
	sc := rep.Schedule
	fmt.Fprintf(stdout, "replaying %s: system %s, seed %d, %d nodes", f.replayPath, sys.name, sc.Seed, sc.Nodes)
	if sc.Clients > 0 {
		fmt.Fprintf(stdout, ", %d clients", sc.Clients)
	}
	fmt.Fprintf(stdout, ", %d faults, %v\n", len(sc.Faults), sc.Duration)
	build := func() sim.Config { return buildSchedule(sys, sc) }
	var res sim.Result
	if f.determinism {
		if res, err = sim.CheckDeterminism(build); err != nil {
			fmt.Fprintln(stdout, "FAIL:", err)
			return 1
		}
		fmt.Fprintln(stdout, "deterministic: two runs gave the same trace")
	} else {
		cfg := build()
		var trace *os.File
		if f.trace != "" {
			if trace, err = os.Create(f.trace); err != nil {
				fmt.Fprintln(stderr, "flotilla sim:", err)
				return 1
			}
			cfg.Trace = trace
		}
		res = sim.New(cfg).Run()
		if trace != nil {
			if err := trace.Close(); err != nil {
				fmt.Fprintln(stderr, "flotilla sim: trace:", err)
				return 1
			}
			fmt.Fprintf(stdout, "trace written to %s (view it: go run ./cmd/flotilla trace %s -o trace.html)\n", f.trace, f.trace)
		}
	}
	fmt.Fprintf(stdout, "%d steps, %d events, %v virtual; trace hash %016x\n", res.Steps, res.Stats.Events, res.Virtual.Round(time.Millisecond), res.Hash)
	if res.Err == nil {
		if rep.Checker != "" {
			fmt.Fprintf(stdout, "passed: the recorded failure (%s) did not happen\n", rep.Checker)
		} else {
			fmt.Fprintln(stdout, "passed")
		}
		return 0
	}
	fmt.Fprintf(stdout, "FAIL: %v\n", res.Err)
	var fl *sim.Failure
	switch {
	case rep.Checker == "":
	case errors.As(res.Err, &fl) && fl.Checker == rep.Checker:
		fmt.Fprintf(stdout, "reproduced: %s fails, as recorded\n", rep.Checker)
	default:
		fmt.Fprintf(stdout, "a different failure than the recorded one (%s)\n", rep.Checker)
	}
	return 1
}
