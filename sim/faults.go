package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// FaultKind names a scheduled fault.
type FaultKind uint8

const (
	// FaultPartition cuts every link between the nodes in Side and the rest.
	FaultPartition FaultKind = iota + 1
	// FaultBlock cuts the link from Node to Peer, one way.
	FaultBlock
	// FaultClog holds messages from Node to Peer until the link is healed.
	FaultClog
	// FaultHeal restores every link.
	FaultHeal
	// FaultCrash crashes Node: volatile state and unsynced writes are lost.
	FaultCrash
	// FaultCrashTorn crashes Node mid-write: a prefix of its unsynced
	// journal writes survives and the write after it is torn away.
	FaultCrashTorn
	// FaultRestart restarts a crashed Node.
	FaultRestart
	// FaultPause stops Node from handling events until FaultResume.
	FaultPause
	// FaultResume resumes a paused Node.
	FaultResume
)

var faultNames = [...]string{
	FaultPartition: "partition", FaultBlock: "block", FaultClog: "clog", FaultHeal: "heal",
	FaultCrash: "crash", FaultCrashTorn: "crash-torn", FaultRestart: "restart",
	FaultPause: "pause", FaultResume: "resume",
}

func (k FaultKind) String() string {
	if int(k) < len(faultNames) && faultNames[k] != "" {
		return faultNames[k]
	}
	return fmt.Sprintf("fault(%d)", k)
}

// Fault is one entry of a fault schedule.
type Fault struct {
	At   time.Duration
	Kind FaultKind
	Node NodeID // crash, restart, pause, resume; source of block and clog
	Peer NodeID // destination of block and clog
	Side uint64 // partition: bit i set puts node i on one side
}

func (f Fault) String() string {
	switch f.Kind {
	case FaultPartition:
		var a []string
		for i := range 64 {
			if f.Side&(1<<i) != 0 {
				a = append(a, fmt.Sprint(i))
			}
		}
		return fmt.Sprintf("%v partition {%s}|rest", f.At, strings.Join(a, ","))
	case FaultBlock, FaultClog:
		return fmt.Sprintf("%v %v %d->%d", f.At, f.Kind, f.Node, f.Peer)
	case FaultHeal:
		return fmt.Sprintf("%v heal", f.At)
	}
	return fmt.Sprintf("%v %v %d", f.At, f.Kind, f.Node)
}

// FaultConfig says which faults a generated schedule contains.
type FaultConfig struct {
	Partitions, OneWay, Clogs bool
	Crashes, TornWrites       bool
	Pauses                    bool
	// Every is the mean time between the starts of fault episodes (at
	// least 1 ms; zero means 1 s).
	Every time.Duration
	// Targets are the nodes that may crash or pause; nil means all.
	Targets []NodeID
}

