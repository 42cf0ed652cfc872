// Package trafficsim is the simulation harness of the traffic-light
// intersection of package trafficfsm: the four nodes wired together, the
// checkers that judge a run, the liveness condition once faults heal, and
// the standard scenarios that the tests and `flotilla sim -system traffic`
// sweep. It is not machine code; it is deterministic all the same (every
// choice it makes is drawn from the seed).
//
// # Checkers
//
//   - "commanded state": the colours the controller (any incarnation) last
//     sent the two lights, in the order its datagrams leave, are never both
//     non-red. This is the controller's safety property, checked after every
//     single send.
//   - "lights conflict": what the lights actually show may conflict (both
//     non-red) only briefly, while a repair is on its way. A conflict must
//     end within one refresh period (in global time, at the worst clock
//     drift the simulator allows) plus the largest delay of any network
//     model in force so far, plus one refresh period for every datagram
//     dropped meanwhile (anywhere: lost, cut by a partition or one-way
//     block, or addressed to a node that was down), plus the time the
//     controller was crashed or paused meanwhile: a controller that is down
//     cannot repair a light. The checker learns all of this from the running
//     simulation, not from the schedule it was built with, so it stays
//     honest when a shrunk or replayed schedule replaces the faults, the
//     network or the drift. A clogged link is not accounted for (a checker
//     cannot see clogs): the scenarios leave clogs out.
//   - "lights agree": at the end, some seconds into a phase, both lights
//     show what the controller commands.
//
// The liveness condition "both directions green again" requires, after the
// faults heal, North-South to turn green and then East-West to be green for
// 3 s, within 4 minutes.
package trafficsim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	tf "github.com/flotilla-sim/flotilla/trafficfsm"
)

// Nodes is the size of the intersection: controller 0, East-West light 1,
// North-South light 2, button 3.
const Nodes = 4

// BaseNetwork is the ordinary network of the intersection's LAN: 5 ms ± 5
// ms. Under it the swarm's and AllFaults' worst delays stay well within the
// controller's clearance margin (Clearance − Yellow − Refresh = 4 s).
var BaseNetwork = sim.Network{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond}

// maxDriftPPM is the largest clock drift the simulator applies (it clamps
// Config.DriftPPM to ±100000).
const maxDriftPPM = 100_000

// Commands is the latest colour the controller, any incarnation, sent each
// light, and the first moment that pair was ever conflicting.
type Commands struct {
	last     [2]tf.Colour // EW, NS
	conflict error
}

// NewCommands returns a log in which both lights were last told red.
func NewCommands() *Commands { return &Commands{last: [2]tf.Colour{tf.Red, tf.Red}} }

// Last is the latest colour sent to the East-West and North-South lights.
func (c *Commands) Last() (ew, ns tf.Colour) { return c.last[0], c.last[1] }

// Conflict describes the first conflicting command pair, or is nil.
func (c *Commands) Conflict() error { return c.conflict }

// Checker is the "commanded state" checker: it fails once the controller
// has commanded a conflict.
func (c *Commands) Checker() sim.Checker {
	return sim.Checker{Name: "commanded state", Step: func(*sim.Sim) error { return c.conflict }}
}

// CommandLog wraps the controller and records every colour command it
// sends in a Commands shared by all its incarnations, checking after every
// single send that the latest commands to the two lights are not both
// non-red.
type CommandLog struct {
	*tf.Controller
	cmds *Commands
}

// NewCommandLog wraps c, recording into cmds.
func NewCommandLog(c *tf.Controller, cmds *Commands) *CommandLog {
	return &CommandLog{Controller: c, cmds: cmds}
}

// Step implements sim.Machine.
func (m *CommandLog) Step(ev sim.Event, out *sim.Effects) {
	m.Controller.Step(ev, out)
	for _, s := range out.Sends {
		c, ok := s.Msg.(tf.Colour)
		if !ok {
			continue
		}
		switch s.To {
		case tf.EWLightID:
			m.cmds.last[0] = c
		case tf.NSLightID:
			m.cmds.last[1] = c
		}
		if l := m.cmds.last; l[0] != tf.Red && l[1] != tf.Red && m.cmds.conflict == nil {
			m.cmds.conflict = fmt.Errorf("at %v the controller commanded EW %v and NS %v", ev.Now, l[0], l[1])
		}
	}
}

