// Package raftsim is the standard simulation scenario of Raft alone, as
// swept by `flotilla sim -system raft`: a cluster of raft replicas plus one
// client node that proposes entries, asks for linearizable reads and
// requests leadership transfers on its own timers, under a fault plan.
//
// It is a test harness, not machine code: it runs only in the simulator.
// Everything it does is drawn from the seed, so a seed replays exactly.
package raftsim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// BaseNetwork is the healthy network of the scenario.
var BaseNetwork = sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond}

// livenessID is the proposal ID of the liveness phase's proposals.
const livenessID = 1 << 63

// Scenario is the simulation of one seed: nodes raft replicas (ids
// 0..nodes-1) with settings drawn from the seed (pre-vote, check-quorum,
// snapshots, flow control), and one client (id nodes) that sends proposals,
// reads and leadership transfers to random replicas during the fault phase
// of length d, under plan (crashes and pauses hit replicas only).
//
// Checkers: raft.Checker's safety properties; no two replicas apply
// different data at one index, and each applies in increasing index order;
// every read served is linearizable (the serving replica has applied
// everything committed anywhere when the read arrived). Liveness: once every
// fault heals, a new proposal commits and is applied on every replica
// within 10s.
func Scenario(seed uint64, nodes int, plan sim.Plan, d time.Duration) sim.Config {
	return ScenarioTuned(seed, nodes, 1, plan, d, nil)
}

// ScenarioClients is Scenario with the given number of clients (ids nodes
// to nodes+clients-1), each running the same kind of workload.
func ScenarioClients(seed uint64, nodes, clients int, plan sim.Plan, d time.Duration) sim.Config {
	return ScenarioTuned(seed, nodes, clients, plan, d, nil)
}

// ScenarioTuned is ScenarioClients with tune, if not nil, called on the
// replicas' raft configuration once it is drawn from the seed.
func ScenarioTuned(seed uint64, nodes, clients int, plan sim.Plan, d time.Duration, tune func(*raft.Config)) sim.Config {
	rng := sim.Stream(seed, 99)
	rc := raft.Config{
		Peers:              make([]sim.NodeID, nodes),
		HeartbeatInterval:  50 * time.Millisecond,
		ElectionTimeoutMin: 150 * time.Millisecond,
		ElectionTimeoutMax: 300 * time.Millisecond,
		PreVote:            rng.IntN(4) != 0,
		CheckQuorum:        rng.IntN(4) != 0,
	}
	for i := range rc.Peers {
		rc.Peers[i] = sim.NodeID(i)
	}
	if rng.IntN(2) == 0 {
		rc.SnapshotEvery = uint64(5 + rng.IntN(60))
	}
	if rng.IntN(2) == 0 {
		rc.MaxInflight = 1 + rng.IntN(4)
		rc.MaxBatchEntries = 1 + rng.IntN(8)
	}
	if tune != nil {
		tune(&rc)
	}
	c := &cluster{n: nodes, applied: map[uint64]string{}, index: map[string]uint64{}}
	sc := sim.Config{Seed: seed, Nodes: nodes + clients, Codec: raft.Codec{}}
	plan.Faults.Targets = rc.Peers
	plan.Apply(&sc, d)
	sc.New = func(id sim.NodeID) sim.Machine {
		if k := int(id) - nodes; k >= 0 {
			// Request IDs carry the client's number, so that two
			// clients' reads never share one at a replica.
			return &client{n: nodes, until: d, rng: sim.Stream(seed, 1000+uint64(k)), id: uint64(k) << 32}
		}
		return c.newReplica(id, rc)
	}
	settings := fmt.Sprintf("prevote=%v checkquorum=%v snapshotEvery=%d inflight=%d batch=%d",
		rc.PreVote, rc.CheckQuorum, rc.SnapshotEvery, rc.MaxInflight, rc.MaxBatchEntries)
	sc.Checkers = []sim.Checker{
		raft.Checker(unwrap),
		{Name: "apply", Step: func(*sim.Sim) error {
			if c.err != nil {
				return fmt.Errorf("%w (raft: %s)", c.err, settings)
			}
			return nil
		}},
		{Name: "progress", End: func(*sim.Sim) error {
			if c.count == 0 {
				return fmt.Errorf("nothing was ever applied (raft: %s)", settings)
			}
			return nil
		}},
	}
	sc.Liveness = c.liveness(seed)
	return sc
}

// Replica returns the raft node of replica id, or nil if it is down or id
// is a client.
func Replica(s *sim.Sim, id sim.NodeID) *raft.Node {
	if !s.Up(id) {
		return nil
	}
	return unwrap(s.Machine(id))
}

func unwrap(m sim.Machine) *raft.Node {
	if r, ok := m.(*replica); ok {
		return r.node
	}
	return nil
}

// cluster is the state shared by the replicas of one run: what was
// applied at each index, and the first error seen.
type cluster struct {
	n       int
	applied map[uint64]string
	index   map[string]uint64
	err     error
	count   int
	// maxCommit is the highest commit index any replica reached: a lower
	// bound of what is committed.
	maxCommit uint64
}

func (c *cluster) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// replica embeds a raft Node the way a replicated service does: it serves
// Read messages itself through Node.ReadIndex, checking each read is
// linearizable, and hands everything else to the node.
type replica struct {
	id     sim.NodeID
	node   *raft.Node
	c      *cluster
	starts map[uint64]uint64
}

