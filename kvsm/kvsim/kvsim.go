// Package kvsim simulates the replicated key-value store: Raft replicas
// (kvsm.Replica) and workload clients (kvsm.Client) in one simulation, with
// Raft's safety checker after every event, and at the end a porcupine check
// that the clients' history is linearizable.
//
// Nodes 0..n-1 are the replicas, nodes n..n+c-1 the clients. Faults crash
// and pause replicas only (clients keep their history in memory), but
// partitions, one-way cuts and clogs may cut clients off too.
//
// Histories: every client observes kvsm.Invoked when a call starts and
// kvsm.Done when it ends. The position of an observation in the run's
// observation list is its time for porcupine, so the real-time order of
// calls and returns is exact. A write whose outcome the client never learned
// (still in flight at the end, or answered "session expired") is modelled as
// possibly applied: it returns after everything else. A read with an unknown
// outcome changed nothing and is left out.
//
// Scenario and ScenarioClients build the standard scenario that
// `flotilla sim -system kv` sweeps.
package kvsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// BaseNetwork is the scenario's ordinary network: 1 ms ± 1 ms.
var BaseNetwork = sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond}

// DefaultClients is the number of clients of Scenario.
const DefaultClients = 5

// HTMLDir is where a failed linearizability check writes porcupine's HTML
// view of the history ("": the system's temporary directory).
var HTMLDir string

// Options describes one cluster and its workload.
type Options struct {
	Seed    uint64
	Nodes   int // replicas (default 5)
	Clients int // workload clients (default DefaultClients)
	// Keys is the number of distinct keys the workload uses (default 5).
	Keys int
	// Think is the most a client waits between calls (default 20ms).
	Think time.Duration
	// OpsPerClient stops each client after this many calls (0: never).
	OpsPerClient int
	// SnapshotEvery is Raft's compaction interval (default 100 entries;
	// negative: never).
	SnapshotEvery int
	// Sessions bounds the replicas' session tables.
	Sessions kvsm.SessionConfig
	// ClientTimeout is the clients' per-attempt timeout (default 250ms).
	ClientTimeout time.Duration
	// Network is the network from the start (default BaseNetwork).
	Network *sim.Network
	// CheckTimeout bounds the porcupine search (default 20s).
	CheckTimeout time.Duration
}

func (o *Options) fill() {
	if o.Nodes <= 0 {
		o.Nodes = 5
	}
	if o.Clients <= 0 {
		o.Clients = DefaultClients
	}
	if o.Keys <= 0 {
		o.Keys = 5
	}
	if o.Think <= 0 {
		o.Think = 20 * time.Millisecond
	}
	if o.SnapshotEvery == 0 {
		o.SnapshotEvery = 100
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 20 * time.Second
	}
}

// Servers returns the replica ids 0..n-1.
func Servers(n int) []sim.NodeID {
	ids := make([]sim.NodeID, n)
	for i := range ids {
		ids[i] = sim.NodeID(i)
	}
	return ids
}

// RaftConfig is the replicas' Raft configuration in the scenarios.
func RaftConfig(nodes, snapshotEvery int) raft.Config {
	rc := raft.Config{
		Peers:              Servers(nodes),
		HeartbeatInterval:  50 * time.Millisecond,
		ElectionTimeoutMin: 150 * time.Millisecond,
		ElectionTimeoutMax: 300 * time.Millisecond,
		PreVote:            true,
		CheckQuorum:        true,
	}
	if snapshotEvery > 0 {
		rc.SnapshotEvery = uint64(snapshotEvery)
	}
	return rc
}

// Workload is the scenarios' client workload: gets, sets and deletes on
// a few keys, each set writing a value unique to the client and call.
type Workload struct {
	Client int // the client's index, for values
	Keys   int
	Think  time.Duration
	Limit  int // calls; 0: unbounded
	n      int
}

