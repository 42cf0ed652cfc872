package main

import (
	"bytes"
	"fmt"
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
		}
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
