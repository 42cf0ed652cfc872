package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
)

func runSim(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var f simFlags
	f.system, f.faults, f.duration, f.workers, f.seeds, f.nodes = "pingpong", "swarm", 2*time.Second, 2, 20, 5
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "-system":
			f.system = args[i+1]
		case "-seed":
			fmt.Sscan(args[i+1], &f.seed)
			f.seedSet = true
		case "-check-determinism":
			f.determinism = true
		case "-seeds":
			fmt.Sscan(args[i+1], &f.seeds)
		case "-nodes":
			fmt.Sscan(args[i+1], &f.nodes)
		case "-clients":
			fmt.Sscan(args[i+1], &f.clients)
		case "-faults":
			f.faults = args[i+1]
		case "-duration":
			f.duration, _ = time.ParseDuration(args[i+1])
		case "-shrink-dir":
			f.shrink, f.shrinkDir = true, args[i+1]
		}
	}
	if f.shrinkMax == 0 {
		f.shrinkMax, f.shrinkRuns = 3, 500
	}
	sys, err := findSystem(f.system)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := sweep(sys, f, &out, &errOut)
	return code, out.String()
}

func TestSimSweepSummary(t *testing.T) {
	code, out := runSim(t)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"seeds: 20 run, 0 failed", "events/s", "× real time"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

// The nemesis system sweeps clean on the real raft, every size it allows.
func TestSimRaftNemesis(t *testing.T) {
	for _, n := range []string{"3", "5"} {
		code, out := runSim(t, "-system", "raft-nemesis", "-faults", "none", "-nodes", n, "-seeds", "10", "-duration", "3s")
		if code != 0 || !strings.Contains(out, "seeds: 10 run, 0 failed") {
			t.Fatalf("%s nodes: exit %d:\n%s", n, code, out)
		}
	}
}

func TestSimSingleSeedPrintsStableHash(t *testing.T) {
	_, a := runSim(t, "-seed", "42")
	_, b := runSim(t, "-seed", "42", "-check-determinism", "x")
	line := func(s string) string {
		i := strings.Index(s, "trace hash ")
		if i < 0 {
			t.Fatalf("no trace hash in:\n%s", s)
		}
		return s[i:]
	}
	if line(a) != line(b) {
		t.Errorf("hash differs between runs: %q vs %q", line(a), line(b))
	}
}

// A system whose checker always fails must make the sweep exit 1 and
// print a replay command per failing seed.
func TestSimFailureExitsOneWithReplay(t *testing.T) {
	broken := system{name: "broken", defaultNodes: 2, minNodes: 1, base: pingpong.BaseNetwork,
		scenario: func(seed uint64, n int, p sim.Plan, d time.Duration) sim.Config {
			cfg := pingpong.Scenario(seed, n, p, d)
			cfg.Checkers = append(cfg.Checkers, sim.Checker{Name: "always", End: func(*sim.Sim) error {
				return fmt.Errorf("deliberate")
			}})
			return cfg
		}}
	saved := systemList
	systemList = append([]system{broken}, saved...)
	defer func() { systemList = saved }()
	code, out := runSim(t, "-system", "broken")
	if code != 1 {
		t.Fatalf("exit %d; want 1", code)
	}
	if !strings.Contains(out, "replay: go run ./cmd/flotilla sim -system broken") || !strings.Contains(out, "always") {
		t.Errorf("output lacks the replay command or the checker name:\n%s", out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"sim", "-system", "nope"}, {"sim", "-seeds", "0"}, {"sim", "extra"}} {
		if code := run(args); code != 2 {
			t.Errorf("flotilla %q exited %d; want 2", args, code)
		}
	}
}

// A bad flag or value gets a one-line error and the usage, which lists
// the systems, on stderr; -h gets the usage and exit 0.
func TestSimUsageGoesToStderr(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"-system", "nope"}, 2, "flotilla sim: "},
		{[]string{"-nodes", "x"}, 2, "invalid value"},
		{[]string{"-h"}, 0, ""},
	} {
		var out, errOut bytes.Buffer
		code := simRun(tc.args, &out, &errOut)
		if code != tc.code || !strings.Contains(errOut.String(), tc.err) ||
			!strings.Contains(errOut.String(), "usage: flotilla sim") || !strings.Contains(errOut.String(), "raft") || out.Len() != 0 {
			t.Errorf("flotilla sim %q: exit %d, stdout %q, stderr:\n%s", tc.args, code, out.String(), errOut.String())
		}
	}
}

