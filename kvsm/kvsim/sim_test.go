package kvsim

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
)

var (
	htmlDir = flag.String("kvhtml", "", "write porcupine's HTML view of a failing history to this directory (default: the temp dir)")
	phase   = flag.Duration("kvphase", 3*time.Second, "length of the fault phase of each sweep seed")
)

func TestMain(m *testing.M) {
	flag.Parse()
	HTMLDir = *htmlDir
	os.Exit(m.Run())
}

// sweepRun is one seed of the sweep: 3, 5 or 7 replicas (by seed), five
// clients, a fault plan that is either drawn from the seed (swarm) or has
// every fault on, a fault phase, healing with a liveness deadline, and the
// porcupine check of the whole history.
func sweepRun(seed uint64, phase time.Duration) (sim.Result, *Cluster, error) {
	nodes := []int{3, 5, 7}[seed%3]
	plan := sim.SwarmPlan(seed, BaseNetwork, nodes)
	kind := "swarm"
	if seed%2 == 0 {
		plan, kind = sim.AllFaults(BaseNetwork, nodes), "all"
	}
	c := New(Options{Seed: seed, Nodes: nodes})
	c.ApplyPlan(plan, phase)
	s := sim.New(c.Config)
	res := s.Run()
	if res.Err != nil {
		return res, c, fmt.Errorf("%d nodes, %s plan %v: %w", nodes, kind, plan, res.Err)
	}
	if c.Tracker.Total() < 20 {
		return res, c, fmt.Errorf("%d nodes: only %d calls completed: the run proves little", nodes, c.Tracker.Total())
	}
	if testing.Verbose() && simtest.Single() {
		fmt.Printf("seed %d: %d nodes, %s plan %v\n    %d steps, %v virtual, %d calls completed, stats %+v\n",
			seed, nodes, kind, plan, res.Steps, res.Virtual, c.Tracker.Total(), res.Stats)
	}
	return res, c, nil
}

// TestSimSweep is the fault sweep: `go test ./kvsm/kvsim -run Sim` runs the
// CI-sized set, -seeds=N a longer one, -seed=N replays one seed.
func TestSimSweep(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 6
	}
	simtest.Sweep(t, seeds, func(seed uint64) error {
		_, _, err := sweepRun(seed, *phase)
		return err
	})
}

// TestSimDeterminism runs one seed of the standard scenario twice and
// requires identical traces.
func TestSimDeterminism(t *testing.T) {
	res, err := sim.CheckDeterminism(func() sim.Config {
		return Scenario(7, 5, sim.AllFaults(BaseNetwork, 5), 2*time.Second)
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Err != nil {
		t.Fatal(res.Err)
	}
}

// staleReader wraps a replica with a bug: any replica, leader or not,
// answers gets from its own applied state. Partitioned followers then serve
// stale values, which the linearizability check must catch.
type staleReader struct{ *kvsm.Replica }

func (m staleReader) Step(ev sim.Event, out *sim.Effects) {
	if req, ok := ev.Msg.(kvsm.Request); ok && ev.Kind == sim.EventMessage && req.Op == kvsm.OpGet {
		out.Send(ev.From, m.State().Store().Apply(req))
		return
	}
	m.Replica.Step(ev, out)
}

// TestSimCatchesStaleReads proves the checker can fail: with the stale
// reader bug, some seed of a partition-heavy plan yields a history porcupine
// rejects, and the HTML view is written where the error says.
func TestSimCatchesStaleReads(t *testing.T) {
	HTMLDir = t.TempDir()
	defer func() { HTMLDir = *htmlDir }()
	for seed := uint64(1); seed <= 20; seed++ {
		c := New(Options{Seed: seed, Nodes: 3, Clients: 4, Keys: 2})
		inner := c.Config.New
		c.Config.New = func(id sim.NodeID) sim.Machine {
			m := inner(id)
			if r, ok := m.(*kvsm.Replica); ok {
				return staleReader{r}
			}
			return m
		}
		plan, _ := sim.ParsePlan("partition", seed, BaseNetwork, 3)
		c.ApplyPlan(plan, 3*time.Second)
		res := sim.New(c.Config).Run()
		if errors.Is(res.Err, ErrNotLinearizable) {
			path := HTMLPath(seed, 3)
			if _, err := os.Stat(path); err != nil {
				t.Fatalf("seed %d: violation reported (%v) but no HTML view: %v", seed, res.Err, err)
			}
			if filepath.Dir(path) != HTMLDir {
				t.Fatalf("HTML view at %s, not in %s", path, HTMLDir)
			}
			t.Logf("seed %d: caught: %v", seed, res.Err)
			return
		}
		if res.Err != nil {
			t.Fatalf("seed %d: unexpected failure: %v", seed, res.Err)
		}
	}
	t.Fatal("20 seeds of partitions with stale follower reads, and porcupine never objected")
}
