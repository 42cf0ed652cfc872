// Package raftbench holds the benchmark of the standard Raft simulation
// scenario. It is a package of its own so that its test binary links only
// raft and sim: the raft package's own tests link a property-testing
// library whose tables keep about 1 MB live from start-up, and with a live
// heap that small the collector runs at its minimum goal (4 MB), so that
// megabyte alone makes it run a third more often and costs the benchmark
// about 6% of its instructions. A program that embeds the simulator has its
// own heap; this one has none but the scenario's.
package raftbench

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// BenchmarkSimStandard runs the standard scenario — 5 nodes, heartbeat
// 50ms, election timeout 150–300ms, 100 proposals per virtual second, 1ms
// delay with 1ms jitter, 1% loss — for 10 virtual seconds per iteration and
// reports virtual seconds simulated per wall second. "plain" runs the
// machines alone; "codec+checkers" also round-trips every message through
// the codec and runs raft.Checker after every event.
func BenchmarkSimStandard(b *testing.B) {
	for _, mode := range []string{"plain", "codec+checkers"} {
		b.Run(mode, func(b *testing.B) {
			var virtual time.Duration
			var events uint64
			value := []byte("benchmark-value") // the clients' data, shared: entries are immutable
			for i := 0; i < b.N; i++ {
				c := newCluster(uint64(i+1), mode != "plain")
				start := c.s.Now()
				for range 1000 {
					if l := c.leader(); l >= 0 {
						c.nextID++
						c.s.Inject(l, raft.Propose{ID: c.nextID, Data: value})
					}
					if err := c.s.RunFor(10 * time.Millisecond); err != nil {
						b.Fatal(err)
					}
				}
				virtual += c.s.Now() - start
				events += c.s.Steps()
				if commit := c.maxCommit(); commit < 900 {
					b.Fatalf("only %d entries committed of 1000 proposed", commit)
				}
			}
			b.ReportMetric(virtual.Seconds()/b.Elapsed().Seconds(), "virtual-s/s")
			b.ReportMetric(float64(events)/virtual.Seconds(), "events/virtual-s")
		})
	}
}

// cluster is the scenario's five replicas in one simulation.
type cluster struct {
	s      *sim.Sim
	nodes  []*raft.Node // each node's latest machine
	nextID uint64
}

func newCluster(seed uint64, checked bool) *cluster {
	const n = 5
	c := &cluster{nodes: make([]*raft.Node, n)}
	rc := raft.Config{
		Peers:              make([]sim.NodeID, n),
		HeartbeatInterval:  50 * time.Millisecond,
		ElectionTimeoutMin: 150 * time.Millisecond,
		ElectionTimeoutMax: 300 * time.Millisecond,
		PreVote:            true,
		CheckQuorum:        true,
	}
	for i := range rc.Peers {
		rc.Peers[i] = sim.NodeID(i)
	}
	sc := sim.Config{
		Seed:    seed,
		Nodes:   n,
		Network: sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond, Loss: 0.01},
		New: func(id sim.NodeID) sim.Machine {
			cfg := rc
			cfg.NewApp = func() raft.Application { return &countingApp{} }
			c.nodes[id] = raft.New(id, cfg)
			return c.nodes[id]
		},
	}
	if checked {
		sc.Codec = raft.Codec{}
		sc.Checkers = []sim.Checker{raft.Checker(nil)}
	}
	c.s = sim.New(sc)
	return c
}

// leader returns the leader with the highest term, or -1 if there is none.
func (c *cluster) leader() sim.NodeID {
	best, term := sim.NodeID(-1), uint64(0)
	for i, r := range c.nodes {
		if r.Role() == raft.Leader && r.Term() >= term {
			best, term = sim.NodeID(i), r.Term()
		}
	}
	return best
}

func (c *cluster) maxCommit() uint64 {
	m := uint64(0)
	for _, r := range c.nodes {
		m = max(m, r.Commit())
	}
	return m
}

// countingApp is the replicated application: it counts what it applies.
type countingApp struct{ n uint64 }

func (a *countingApp) Apply(uint64, []byte) { a.n++ }
func (a *countingApp) Snapshot() []byte     { return fmt.Appendf(nil, "%d", a.n) }
func (a *countingApp) Restore(b []byte)     { fmt.Sscan(string(b), &a.n) }
