package raftsim

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
)

// sweepRun is one seed of the sweep: 3, 5 or 7 replicas (by seed) under a
// plan that is drawn from the seed (swarm) or has every fault on.
func sweepRun(seed uint64, phase time.Duration) error {
	nodes, plan, kind := sweepPlan(seed)
	res := sim.New(Scenario(seed, nodes, plan, phase)).Run()
	if res.Err != nil {
		return fmt.Errorf("%d nodes, %s plan %v: %w", nodes, kind, plan, res.Err)
	}
	if testing.Verbose() && simtest.Single() {
		fmt.Printf("seed %d: %d nodes, %s plan %v\n    %d steps, %v virtual, stats %+v\n",
			seed, nodes, kind, plan, res.Steps, res.Virtual, res.Stats)
	}
	return nil
}

// sweepPlan draws seed's cluster size and fault plan for the sweep: 3, 5
// or 7 replicas, and a swarm plan or one with every fault on.
func sweepPlan(seed uint64) (nodes int, plan sim.Plan, kind string) {
	nodes = []int{3, 5, 7}[seed%3]
	if seed%2 == 0 {
		return nodes, sim.AllFaults(BaseNetwork, nodes), "all"
	}
	return nodes, sim.SwarmPlan(seed, BaseNetwork, nodes), "swarm"
}

// TestSimSweep sweeps Scenario: `go test ./raft/raftsim -run Sim` runs the
// CI-sized set, -seeds=N a longer one, -seed=N replays one seed.
func TestSimSweep(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	simtest.Sweep(t, seeds, func(seed uint64) error { return sweepRun(seed, 3*time.Second) })
}

// TestWorkloadReachesReplicas checks the client node drives the cluster: on
// a healthy network most proposals commit, reads are served, and the
// client is never crashed by a plan that targets every node.
func TestWorkloadReachesReplicas(t *testing.T) {
	plan := sim.AllFaults(BaseNetwork, 5)
	cfg := Scenario(7, 5, sim.Plan{Network: BaseNetwork}, 2*time.Second)
	s := sim.New(cfg)
	if res := s.Run(); res.Err != nil {
		t.Fatal(res.Err)
	}
	r := Replica(s, 0)
	if r == nil {
		t.Fatal("replica 0 down on a healthy network")
	}
	// ~2s of one call per 4.5ms, 85% proposals, most at a follower: at
	// least a tenth must commit.
	if r.Applied() < 40 {
		t.Errorf("replica 0 applied only %d entries", r.Applied())
	}
	if Replica(s, 5) != nil {
		t.Error("Replica returned a node for the client")
	}

	cfg = Scenario(7, 5, plan, 2*time.Second)
	nodeFaults := 0
	for _, f := range cfg.Faults {
		switch f.Kind {
		case sim.FaultPartition, sim.FaultBlock, sim.FaultClog, sim.FaultHeal:
		default:
			nodeFaults++
			if f.Node == 5 {
				t.Fatalf("fault %v targets the client", f)
			}
		}
	}
	if nodeFaults == 0 {
		t.Fatal("the all-faults plan crashed or paused nothing: the check proves little")
	}
}

// TestDeterministic checks the same seed gives the same run.
func TestDeterministic(t *testing.T) {
	run := func() sim.Result {
		return sim.New(Scenario(3, 5, sim.AllFaults(BaseNetwork, 5), time.Second)).Run()
	}
	a, b := run(), run()
	if a.Err != nil || a.Hash != b.Hash || a.Steps != b.Steps || a.Virtual != b.Virtual || a.Stats != b.Stats {
		t.Errorf("runs differ or fail: %+v / %+v", a, b)
	}
}

// TestSimClients sweeps a few seeds with three clients under every fault:
// their reads must not be confused with one another at a replica.
func TestSimClients(t *testing.T) {
	simtest.Sweep(t, 6, func(seed uint64) error {
		res := sim.New(ScenarioClients(seed, 3, 3, sim.AllFaults(BaseNetwork, 3), 2*time.Second)).Run()
		return res.Err
	})
}

// NemesisScenario runs clean on a correct raft, and its nemesis acts.
func TestNemesisScenario(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		cfg, nem := NemesisScenario(seed, 5, sim.Plan{Network: BaseNetwork}, 3*time.Second)
		if res := sim.New(cfg).Run(); res.Err != nil {
			t.Fatalf("seed %d: %v\n    nemesis: %v", seed, res.Err, nem)
		}
		if nem.Stats().Episodes == 0 {
			t.Errorf("seed %d: the nemesis started no episode", seed)
		}
	}
}

// TestSimSharedMessages runs seeds of the sweep without the codec, so that
// messages share the sender's memory (AppendEntries carry slices of the
// leader's log, one AppendEntries may go to several followers) as they do
// in a plain simulation, and checks each run passes and traces exactly as
// the same seed with every message copied through the codec: a message
// changed by its sender after it was sent would make them differ.
func TestSimSharedMessages(t *testing.T) {
	seeds := 30
	if testing.Short() {
		seeds = 6
	}
	simtest.Sweep(t, seeds, func(seed uint64) error {
		nodes, plan, _ := sweepPlan(seed)
		cfg := Scenario(seed, nodes, plan, 3*time.Second)
		copied := sim.New(cfg).Run()
		cfg = Scenario(seed, nodes, plan, 3*time.Second)
		cfg.Codec = nil
		shared := sim.New(cfg).Run()
		switch {
		case shared.Err != nil:
			return fmt.Errorf("without the codec: %w", shared.Err)
		case copied.Err != nil:
			return fmt.Errorf("with the codec: %w", copied.Err)
		case shared.Hash != copied.Hash || shared.Steps != copied.Steps:
			return fmt.Errorf("traces differ with and without the codec: hash %016x, %d steps against %016x, %d steps",
				shared.Hash, shared.Steps, copied.Hash, copied.Steps)
		}
		return nil
	})
}