// Next implements kvsm.Workload.
func (w *Workload) Next(r *rand.Rand) (kvsm.Call, time.Duration, bool) {
	if w.Limit > 0 && w.n >= w.Limit {
		return kvsm.Call{}, 0, false
	}
	w.n++
	c := kvsm.Call{Key: fmt.Appendf(nil, "k%d", r.IntN(max(w.Keys, 1)))}
	switch p := r.IntN(100); {
	case p < 50:
		c.Op = kvsm.OpGet
	case p < 85:
		c.Op = kvsm.OpSet
		c.Value = fmt.Appendf(nil, "c%d.%d", w.Client, w.n)
	default:
		c.Op = kvsm.OpDelete
	}
	return c, time.Duration(r.Int64N(int64(w.Think) + 1)), true
}

// Replica extracts the replica from node id's machine (nil for a client,
// or while the node is down).
func Replica(s *sim.Sim, id sim.NodeID) *kvsm.Replica {
	r, _ := s.Machine(id).(*kvsm.Replica)
	return r
}

func unwrapRaft(m sim.Machine) *raft.Node {
	if r, ok := m.(*kvsm.Replica); ok {
		return r.Raft()
	}
	return nil
}

// Cluster is a simulation configuration of replicas and clients, with the
// history tracker its checkers use.
type Cluster struct {
	Options
	Config  sim.Config
	Tracker *Tracker
}

// New builds a cluster's configuration: machines, codec and checkers (Raft
// safety and replica errors after every event; linearizability at the
// end). The caller adds faults, duration and liveness, or drives the
// simulation itself.
func New(o Options) *Cluster {
	o.fill()
	servers := Servers(o.Nodes)
	rc := RaftConfig(o.Nodes, o.SnapshotEvery)
	c := &Cluster{Options: o, Tracker: NewTracker(o.Nodes)}
	net := BaseNetwork
	if o.Network != nil {
		net = *o.Network
	}
	c.Config = sim.Config{
		Seed:    o.Seed,
		Nodes:   o.Nodes + o.Clients,
		Network: net,
		Codec:   kvsm.ReplicaCodec{},
		New: func(id sim.NodeID) sim.Machine {
			if int(id) < o.Nodes {
				return kvsm.NewReplica(id, kvsm.ReplicaConfig{Raft: rc, Sessions: o.Sessions})
			}
			return kvsm.NewClient(kvsm.ClientConfig{
				Servers: servers,
				Timeout: o.ClientTimeout,
				Workload: &Workload{Client: int(id) - o.Nodes, Keys: o.Keys, Think: o.Think,
					Limit: o.OpsPerClient},
			})
		},
		Checkers: []sim.Checker{
			raft.Checker(unwrapRaft),
			c.Tracker.Checker(),
			LinearizabilityChecker(o.Seed, o.Nodes, o.CheckTimeout),
		},
	}
	return c
}

// Scenario is the standard simulation of `flotilla sim -system kv`: nodes
// replicas and DefaultClients clients under plan for d, then every fault
// heals and every client must complete a new call within 5s; at the end
// the history must be linearizable.
func Scenario(seed uint64, nodes int, plan sim.Plan, d time.Duration) sim.Config {
	return ScenarioClients(seed, nodes, DefaultClients, plan, d)
}

// ScenarioClients is Scenario with the given number of clients.
func ScenarioClients(seed uint64, nodes, clients int, plan sim.Plan, d time.Duration) sim.Config {
	c := New(Options{Seed: seed, Nodes: nodes, Clients: clients})
	c.ApplyPlan(plan, d)
	return c.Config
}

// ApplyPlan puts the cluster under plan for a fault phase of d, crashing
// and pausing replicas only, and sets the liveness condition: once healed,
// every client completes a call it started after healing within 5s.
func (c *Cluster) ApplyPlan(plan sim.Plan, d time.Duration) {
	plan.Faults.Targets = Servers(c.Nodes)
	plan.Apply(&c.Config, d)
	c.Config.Liveness = &sim.Liveness{
		Name:   "every client completes a new call",
		Within: 5 * time.Second,
		Cond:   c.Tracker.AllCompleteAfterFirstCall(),
	}
}