// Intersection is the simulation config of the four nodes with the default
// controller configuration, the codec, net from the start and a button
// pressing at the given node times; no checkers, faults or liveness. Its
// controller is wrapped in a CommandLog; the returned Commands is shared by
// all the controller's incarnations.
func Intersection(seed uint64, net sim.Network, presses []time.Duration) (sim.Config, *Commands) {
	cfg := tf.DefaultConfig()
	cmds := NewCommands()
	return sim.Config{
		Seed:    seed,
		Nodes:   Nodes,
		Network: net,
		Codec:   tf.Codec{},
		New: func(id sim.NodeID) sim.Machine {
			switch id {
			case tf.ControllerID:
				return NewCommandLog(tf.NewController(cfg), cmds)
			case tf.EWLightID, tf.NSLightID:
				return tf.NewLight()
			}
			return tf.NewButton(tf.ControllerID, presses...)
		},
	}, cmds
}

// Controller returns the controller of a simulation built by Intersection,
// or nil while it is down.
func Controller(s *sim.Sim) *tf.Controller {
	if m, ok := s.Machine(tf.ControllerID).(*CommandLog); ok {
		return m.Controller
	}
	return nil
}

// LightColour is what light id shows, or zero while it is down.
func LightColour(s *sim.Sim, id sim.NodeID) tf.Colour {
	if l, ok := s.Machine(id).(*tf.Light); ok {
		return l.Colour()
	}
	return 0
}

func nonRed(c tf.Colour) bool { return c == tf.Green || c == tf.Yellow }

// phaseAge is how long ago, in global time, the controller last changed
// phase (its last State observation), and false if it never did.
func phaseAge(s *sim.Sim) (time.Duration, bool) {
	obs := s.Observations()
	for i := len(obs) - 1; i >= 0; i-- {
		if _, ok := obs[i].Value.(tf.State); ok && obs[i].Node == tf.ControllerID {
			return s.Now() - obs[i].At, true
		}
	}
	return 0, false
}

// refreshBound is the longest a refresh period of the controller's clock
// lasts in global time, at the slowest clock the simulator allows.
func refreshBound(refresh time.Duration) time.Duration {
	const den = 1_000_000 - maxDriftPPM
	return time.Duration((int64(refresh)*1_000_000+den-1)/den) + 1
}

// ConflictChecker is the "lights conflict" checker (see the package doc)
// for a controller with configuration cfg. If worst is not nil, it records
// there the longest conflict seen with no drop and no controller downtime.
// It notices a crash or pause at the next event (scheduled faults are
// events themselves).
func ConflictChecker(cfg tf.Config, worst *time.Duration) sim.Checker {
	refresh := refreshBound(cfg.Refresh)
	var (
		last       time.Duration // time of the previous check
		wasDown    bool          // the controller was down after it
		down       time.Duration // the controller's downtime up to last
		maxDelay   time.Duration // of every network in force so far
		inConflict bool
		start      time.Duration
		drops0     uint64
		down0      time.Duration
	)
	check := func(s *sim.Sim, over bool) error {
		now := s.Now()
		if wasDown {
			down += now - last
		}
		last, wasDown = now, !s.Up(tf.ControllerID) || s.Paused(tf.ControllerID)
		maxDelay = max(maxDelay, s.Network().MaxDelay())
		ew, ns := LightColour(s, tf.EWLightID), LightColour(s, tf.NSLightID)
		conflict := nonRed(ew) && nonRed(ns) && !over
		if conflict && !inConflict {
			inConflict, start, drops0, down0 = true, now, s.Stats().Dropped, down
		}
		if !inConflict {
			return nil
		}
		lasted := now - start
		drops := s.Stats().Dropped - drops0
		dt := down - down0
		allowed := refresh + maxDelay + time.Duration(drops)*refresh + dt
		if lasted > allowed {
			return fmt.Errorf("lights show %v and %v since %v (%v; allowed %v with %d drops, controller down %v)",
				ew, ns, start, lasted, allowed, drops, dt)
		}
		if drops == 0 && dt == 0 && worst != nil {
			*worst = max(*worst, lasted)
		}
		if !conflict {
			inConflict = false
		}
		return nil
	}
	return sim.Checker{
		Name: "lights conflict",
		Step: func(s *sim.Sim) error { return check(s, false) },
		End:  func(s *sim.Sim) error { return check(s, true) },
	}
}

