package raft

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
)

// swarmRun runs one seed of the swarm: a plan of faults drawn from the
// seed, a workload of proposals, reads and leadership transfers, and a
// liveness phase in which every fault heals and a fresh proposal must
// commit on every node.
func swarmRun(seed uint64, faultPhase time.Duration) error {
	const n = 5
	return planRun(seed, sim.SwarmPlan(seed, sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond}, n), faultPhase)
}

// planRun runs one seed under plan (see swarmRun).
func planRun(seed uint64, plan sim.Plan, faultPhase time.Duration) error {
	const n = 5
	rng := sim.Stream(seed, 99)
	c := &cluster{rec: newRecorder(), n: n}
	rc := testConfig(n)
	rc.PreVote = rng.IntN(4) != 0
	rc.CheckQuorum = rng.IntN(4) != 0
	if rng.IntN(2) == 0 {
		rc.SnapshotEvery = uint64(5 + rng.IntN(60))
	}
	rc.noNoop = rng.IntN(4) == 0
	if rng.IntN(2) == 0 {
		rc.MaxInflight = 1 + rng.IntN(4)
		rc.MaxBatchEntries = 1 + rng.IntN(8)
	}
	sc := sim.Config{Seed: seed, Nodes: n, Codec: Codec{}}
	plan.Apply(&sc, faultPhase)
	c.unwrap = func(m sim.Machine) *Node { return m.(*embedded).n }
	sc.New = func(id sim.NodeID) sim.Machine { return c.newEmbedded(id, rc) }
	sc.Checkers = []sim.Checker{Checker(c.unwrap), c.rec.checker(), {
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
	}}
	var live struct {
		leader sim.NodeID
		term   uint64
		at     time.Duration
	}
	live.leader = None
	sc.Liveness = &sim.Liveness{
		Name:   "leader elected and a new proposal commits everywhere",
		Within: 10 * time.Second,
		Cond: func(s *sim.Sim) bool {
			key := fmt.Sprint("live-", seed)
			if idx, ok := c.rec.index[key]; ok {
				done := true
				for i := range n {
					if r := c.node(sim.NodeID(i)); r == nil || r.Applied() < idx {
						done = false
					}
				}
				if done {
					return true
				}
				// Applied somewhere, not yet everywhere. Without the
				// no-op a new leader commits older entries only with a
				// new one of its own: keep a trickle of proposals.
				key = fmt.Sprint("nudge-", s.Now())
			}
			l := c.leader()
			if l == None {
				return false
			}
			// Like a client: retry at a new leader, or after a while
			// (the leader may have refused it during a transfer).
			if t := c.node(l).Term(); l != live.leader || t != live.term || s.Now()-live.at > 500*time.Millisecond {
				live.leader, live.term, live.at = l, t, s.Now()
				s.Inject(l, Propose{ID: 1 << 40, Data: []byte(key)})
			}
			return false
		},
	}
	c.s = sim.New(sc)
	// Workload: proposals to random nodes (only the leader accepts), with
	// some reads and leadership transfers mixed in.
	id := uint64(0)
	for at := time.Duration(0); at < faultPhase; at += time.Duration(1+rng.IntN(8)) * time.Millisecond {
		to := sim.NodeID(rng.IntN(n))
		id++
		switch k := rng.IntN(100); {
		case k < 85:
			c.s.InjectAt(at, to, Propose{ID: id, Data: fmt.Appendf(nil, "p%d", id)})
		case k < 97:
			c.s.InjectAt(at, to, Read{ID: id})
		default:
			c.s.InjectAt(at, to, TransferLeader{To: sim.NodeID(rng.IntN(n))})
		}
	}
	res := c.s.Run()
	if res.Err != nil {
		return fmt.Errorf("%w\n    nodes: %s\n    plan: %v\n    raft: prevote=%v checkquorum=%v noNoop=%v snapshotEvery=%d inflight=%d batch=%d",
			res.Err, c.describe(), plan, rc.PreVote, rc.CheckQuorum, rc.noNoop, rc.SnapshotEvery, rc.MaxInflight, rc.MaxBatchEntries)
	}
	if c.rec.count == 0 {
		return fmt.Errorf("nothing was ever applied")
	}
	if testing.Verbose() && simtest.Single() {
		fmt.Printf("seed %d: %d steps, %v virtual, %d applies, %d reads served, stats %+v\n    plan: %v\n",
			seed, res.Steps, res.Virtual, c.rec.count, c.rec.reads, res.Stats, plan)
	}
	return nil
}

// TestSimSwarm is the swarm sweep: `go test ./raft -run Sim` runs the
// CI-sized set of seeds, `-seeds=100000` a long one, `-seed=N` one seed.
func TestSimSwarm(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	simtest.Sweep(t, seeds, func(seed uint64) error { return swarmRun(seed, 5*time.Second) })
}

// TestSimCrashStorm sweeps a harsher plan than the swarm draws: crashes
// (some tearing the journal tail), partitions and one-way cuts every
// ~150ms, with short election timeouts, so that nodes often crash right
// after voting or acknowledging and elections overlap with restarts.
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