// Tracker follows the clients' observations as the simulation runs: it
// counts completed calls per client and fails the run on any replica error
// observation.
type Tracker struct {
	nodes   int
	seen    int
	invoked map[callKey]time.Duration
	// LastInvoke[i] is the global invoke time of client i's latest call
	// with a known outcome (-1: none yet); Completed[i] counts them.
	LastInvoke []time.Duration
	Completed  []int
	err        error
}

type callKey struct {
	node sim.NodeID
	id   uint64
}

// NewTracker returns a tracker for a cluster of nodes replicas.
func NewTracker(nodes int) *Tracker {
	return &Tracker{nodes: nodes, invoked: map[callKey]time.Duration{}}
}

// Sync consumes the observations made since the last call.
func (t *Tracker) Sync(s *sim.Sim) error {
	obs := s.Observations()
	for ; t.seen < len(obs); t.seen++ {
		o := obs[t.seen]
		switch v := o.Value.(type) {
		case kvsm.ReplicaObservation:
			if t.err == nil {
				t.err = fmt.Errorf("replica %d: %s: %s", o.Node, v.Kind, v.Err)
			}
		case kvsm.Invoked:
			t.invoked[callKey{o.Node, v.ID}] = o.At
		case kvsm.Done:
			k := callKey{o.Node, v.ID}
			at, ok := t.invoked[k]
			delete(t.invoked, k)
			i := int(o.Node) - t.nodes
			if !ok || v.Unknown || i < 0 {
				continue
			}
			for len(t.Completed) <= i {
				t.Completed = append(t.Completed, 0)
				t.LastInvoke = append(t.LastInvoke, -1)
			}
			t.Completed[i]++
			t.LastInvoke[i] = at
		}
	}
	return t.err
}

// Checker fails the run when a replica reports an error.
func (t *Tracker) Checker() sim.Checker {
	return sim.Checker{Name: "replica errors", Step: t.Sync}
}

// CompletedAfter reports whether every client completed a call it invoked
// at or after global time at.
func (t *Tracker) CompletedAfter(s *sim.Sim, at time.Duration) bool {
	if t.Sync(s) != nil {
		return false
	}
	clients := s.Nodes() - t.nodes
	if len(t.LastInvoke) < clients {
		return false
	}
	for _, li := range t.LastInvoke[:clients] {
		if li < at {
			return false
		}
	}
	return true
}

// AllCompleteAfterFirstCall returns a liveness condition: the first call
// records the time (the moment of healing), and the condition holds once
// every client completed a call invoked at or after it.
func (t *Tracker) AllCompleteAfterFirstCall() func(*sim.Sim) bool {
	healed := time.Duration(-1)
	return func(s *sim.Sim) bool {
		if healed < 0 {
			healed = s.Now()
		}
		return t.CompletedAfter(s, healed)
	}
}

// Total is the number of calls completed with a known outcome.
func (t *Tracker) Total() int {
	n := 0
	for _, c := range t.Completed {
		n += c
	}
	return n
}

// ---- linearizability ----

// Input is a call as porcupine sees it.
type Input struct {
	Op    kvsm.Op
	Key   string
	Value string
}

// Output is an answer as porcupine sees it.
type Output struct {
	Found   bool   // get: the key was present
	Value   string // get: its value
	Unknown bool   // the outcome was never learned
}

type kvState struct {
	present bool
	value   string
}