// AgreeChecker is the "lights agree" checker: at the end of the run the
// controller is up, its phase began at least 2 s ago (the calm network's
// delay plus a refresh) and both lights show what it commands.
func AgreeChecker() sim.Checker {
	return sim.Checker{Name: "lights agree", End: func(s *sim.Sim) error {
		c := Controller(s)
		if c == nil {
			return errors.New("controller down at the end")
		}
		if age, ok := phaseAge(s); !ok || age < 2*time.Second {
			return errors.New("the run ended too close to a phase change to compare")
		}
		ew, ns := c.Phase().Colours()
		if got := LightColour(s, tf.EWLightID); got != ew {
			return fmt.Errorf("EW light shows %v, controller commands %v", got, ew)
		}
		if got := LightColour(s, tf.NSLightID); got != ns {
			return fmt.Errorf("NS light shows %v, controller commands %v", got, ns)
		}
		return nil
	}}
}

// livenessWithin is how long after healing the liveness condition may take.
const livenessWithin = 4 * time.Minute

// Liveness is the condition required once the faults heal: the
// North-South light turns green, and then East-West is green for 3 s,
// within 4 minutes (a cycle is 100 s, and up to 10% longer with drift). It
// remembers what it has seen: use a fresh one for every run.
func Liveness() *sim.Liveness {
	var sawNS bool
	return &sim.Liveness{Name: "both directions green again", Within: livenessWithin, Cond: func(s *sim.Sim) bool {
		if LightColour(s, tf.NSLightID) == tf.Green {
			sawNS = true
		}
		if c := Controller(s); !sawNS || c == nil || c.Phase() != tf.PhaseEWGreen {
			return false
		}
		age, _ := phaseAge(s)
		return age >= 3*time.Second
	}}
}

// Setup is one run of the intersection: what Config builds.
type Setup struct {
	Seed        uint64
	Network     sim.Network
	DriftPPM    []int32 // per node (controller first); nil: none
	SyncLatency time.Duration
	Faults      []sim.Fault
	Presses     []time.Duration // the button's schedule, in its node time
	Duration    time.Duration   // the fault phase
	// Worst, if set, receives the longest lights conflict seen with no
	// drop and no controller downtime.
	Worst *time.Duration
}

// Config is the full scenario of st for sim.Sim.Run: the fault phase, then
// healing and the liveness condition, with every checker of the package.
func (st Setup) Config() sim.Config {
	cfg, cmds := Intersection(st.Seed, st.Network, st.Presses)
	cfg.DriftPPM = st.DriftPPM
	cfg.SyncLatency = st.SyncLatency
	cfg.Faults = st.Faults
	cfg.Duration = st.Duration
	cfg.Checkers = []sim.Checker{cmds.Checker(), ConflictChecker(tf.DefaultConfig(), st.Worst), AgreeChecker()}
	cfg.Liveness = Liveness()
	return cfg
}