// withSystem registers a test system for the duration of a test.
func withSystem(t *testing.T, sys system) {
	t.Helper()
	saved := systemList
	systemList = append([]system{sys}, saved...)
	t.Cleanup(func() { systemList = saved })
}

// planted is pingpong with a planted bug: its checker fails once node 2
// has crashed and node 0 has been paused, in either order.
var planted = system{name: "planted", defaultNodes: 5, minNodes: 1, base: pingpong.BaseNetwork,
	scenario: func(seed uint64, n int, p sim.Plan, d time.Duration) sim.Config {
		cfg := pingpong.Scenario(seed, n, p, d)
		var crashed, paused bool
		cfg.Checkers = append(cfg.Checkers, sim.Checker{Name: "planted", Step: func(s *sim.Sim) error {
			if s.Nodes() < 3 {
				return nil
			}
			crashed = crashed || !s.Up(2)
			paused = paused || s.Paused(0)
			if crashed && paused {
				return fmt.Errorf("node 2 crashed and node 0 paused")
			}
			return nil
		}})
		return cfg
	}}

func replay(t *testing.T, path string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := replayFile(simFlags{replayPath: path}, &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestSimShrinkWritesAReplayableMinimalSchedule(t *testing.T) {
	withSystem(t, planted)
	dir := t.TempDir()
	code, out := runSim(t, "-system", "planted", "-seeds", "10", "-faults", "crash,pause,partition,loss", "-duration", "15s", "-shrink-dir", dir)
	if code != 1 {
		t.Fatalf("exit %d; want 1:\n%s", code, out)
	}
	paths := regexp.MustCompile(`replay: go run ./cmd/flotilla sim -replay (\S+)`).FindAllStringSubmatch(out, -1)
	if len(paths) == 0 {
		t.Fatalf("no reproduction printed:\n%s", out)
	}
	t.Logf("%s", out)
	for _, m := range paths {
		path := m[1]
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := sim.ReadRepro(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if rep.System != "planted" || rep.Checker != "planted" {
			t.Errorf("%s: system %q checker %q", path, rep.System, rep.Checker)
		}
		if n := len(rep.Schedule.Faults); n > 2 || rep.Schedule.Nodes != 3 || rep.Schedule.Network.Loss != 0 {
			t.Errorf("%s not minimal: %d faults %v, %d nodes, loss %v", path, n, rep.Schedule.Faults, rep.Schedule.Nodes, rep.Schedule.Network.Loss)
		}
		code, out := replay(t, path)
		if code != 1 || !strings.Contains(out, "reproduced: planted fails, as recorded") {
			t.Errorf("replaying %s: exit %d:\n%s", path, code, out)
		}
	}

	// Without its faults the schedule passes, and replay says so.
	path := paths[0][1]
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	calm := regexp.MustCompile(`(?s)"faults": \[.*?\n  \]`).ReplaceAll(b, []byte(`"faults": []`))
	calmPath := filepath.Join(t.TempDir(), "calm.json")
	if err := os.WriteFile(calmPath, calm, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := replay(t, calmPath); code != 0 || !strings.Contains(out, "passed: the recorded failure (planted) did not happen") {
		t.Errorf("replaying without faults: exit %d:\n%s", code, out)
	}
}

func TestSimReplayRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"garbage.json": "{",
		"system.json":  `{"system":"nope","seed":1,"nodes":2,"duration":"1s","network":{},"faults":[]}`,
		"clients.json": `{"system":"pingpong","seed":1,"nodes":2,"clients":3,"duration":"1s","network":{},"faults":[]}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if code, out := replay(t, path); code != 1 || !strings.Contains(out, path) {
			t.Errorf("%s: exit %d; want 1 and an error naming the file:\n%s", name, code, out)
		}
	}
	if code, _ := replay(t, filepath.Join(dir, "missing.json")); code != 1 {
		t.Errorf("missing file: exit %d; want 1", code)
	}
}

// crowd is pingpong whose last nodes are "clients": its checker fails at
// the end of any run with two clients or more.
func crowdKnob(t *testing.T) {
	withSystem(t, system{name: "crowd", defaultNodes: 3, minNodes: 1, base: pingpong.BaseNetwork, scenario: pingpong.Scenario})
	clientKnobs["crowd"] = clientKnob{defaultClients: 2, minClients: 0,
		scenario: func(seed uint64, n, clients int, p sim.Plan, d time.Duration) sim.Config {
			cfg := pingpong.Scenario(seed, n+clients, p, d)
			cfg.Checkers = append(cfg.Checkers, sim.Checker{Name: "crowd", End: func(*sim.Sim) error {
				if clients >= 2 {
					return fmt.Errorf("%d clients", clients)
				}
				return nil
			}})
			return cfg
		}}
	t.Cleanup(func() { delete(clientKnobs, "crowd") })
}

func TestSimShrinkCutsClients(t *testing.T) {
	crowdKnob(t)
	dir := t.TempDir()
	code, out := runSim(t, "-system", "crowd", "-seed", "3", "-nodes", "3", "-clients", "6", "-faults", "crash", "-duration", "3s", "-shrink-dir", dir)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !strings.Contains(out, "-clients 6") {
		t.Errorf("replay command lacks -clients:\n%s", out)
	}
	path := filepath.Join(dir, "repro-crowd-seed3.json")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	defer f.Close()
	rep, err := sim.ReadRepro(f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Schedule.Clients != 2 || rep.Schedule.Nodes != 1 || len(rep.Schedule.Faults) != 0 {
		t.Errorf("shrunk to %d clients, %d nodes, faults %v; want 2 clients, 1 node, no faults", rep.Schedule.Clients, rep.Schedule.Nodes, rep.Schedule.Faults)
	}
	if !strings.Contains(out, "6 -> 2 clients") {
		t.Errorf("report lacks the client cut:\n%s", out)
	}
}

func TestSimClientsFlag(t *testing.T) {
	crowdKnob(t)
	if code := run([]string{"sim", "-system", "pingpong", "-clients", "3"}); code != 2 {
		t.Errorf("-clients on a system without clients: exit %d; want 2", code)
	}
	if code := run([]string{"sim", "-system", "crowd", "-clients", "1", "-seeds", "3", "-duration", "1s"}); code != 0 {
		t.Errorf("-clients 1 on crowd: exit %d; want 0", code)
	}
	if code := run([]string{"sim", "-system", "crowd", "-seeds", "2", "-duration", "1s"}); code != 1 {
		t.Errorf("crowd with its default 2 clients: exit %d; want 1", code)
	}
	if code := run([]string{"sim", "-replay", "x.json", "-shrink"}); code != 2 {
		t.Errorf("-replay with -shrink: exit %d; want 2", code)
	}
}

// A seed's recorded schedule, rebuilt, is the very same run: shrinking
// starts from the failure the sweep saw.
func TestRecordedScheduleReplaysTheRun(t *testing.T) {
	crowdKnob(t)
	for _, tc := range []struct {
		system         string
		nodes, clients int
	}{{"pingpong", 5, 0}, {"crowd", 3, 1}} {
		sys, err := findSystem(tc.system)
		if err != nil {
			t.Fatal(err)
		}
		f := simFlags{system: tc.system, nodes: tc.nodes, clients: tc.clients, faults: "swarm", duration: 3 * time.Second}
		for seed := uint64(1); seed <= 5; seed++ {
			direct := sim.New(f.config(sys, seed)).Run()
			sc := f.schedule(sys, seed)
			rebuilt := sim.New(buildSchedule(sys, sc)).Run()
			if direct.Hash != rebuilt.Hash || direct.Steps != rebuilt.Steps {
				t.Errorf("%s seed %d: run %016x (%d steps), rebuilt from its schedule %016x (%d steps)",
					tc.system, seed, direct.Hash, direct.Steps, rebuilt.Hash, rebuilt.Steps)
			}
			if sc.Nodes != tc.nodes || sc.Clients != tc.clients {
				t.Errorf("%s: schedule has %d nodes %d clients", tc.system, sc.Nodes, sc.Clients)
			}
		}
	}
}
