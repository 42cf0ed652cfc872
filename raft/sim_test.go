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
	return run(seed, plan, faultPhase, sim.Stream(seed, 97).IntN(4) == 0, nil)
}

// run is planRun with the no-op setting given, and nem, if not nil,
// driving faults of its own.
func run(seed uint64, plan sim.Plan, faultPhase time.Duration, noNoop bool, nem *raftsim.Nemesis) error {
	const n = 5
	cfg := raftsim.ScenarioTuned(seed, n, 1, plan, faultPhase, func(c *raft.Config) { c.NoLeaderNoop = noNoop })
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
	extra := ""
	if nem != nil {
		cfg.Checkers = append(cfg.Checkers, nem.Hook())
	}
	s := sim.New(cfg)
	res := s.Run()
	if nem != nil {
		extra = fmt.Sprintf("\n    nemesis: %v", nem)
	}
	if res.Err != nil {
		return fmt.Errorf("%w\n    nodes: %s\n    plan: %v\n    noNoop=%v%s", res.Err, describe(s, n), plan, noNoop, extra)
	}
	if testing.Verbose() && simtest.Single() {
		fmt.Printf("seed %d: %d steps, %v virtual, stats %+v\n    plan: %v\n    nodes: %s%s\n",
			seed, res.Steps, res.Virtual, res.Stats, plan, describe(s, n), extra)
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

// TestSimNemesis sweeps raftsim's nemesis: instead of faults at random
// times, each seed's faults are aimed at the situations of the paper's
// Figure 8 (an old-term entry replicated to a quorum by a later leader,
// then overwritten), at voters crashing right after voting, and at
// followers crashing right after their acknowledgments made a commit,
// with the leader's no-op off. It is the sweep that catches committing an
// old-term entry by counting replicas, and the fastest at catching a vote
// or an acknowledgment sent before it is durable (see docs/raft.md).
func TestSimNemesis(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	simtest.Sweep(t, seeds, func(seed uint64) error {
		_, err := nemesisRun(seed)
		return err
	})
}

// nemesisRun runs one seed of TestSimNemesis: a healthy network, a sync
// latency of 1, 2 or 5 ms drawn from the seed (so writes are not durable at
// once), and the nemesis as the only source of faults for 4 s.
func nemesisRun(seed uint64) (raftsim.NemesisStats, error) {
	const phase = 4 * time.Second
	plan := sim.Plan{Network: raftsim.BaseNetwork}
	plan.SyncLatency = []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}[sim.Stream(seed, 98).IntN(3)]
	nem := raftsim.NewNemesis(seed, 5, phase)
	err := run(seed, plan, phase, true, nem)
	return nem.Stats(), err
}

// TestNemesisReachesItsSituations checks the nemesis does what it is for
// on a correct raft: over ten seeds, old-term entries reach a quorum under
// a later leader and are then overwritten by the conflicting leader (legal
// because they were never counted as committed), and voters crash right
// after voting, and followers right after their acknowledgments counted.
func TestNemesisReachesItsSituations(t *testing.T) {
	var tot raftsim.NemesisStats
	for seed := range uint64(10) {
		st, err := nemesisRun(seed + 1)
		if err != nil {
			t.Fatalf("seed %d: %v", seed+1, err)
		}
		tot.Episodes += st.Episodes
		tot.Figure8 += st.Figure8
		tot.Overwrites += st.Overwrites
		tot.VoterCrashes += st.VoterCrashes
		tot.AckCrashes += st.AckCrashes
	}
	t.Logf("%+v", tot)
	if tot.Overwrites < 5 || tot.VoterCrashes < 5 || tot.AckCrashes < 5 {
		t.Errorf("over ten seeds the nemesis reached %+v; want at least 5 overwrites, voter crashes and acknowledgment crashes each", tot)
	}
}

// TestNemesisDeterministic checks a seed with the nemesis replays exactly:
// its choices come from the seed and the cluster's state only.
func TestNemesisDeterministic(t *testing.T) {
	once := func() sim.Result {
		const phase = 2 * time.Second
		cfg := raftsim.ScenarioTuned(5, 5, 1, sim.Plan{Network: raftsim.BaseNetwork, SyncLatency: 2 * time.Millisecond}, phase,
			func(c *raft.Config) { c.NoLeaderNoop = true })
		nem := raftsim.NewNemesis(5, 5, phase)
		cfg.Checkers = append(cfg.Checkers, nem.Hook())
		res := sim.New(cfg).Run()
		if nem.Stats().Episodes == 0 {
			t.Error("the nemesis started no episode")
		}
		return res
	}
	a, b := once(), once()
	if a.Err != nil || a.Hash != b.Hash || a.Steps != b.Steps {
		t.Errorf("runs differ or fail: %+v / %+v", a, b)
	}
}