// DrawSwarm draws the intersection's own fault mix for seed over a fault
// phase of length d: a network with delay and jitter up to 80 ms each and,
// each on or off, loss up to 40%, duplication up to 30%, reordering up to
// 50% and a tail up to 3 s; the controller's clock drift within ±2000 ppm;
// controller crashes (a mean 2.5 min apart, each down up to 20 s); and up to
// 60 button presses.
func DrawSwarm(seed uint64, d time.Duration) Setup {
	r := rand.New(rand.NewPCG(seed, 0x7ea1f1c))
	maybe := func(p float64, x float64) float64 {
		if r.Float64() < p {
			return x
		}
		return 0
	}
	st := Setup{Seed: seed, Duration: d}
	st.Network = sim.Network{
		Delay:     time.Duration(r.Int64N(int64(80 * time.Millisecond))),
		Jitter:    time.Duration(r.Int64N(int64(80 * time.Millisecond))),
		Loss:      maybe(0.7, r.Float64()*0.4),
		Duplicate: maybe(0.5, r.Float64()*0.3),
		Reorder:   maybe(0.5, r.Float64()*0.5),
		TailProb:  maybe(0.5, r.Float64()*0.1),
		TailDelay: time.Duration(r.Int64N(int64(300 * time.Millisecond))),
	}
	st.DriftPPM = []int32{int32(r.IntN(4001)) - 2000}
	at := time.Duration(0)
	for {
		at += time.Duration(r.Int64N(int64(5 * time.Minute)))
		if at >= d {
			break
		}
		down := time.Duration(r.Int64N(int64(20 * time.Second)))
		st.Faults = append(st.Faults,
			sim.Fault{At: at, Kind: sim.FaultCrash, Node: tf.ControllerID},
			sim.Fault{At: at + down, Kind: sim.FaultRestart, Node: tf.ControllerID})
		at += down
	}
	n := r.IntN(60)
	if d <= 0 {
		n = 0 // no fault phase to press in
	}
	for range n {
		st.Presses = append(st.Presses, time.Duration(r.Int64N(int64(d))))
	}
	return st
}

// SwarmScenario is the scenario of DrawSwarm(seed, d): the intersection's
// own per-seed fault mix, which the trafficfsm tests sweep.
func SwarmScenario(seed uint64, d time.Duration) sim.Config { return DrawSwarm(seed, d).Config() }

// pressGap is the mean time between the presses Scenario draws.
const pressGap = 40 * time.Second

// presses draws the button's schedule for seed: presses a mean pressGap
// apart, up to horizon. A shorter horizon gives a prefix of the same
// schedule, so shrinking the fault phase keeps the presses that remain.
func presses(seed uint64, horizon time.Duration) []time.Duration {
	r := rand.New(rand.NewPCG(seed, 0x7ea1f1c+1))
	var out []time.Duration
	for at := time.Duration(0); ; {
		at += time.Duration(r.ExpFloat64()*float64(pressGap)) + time.Millisecond
		if at >= horizon {
			return out
		}
		out = append(out, at)
	}
}

// Scenario is the standard scenario of one seed that `flotilla sim -system
// traffic` sweeps: the intersection under plan for a fault phase of d, then
// healing and the liveness condition, with every checker.
//
// nodes must be Nodes (4): the intersection has no other size, and
// Scenario panics otherwise. The plan maps onto the intersection thus: its
// network carries every datagram, its drift and sync latency apply per node,
// and its fault schedule is drawn by sim.GenerateFaults from the seed with
// crashes and pauses aimed at the controller only (the lights and the
// button are not the subject; a crash-torn controller is just a crash, as
// it journals nothing). Partitions and one-way cuts may cut any link: their
// datagrams are dropped, which the conflict allowance accounts for. Clogs
// are left out, so "-faults clog" does nothing here: a clogged link holds
// the controller's repairs without dropping them, and checkers cannot see
// clogs. The button presses a mean 40 s apart, drawn from the seed.
func Scenario(seed uint64, nodes int, plan sim.Plan, d time.Duration) sim.Config {
	if nodes != Nodes {
		panic(fmt.Sprintf("trafficsim: the intersection has %d nodes, not %d", Nodes, nodes))
	}
	p := plan
	p.Faults.Targets = []sim.NodeID{tf.ControllerID}
	p.Faults.Clogs = false
	cfg := Setup{Seed: seed, Presses: presses(seed, d+livenessWithin)}.Config()
	p.Apply(&cfg, d)
	return cfg
}