// Model is the porcupine model of the key-value store, partitioned by key.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		slices.Sort(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(kvState), input.(Input), output.(Output)
		switch in.Op {
		case kvsm.OpGet:
			if out.Unknown {
				return true, st
			}
			return out.Found == st.present && (!out.Found || out.Value == st.value), st
		case kvsm.OpSet:
			return true, kvState{present: true, value: in.Value}
		case kvsm.OpDelete:
			return true, kvState{}
		}
		return false, st
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		res := "?"
		if !out.Unknown {
			switch {
			case in.Op != kvsm.OpGet:
				res = "ok"
			case out.Found:
				res = fmt.Sprintf("%q", out.Value)
			default:
				res = "none"
			}
		}
		switch in.Op {
		case kvsm.OpSet:
			return fmt.Sprintf("set(%s, %q) -> %s", in.Key, in.Value, res)
		case kvsm.OpDelete:
			return fmt.Sprintf("delete(%s) -> %s", in.Key, res)
		}
		return fmt.Sprintf("get(%s) -> %s", in.Key, res)
	},
	DescribeState: func(state any) string {
		if st := state.(kvState); st.present {
			return fmt.Sprintf("%q", st.value)
		}
		return "none"
	},
}

// History turns a run's observations into porcupine operations. Clients
// are numbered from 0 (node nodes). The time of an event is its position
// in the observation list; writes with an unknown outcome return after
// everything else, reads with an unknown outcome are left out.
func History(obs []sim.Observation, nodes int) []porcupine.Operation {
	open := map[callKey]int{}
	var ops []porcupine.Operation
	end := int64(len(obs)) + 1
	for i, o := range obs {
		switch v := o.Value.(type) {
		case kvsm.Invoked:
			open[callKey{o.Node, v.ID}] = len(ops)
			ops = append(ops, porcupine.Operation{
				ClientId: int(o.Node) - nodes,
				Input:    Input{Op: v.Op, Key: string(v.Key), Value: string(v.Value)},
				Call:     int64(i),
				Output:   Output{Unknown: true},
				Return:   end,
			})
		case kvsm.Done:
			k := callKey{o.Node, v.ID}
			j, ok := open[k]
			if !ok {
				continue
			}
			delete(open, k)
			if v.Unknown {
				continue
			}
			ops[j].Return = int64(i)
			ops[j].Output = Output{Found: v.Op == kvsm.OpGet && v.Status == kvsm.StatusOK, Value: string(v.Result)}
		}
	}
	// Drop reads that never returned: they changed nothing.
	return slices.DeleteFunc(ops, func(op porcupine.Operation) bool {
		return op.Input.(Input).Op == kvsm.OpGet && op.Output.(Output).Unknown
	})
}

// ErrNotLinearizable is wrapped by the error of a failed check.
var ErrNotLinearizable = errors.New("history is not linearizable")

// CheckHistory checks ops with porcupine. On a violation it writes the HTML
// view to htmlPath (if not empty) and returns an error wrapping
// ErrNotLinearizable that names the file. A check that times out is not an
// error; it is reported as porcupine.Unknown.
func CheckHistory(ops []porcupine.Operation, timeout time.Duration, htmlPath string) (porcupine.CheckResult, error) {
	res, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	if res != porcupine.Illegal {
		return res, nil
	}
	if htmlPath == "" {
		return res, fmt.Errorf("%w (%d operations)", ErrNotLinearizable, len(ops))
	}
	if err := porcupine.VisualizePath(Model, info, htmlPath); err != nil {
		return res, fmt.Errorf("%w (%d operations); writing the HTML view: %v", ErrNotLinearizable, len(ops), err)
	}
	return res, fmt.Errorf("%w (%d operations); porcupine view: %s", ErrNotLinearizable, len(ops), htmlPath)
}

// HTMLPath is where the HTML view of a failed check of seed goes.
func HTMLPath(seed uint64, nodes int) string {
	dir := HTMLDir
	if dir == "" {
		dir = os.TempDir()
	}
	return filepath.Join(dir, fmt.Sprintf("flotilla-kv-seed%d-n%d.html", seed, nodes))
}

// LinearizabilityChecker is the End checker of a cluster of nodes
// replicas: the clients' whole history must be linearizable.
func LinearizabilityChecker(seed uint64, nodes int, timeout time.Duration) sim.Checker {
	return sim.Checker{
		Name: "linearizability",
		End: func(s *sim.Sim) error {
			ops := History(s.Observations(), nodes)
			_, err := CheckHistory(ops, timeout, HTMLPath(seed, nodes))
			return err
		},
	}
}
