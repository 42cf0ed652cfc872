package trafficsim_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
	tf "github.com/flotilla-sim/flotilla/trafficfsm"
	"github.com/flotilla-sim/flotilla/trafficfsm/trafficsim"
)

// sweepDuration is the fault phase of the sweeps: long enough for several
// cycles and fault episodes, short enough for CI.
const sweepDuration = 5 * time.Minute

// run runs cfg and, for every eighth seed, checks that it is deterministic.
func run(seed uint64, build func() sim.Config) error {
	cfg := build()
	res := sim.New(cfg).Run()
	if res.Err != nil {
		return fmt.Errorf("net[%v] drift %v, %d faults: %w", cfg.Network, cfg.DriftPPM, len(cfg.Faults), res.Err)
	}
	if seed%8 == 1 || simtest.Single() {
		if _, err := sim.CheckDeterminism(build); err != nil {
			return err
		}
	}
	return nil
}

// The standard scenario under the swarm's per-seed fault mixes.
func TestScenarioSwarm(t *testing.T) {
	simtest.Sweep(t, 64, func(seed uint64) error {
		return run(seed, func() sim.Config {
			return trafficsim.Scenario(seed, trafficsim.Nodes, sim.SwarmPlan(seed, trafficsim.BaseNetwork, trafficsim.Nodes), sweepDuration)
		})
	})
}

// The standard scenario with every fault on.
func TestScenarioAllFaults(t *testing.T) {
	simtest.Sweep(t, 32, func(seed uint64) error {
		return run(seed, func() sim.Config {
			return trafficsim.Scenario(seed, trafficsim.Nodes, sim.AllFaults(trafficsim.BaseNetwork, trafficsim.Nodes), sweepDuration)
		})
	})
}

// The scenario aims node faults at the controller only, leaves clogs out,
// and keeps the plan's network, drift and sync latency.
func TestScenarioMapsPlan(t *testing.T) {
	kinds := map[sim.FaultKind]int{}
	for seed := range uint64(50) {
		plan := sim.AllFaults(trafficsim.BaseNetwork, trafficsim.Nodes)
		cfg := trafficsim.Scenario(seed, trafficsim.Nodes, plan, 10*time.Minute)
		if cfg.Nodes != trafficsim.Nodes || cfg.Network != plan.Network || cfg.SyncLatency != plan.SyncLatency ||
			fmt.Sprint(cfg.DriftPPM) != fmt.Sprint(plan.DriftPPM) || cfg.Duration != 10*time.Minute {
			t.Fatalf("seed %d: config %+v does not carry plan %v", seed, cfg, plan)
		}
		for _, f := range cfg.Faults {
			kinds[f.Kind]++
			switch f.Kind {
			case sim.FaultClog:
				t.Fatalf("seed %d: clog %v in the schedule", seed, f)
			case sim.FaultCrash, sim.FaultCrashTorn, sim.FaultRestart, sim.FaultPause, sim.FaultResume:
				if f.Node != tf.ControllerID {
					t.Fatalf("seed %d: %v aims at a node other than the controller", seed, f)
				}
			}
		}
	}
	for _, k := range []sim.FaultKind{sim.FaultPartition, sim.FaultBlock, sim.FaultCrash, sim.FaultPause} {
		if kinds[k] == 0 {
			t.Errorf("no %v in 50 seeds of AllFaults: %v", k, kinds)
		}
	}
}

// A schedule rebuilt the way flotilla sim replays and shrinks one — the
// scenario built for a bare plan, then the schedule's network, drift and
// faults put in its place — is judged by what actually runs: the slowest
// drift the simulator allows and a long controller pause stay excused.
func TestScenarioRebuiltSchedule(t *testing.T) {
	simtest.Sweep(t, 16, func(seed uint64) error {
		build := func() sim.Config {
			cfg := trafficsim.Scenario(seed, trafficsim.Nodes, sim.Plan{Network: trafficsim.BaseNetwork}, 0)
			sc := sim.Schedule{
				Seed: seed, Nodes: trafficsim.Nodes, Duration: 10 * time.Minute,
				Network:  sim.Network{Delay: 50 * time.Millisecond, Jitter: 50 * time.Millisecond, Loss: 0.2, Reorder: 0.3},
				DriftPPM: []int32{-100_000, 100_000, -100_000, 100_000},
				Faults: []sim.Fault{
					{At: time.Minute, Kind: sim.FaultPause, Node: tf.ControllerID},
					{At: 3 * time.Minute, Kind: sim.FaultResume, Node: tf.ControllerID},
					{At: 4 * time.Minute, Kind: sim.FaultPartition, Side: 1},
					{At: 5 * time.Minute, Kind: sim.FaultHeal},
					{At: 6 * time.Minute, Kind: sim.FaultCrash, Node: tf.ControllerID},
					{At: 7 * time.Minute, Kind: sim.FaultRestart, Node: tf.ControllerID},
				},
			}
			sc.Apply(&cfg)
			return cfg
		}
		return run(seed, build)
	})
}

// A seed's run fails when the controller misbehaves: here a controller
// whose repairs to the East-West light are clogged for minutes while a
// rogue green shows.
func TestScenarioCatchesUnrepairedConflict(t *testing.T) {
	cfg := trafficsim.Scenario(1, trafficsim.Nodes, sim.Plan{Network: trafficsim.BaseNetwork}, 3*time.Minute)
	s := sim.New(cfg)
	if err := s.RunFor(50 * time.Second); err != nil { // NS green
		t.Fatal(err)
	}
	s.Clog(tf.ControllerID, tf.EWLightID)
	s.Inject(tf.EWLightID, tf.Green)
	res := s.Run()
	var f *sim.Failure
	if !errors.As(res.Err, &f) || f.Checker != "lights conflict" {
		t.Fatalf("run ended with %v, want a lights conflict failure", res.Err)
	}
}

func TestScenarioWantsFourNodes(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Scenario accepted 5 nodes")
		}
	}()
	trafficsim.Scenario(1, 5, sim.Plan{}, time.Minute)
}