func (c FaultConfig) String() string {
	var on []string
	for _, f := range []struct {
		on   bool
		name string
	}{{c.Partitions, "partitions"}, {c.OneWay, "one-way"}, {c.Clogs, "clogs"},
		{c.Crashes, "crashes"}, {c.TornWrites, "torn-writes"}, {c.Pauses, "pauses"}} {
		if f.on {
			on = append(on, f.name)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, ",") + " every~" + c.Every.String()
}

// GenerateFaults draws a schedule of fault episodes over [0, d) for nodes
// 0..n-1. Each episode starts a fault and ends it after a random while
// (partitions heal, crashed nodes restart, paused nodes resume), so the
// schedule never leaves the system broken for good; episodes may overlap.
func GenerateFaults(r *rand.Rand, cfg FaultConfig, n int, d time.Duration) []Fault {
	targets := cfg.Targets
	if targets == nil {
		for i := range n {
			targets = append(targets, NodeID(i))
		}
	}
	type gen func(at, until time.Duration) []Fault
	var gens []gen
	pair := func() (NodeID, NodeID) {
		a := r.IntN(n)
		b := (a + 1 + r.IntN(n-1)) % n
		return NodeID(a), NodeID(b)
	}
	if n > 1 && cfg.Partitions {
		gens = append(gens, func(at, until time.Duration) []Fault {
			side := uint64(0)
			for side == 0 || side == 1<<n-1 {
				side = r.Uint64() & (1<<n - 1)
			}
			return []Fault{{At: at, Kind: FaultPartition, Side: side}, {At: until, Kind: FaultHeal}}
		})
	}
	if n > 1 && cfg.OneWay {
		gens = append(gens, func(at, until time.Duration) []Fault {
			a, b := pair()
			return []Fault{{At: at, Kind: FaultBlock, Node: a, Peer: b}, {At: until, Kind: FaultHeal}}
		})
	}
	if n > 1 && cfg.Clogs {
		gens = append(gens, func(at, until time.Duration) []Fault {
			a, b := pair()
			return []Fault{{At: at, Kind: FaultClog, Node: a, Peer: b}, {At: until, Kind: FaultHeal}}
		})
	}
	if len(targets) > 0 && cfg.Crashes {
		gens = append(gens, func(at, until time.Duration) []Fault {
			kind := FaultCrash
			if cfg.TornWrites && r.IntN(2) == 0 {
				kind = FaultCrashTorn
			}
			t := targets[r.IntN(len(targets))]
			return []Fault{{At: at, Kind: kind, Node: t}, {At: until, Kind: FaultRestart, Node: t}}
		})
	}
	if len(targets) > 0 && cfg.Pauses {
		gens = append(gens, func(at, until time.Duration) []Fault {
			t := targets[r.IntN(len(targets))]
			return []Fault{{At: at, Kind: FaultPause, Node: t}, {At: until, Kind: FaultResume, Node: t}}
		})
	}
	if len(gens) == 0 || d <= 0 {
		return nil
	}
	every := cfg.Every
	if every <= 0 {
		every = time.Second
	}
	every = max(every, time.Millisecond) // bounds the schedule's size
	var out []Fault
	for at := time.Duration(r.Int64N(int64(every))); at < d; at += time.Duration(r.Int64N(2*int64(every))) + 1 {
		length := time.Duration(r.Int64N(2*int64(every))) + 1
		out = append(out, gens[r.IntN(len(gens))](at, min(at+length, d))...)
	}
	slices.SortStableFunc(out, func(a, b Fault) int { return int(a.At - b.At) })
	return out
}

// Plan is everything a swarm draws from a seed: the network, the faults,
// per-node clock drift and disk latency.
type Plan struct {
	Network     Network
	Faults      FaultConfig
	DriftPPM    []int32
	SyncLatency time.Duration
}

func (p Plan) String() string {
	return fmt.Sprintf("net[%v] faults[%v] drift=%v sync=%v", p.Network, p.Faults, p.DriftPPM, p.SyncLatency)
}

// Swarm draws a plan from r: each fault is on or off, and its rate is drawn
// too, so that a sweep over seeds covers many different mixes of faults
// (swarm testing) rather than one average mix. base gives the network's
// ordinary delay, which the swarm keeps.
func Swarm(r *rand.Rand, base Network, n int) Plan {
	coin := func() bool { return r.IntN(2) == 0 }
	p := Plan{Network: base}
	if coin() {
		p.Network.Loss = r.Float64() * 0.2
	}
	if coin() {
		p.Network.Duplicate = r.Float64() * 0.1
	}
	if coin() {
		p.Network.Reorder = r.Float64() * 0.2
	}
	if coin() {
		p.Network.TailProb = r.Float64() * 0.05
		p.Network.TailDelay = max(base.Delay, time.Millisecond) * time.Duration(1+r.IntN(50))
	}
	p.Faults = FaultConfig{
		Partitions: coin(), OneWay: coin(), Clogs: coin(),
		Crashes: coin(), TornWrites: coin(), Pauses: coin(),
		Every: time.Duration(200+r.IntN(2000)) * time.Millisecond,
	}
	if coin() {
		p.DriftPPM = make([]int32, n)
		for i := range p.DriftPPM {
			p.DriftPPM[i] = int32(r.IntN(200_001) - 100_000)
		}
	}
	if coin() {
		p.SyncLatency = time.Duration(r.IntN(5000)) * time.Microsecond
	}
	return p
}

// AllFaults is a plan with every fault on at moderate rates.
func AllFaults(base Network, n int) Plan {
	net := base
	net.Loss, net.Duplicate, net.Reorder = 0.05, 0.02, 0.05
	net.TailProb, net.TailDelay = 0.01, max(base.Delay, time.Millisecond)*20
	drift := make([]int32, n)
	for i := range drift {
		drift[i] = int32((i*37)%21-10) * 5000
	}
	return Plan{
		Network: net,
		Faults: FaultConfig{Partitions: true, OneWay: true, Clogs: true, Crashes: true,
			TornWrites: true, Pauses: true, Every: DefaultEvery},
		DriftPPM:    drift,
		SyncLatency: time.Millisecond,
	}
}

// SwarmPlan draws the plan for seed from its own stream of the seed.
func SwarmPlan(seed uint64, base Network, n int) Plan {
	return Swarm(Stream(seed, streamSwarm), base, n)
}

// Apply configures cfg to run under p for a fault phase of length d: the
// network, drift and sync latency, and a fault schedule drawn from the seed.
func (p Plan) Apply(cfg *Config, d time.Duration) {
	cfg.Network = p.Network
	cfg.DriftPPM = p.DriftPPM
	cfg.SyncLatency = p.SyncLatency
	cfg.Duration = d
	cfg.Faults = GenerateFaults(Stream(cfg.Seed, streamSwarm+1), p.Faults, cfg.Nodes, d)
}
