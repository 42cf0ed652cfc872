package raft_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/raft/raftsim"
	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
)

// planRun runs one seed of raftsim's scenario with five replicas under
// plan for faultPhase, with the leader's no-op turned off in a quarter of
// the seeds (so runs reach the situations of the paper's Figure 8) and a
// budget of events on top of raftsim's checkers.
func planRun(seed uint64, plan sim.Plan, faultPhase time.Duration) error {
	const n = 5
	noNoop := sim.Stream(seed, 97).IntN(4) == 0
	cfg := raftsim.ScenarioTuned(seed, n, 1, plan, faultPhase, func(c *raft.Config) { raft.SetNoNoop(c, noNoop) })
	cfg.Checkers = append(cfg.Checkers, sim.Checker{
		// A healthy cluster handles ~1,000-2,000 events per virtual
		// second here; a message storm (say a leader and a follower
		// bouncing rejections) is a bug even if it stays safe.
		Name: "event budget",
		Step: func(s *sim.Sim) error {
			if limit := 20_000 * (1 + uint64(s.Now()/time.Second)); s.Steps() > limit {
				return fmt.Errorf("%d events by %v: message storm", s.Steps(), s.Now())
			}
			return nil
		},
	})
	s := sim.New(cfg)
	res := s.Run()
	if res.Err != nil {
		return fmt.Errorf("%w\n    nodes: %s\n    plan: %v\n    noNoop=%v", res.Err, describe(s, n), plan, noNoop)
	}
	if testing.Verbose() && simtest.Single() {
		fmt.Printf("seed %d: %d steps, %v virtual, stats %+v\n    plan: %v\n    nodes: %s\n",
			seed, res.Steps, res.Virtual, res.Stats, plan, describe(s, n))
	}
	return nil
}

// describe summarizes every replica's state for failure messages.
func describe(s *sim.Sim, n int) string {
	var b []byte
	for i := range n {
		r := raftsim.Replica(s, sim.NodeID(i))
		if r == nil {
			b = fmt.Appendf(b, "[%d down] ", i)
			continue
		}
		b = fmt.Appendf(b, "[%d %v t%d lead%d commit%d applied%d last%d snap%d] ", i, r.Role(), r.Term(), r.Leader(), r.Commit(), r.Applied(), r.LastIndex(), r.SnapshotIndex())
	}
	return string(b)
}

// TestSimSwarm is the swarm sweep: a plan of faults drawn from each seed,
// raftsim's workload of proposals, reads and leadership transfers, and its
// liveness phase. `go test ./raft -run Sim` runs the CI-sized set of
// seeds, `-seeds=100000` a long one, `-seed=N` one seed.
func TestSimSwarm(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	simtest.Sweep(t, seeds, func(seed uint64) error {
		return planRun(seed, sim.SwarmPlan(seed, raftsim.BaseNetwork, 5), 5*time.Second)
	})
}

// TestSimCrashStorm sweeps a harsher plan than the swarm draws: crashes
// (some tearing the journal tail), partitions and one-way cuts every
// ~150ms, so that nodes often crash right after voting or acknowledging
// and elections overlap with restarts.
func TestSimCrashStorm(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	simtest.Sweep(t, seeds, func(seed uint64) error {
		plan := sim.Plan{
			Network: sim.Network{Delay: time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.02},
			Faults: sim.FaultConfig{Crashes: true, TornWrites: true, Partitions: true, OneWay: true,
				Every: 150 * time.Millisecond},
			SyncLatency: time.Millisecond,
		}
		return planRun(seed, plan, 3*time.Second)
	})
}