func (c *cluster) newReplica(id sim.NodeID, cfg raft.Config) *replica {
	r := &replica{id: id, c: c, starts: map[uint64]uint64{}}
	cfg.NewApp = func() raft.Application { return &app{r: r} }
	r.node = raft.New(id, cfg)
	return r
}

// Step implements sim.Machine.
func (r *replica) Step(ev sim.Event, out *sim.Effects) {
	if m, ok := ev.Msg.(raft.Read); ok && ev.Kind == sim.EventMessage {
		lb := r.c.maxCommit
		if r.node.ReadIndex(m.ID, out) {
			r.starts[m.ID] = lb
		}
		return
	}
	r.node.Step(ev, out)
	r.c.maxCommit = max(r.c.maxCommit, r.node.Commit())
}

// app folds applied data into a hash, so a snapshot is small but still
// pins the exact sequence applied.
type app struct {
	r       *replica
	last, n uint64
	hash    uint64
}

func (a *app) Apply(index uint64, data []byte) {
	c := a.r.c
	if index <= a.last {
		c.fail(fmt.Errorf("node %d applied index %d after %d", a.r.id, index, a.last))
	}
	if old, ok := c.applied[index]; ok && old != string(data) {
		c.fail(fmt.Errorf("node %d applied %q at index %d, another node applied %q", a.r.id, data, index, old))
	} else if !ok {
		c.applied[index] = string(data)
		c.index[string(data)] = index
	}
	c.count++
	a.last = index
	a.n++
	for _, b := range data {
		a.hash = (a.hash ^ uint64(b)) * 1099511628211
	}
	a.hash = (a.hash ^ index) * 1099511628211
}

func (a *app) Snapshot() []byte {
	b := binary.AppendUvarint(nil, a.last)
	b = binary.AppendUvarint(b, a.n)
	return binary.AppendUvarint(b, a.hash)
}

func (a *app) Restore(data []byte) {
	var vals [3]uint64
	for i := range vals {
		v, k := binary.Uvarint(data)
		if k <= 0 {
			a.r.c.fail(fmt.Errorf("node %d: bad snapshot", a.r.id))
			return
		}
		vals[i], data = v, data[k:]
	}
	a.last, a.n, a.hash = vals[0], vals[1], vals[2]
}

// ReadReady checks that a read is served only once the replica has applied
// everything committed anywhere when the read arrived.
func (a *app) ReadReady(ctx uint64, ok bool) {
	r := a.r
	if lb, started := r.starts[ctx]; ok && started && r.node.Applied() < lb {
		r.c.fail(fmt.Errorf("node %d: read %d served at applied %d, but %d was committed when it began", r.id, ctx, r.node.Applied(), lb))
	}
	delete(r.starts, ctx)
}

// client is the workload: every 1-8ms of its clock until the end of the
// fault phase, it sends a random replica a proposal (85%), a read (12%) or
// a leadership transfer to a random replica (3%). Only the leader accepts;
// the rest is refused, as real clients' misdirected calls are.
type client struct {
	n     int
	until time.Duration
	rng   *rand.Rand
	id    uint64
}

// Step implements sim.Machine.
func (c *client) Step(ev sim.Event, out *sim.Effects) {
	if ev.Kind == sim.EventMessage || ev.Now >= c.until {
		return // replies are not needed: the checkers watch the replicas
	}
	if ev.Kind == sim.EventTimer {
		to := sim.NodeID(c.rng.IntN(c.n))
		c.id++
		switch k := c.rng.IntN(100); {
		case k < 85:
			out.Send(to, raft.Propose{ID: c.id, Data: fmt.Appendf(nil, "p%x", c.id)})
		case k < 97:
			out.Send(to, raft.Read{ID: c.id})
		default:
			out.Send(to, raft.TransferLeader{To: sim.NodeID(c.rng.IntN(c.n))})
		}
	}
	out.SetTimer("next", time.Duration(1+c.rng.IntN(8))*time.Millisecond)
}

// leader returns the live, unpaused leader of the highest term, or
// raft.None.
func (c *cluster) leader(s *sim.Sim) sim.NodeID {
	best, bt := raft.None, uint64(0)
	for i := range c.n {
		id := sim.NodeID(i)
		if r := Replica(s, id); r != nil && !s.Paused(id) && r.Role() == raft.Leader && r.Term() >= bt {
			best, bt = id, r.Term()
		}
	}
	return best
}

// liveness proposes at the leader, like a client retrying at a new leader
// or after a while, until the proposal is applied on every replica.
func (c *cluster) liveness(seed uint64) *sim.Liveness {
	var (
		leader = raft.None
		term   uint64
		at     time.Duration
		live   = fmt.Sprint("live-", seed)
	)
	return &sim.Liveness{
		Name:   "leader elected and a new proposal commits everywhere",
		Within: 10 * time.Second,
		Cond: func(s *sim.Sim) bool {
			key := live
			if idx, ok := c.index[key]; ok {
				done := true
				for i := range c.n {
					if r := Replica(s, sim.NodeID(i)); r == nil || r.Applied() < idx {
						done = false
					}
				}
				if done {
					return true
				}
				// Applied somewhere, not yet everywhere: keep a trickle
				// of proposals so a new leader commits what it holds.
				key = fmt.Sprint("nudge-", s.Now())
			}
			l := c.leader(s)
			if l == raft.None {
				return false
			}
			if t := Replica(s, l).Term(); l != leader || t != term || s.Now()-at > 500*time.Millisecond {
				leader, term, at = l, t, s.Now()
				s.Inject(l, raft.Propose{ID: livenessID, Data: []byte(key)})
			}
			return false
		},
	}
}
