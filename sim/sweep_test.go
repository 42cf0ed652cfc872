package sim_test

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
	"github.com/flotilla-sim/flotilla/sim/simtest"
)

func scenario(seed uint64) sim.Config {
	return pingpong.Scenario(seed, 5, sim.SwarmPlan(seed, pingpong.BaseNetwork, 5), 10*time.Second)
}

// TestSimPingPong sweeps seeds over the example machine with swarm faults.
// With -seed=N it replays one seed and prints its trace hash, which must be
// the same on every run.
func TestSimPingPong(t *testing.T) {
	simtest.Sweep(t, 500, func(seed uint64) error {
		res := sim.New(scenario(seed)).Run()
		if simtest.Single() {
			t.Logf("seed %d: %d steps, %v virtual, trace hash %016x", seed, res.Steps, res.Virtual, res.Hash)
		}
		return res.Err
	})
}

func TestSimDeterminism(t *testing.T) {
	simtest.Sweep(t, 10, func(seed uint64) error {
		_, err := sim.CheckDeterminism(func() sim.Config { return scenario(seed) })
		return err
	})
}

func TestSimSeedsGiveDifferentSchedules(t *testing.T) {
	seen := map[uint64]uint64{}
	for seed := uint64(1); seed <= 50; seed++ {
		cfg := pingpong.Scenario(seed, 5, sim.Plan{Network: pingpong.BaseNetwork}, 2*time.Second)
		h := sim.New(cfg).Run().Hash
		if prev, ok := seen[h]; ok {
			t.Fatalf("seeds %d and %d produced the same trace hash %016x", prev, seed, h)
		}
		seen[h] = seed
	}
}

// A host that lets messages leave before the journal is durable must be
// caught by the example's checker: this breaks the rule on purpose by
// running the example against a machine that sends first and journals in a
// later event.
func TestSimCatchesSendBeforeDurable(t *testing.T) {
	caught := 0
	for seed := uint64(1); seed <= 100 && caught == 0; seed++ {
		cfg := scenario(seed)
		n := cfg.Nodes
		cfg.New = func(id sim.NodeID) sim.Machine { return &lazyJournal{inner: pingpong.New(n)(id)} }
		if sim.New(cfg).Run().Err != nil {
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("100 seeds never caught a machine that replies before its journal is durable")
	}
}

// lazyJournal defers every journal write by one event, so pings leave before
// their sequence numbers are durable.
type lazyJournal struct {
	inner sim.Machine
	carry [][]byte
}

func (l *lazyJournal) Step(ev sim.Event, out *sim.Effects) {
	l.inner.Step(ev, out)
	late := append([][]byte(nil), out.Appends...)
	out.Appends = append(out.Appends[:0], l.carry...)
	l.carry = late
	out.Snapshot = nil
	if len(out.Sends) > 0 && len(out.Appends) == 0 {
		out.SyncRequest = false
	}
}
