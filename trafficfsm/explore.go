package trafficfsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// ExploreState is the controller as the exhaustive explorer sees it: its
// phase, how long the phase has lasted, whether a press is pending, and when
// its phase timer will fire. Absolute time is left out, so the state space
// is finite.
type ExploreState struct {
	Phase   Phase
	InPhase time.Duration // time since the phase began
	Pressed bool          // a counted press is waiting for NSMinGreen
	TimerIn time.Duration // time until the phase timer fires; -1 if none is set
}

// String describes the state for counterexamples.
func (s ExploreState) String() string {
	p := ""
	if s.Pressed {
		p = " pressed"
	}
	return fmt.Sprintf("{%v for %v%s, phase timer in %v}", s.Phase, s.InPhase, p, s.TimerIn)
}

// Events of the controller's state graph.
const (
	EventTick    = "tick"    // one time step passes (timers due in it fire)
	EventPress   = "press"   // the button is pressed
	EventRestart = "restart" // the controller crashes and starts afresh
)

// exploreBase is the node time at which each explored state is rebuilt; any
// value larger than the longest phase works.
const exploreBase = time.Hour

// controllerHost runs the real Controller for the explorer: it rebuilds a
// controller from an ExploreState, feeds it one event, and keeps the phase
// timer the way a host would.
type controllerHost struct {
	cfg     Config
	c       Controller
	now     time.Duration
	timerAt time.Duration // absolute; -1 when not set
	out     sim.Effects
}

func (h *controllerHost) load(s ExploreState) {
	h.c = Controller{cfg: h.cfg, phase: s.Phase, since: exploreBase - s.InPhase, pressed: s.Pressed}
	h.now = exploreBase
	h.timerAt = -1
	if s.TimerIn >= 0 {
		h.timerAt = exploreBase + s.TimerIn
	}
}

func (h *controllerHost) step(ev sim.Event) {
	ev.Now = h.now
	h.out.Reset()
	h.c.Step(ev, &h.out)
	for _, op := range h.out.Timers {
		if op.Name != TimerPhase {
			continue // the refresh timer only re-sends colours
		}
		if op.Cancel {
			h.timerAt = -1
		} else {
			h.timerAt = h.now + op.After
		}
	}
}

func (h *controllerHost) advance(d time.Duration) {
	end := h.now + d
	for h.timerAt >= 0 && h.timerAt <= end {
		h.now, h.timerAt = h.timerAt, -1
		h.step(sim.Event{Kind: sim.EventTimer, Timer: TimerPhase})
	}
	h.now = end
}

func (h *controllerHost) state() ExploreState {
	s := ExploreState{Phase: h.c.phase, InPhase: h.now - h.c.since, Pressed: h.c.pressed, TimerIn: -1}
	if h.timerAt >= 0 {
		s.TimerIn = h.timerAt - h.now
	}
	return s
}

// ExploreOptions chooses the controller's state graph.
type ExploreOptions struct {
	// Step is the time a tick advances (1 s when zero). Presses may happen
	// between any two ticks. It must not exceed the shortest phase, so that
	// a tick changes the phase at most once and every phase is seen.
	Step time.Duration
	// Restarts adds a restart event in every state.
	Restarts bool
}

// ExploreProperties names the properties ExploreController checks, in the
// order it checks them.
func ExploreProperties() []string {
	return []string{
		"never both directions non-red",
		"a phase timer is always set",
		"phases follow the cycle",
		"east-west green lasts exactly EWGreen, yellows exactly Yellow",
		"north-south green lasts at least NSMinGreen and at most NSGreen",
		"north-south green without a press lasts exactly NSGreen",
		"a press before NSMinGreen ends north-south green at exactly NSMinGreen",
		"a press after NSMinGreen of north-south green ends it at once",
		"a press outside north-south green changes nothing",
		"no deadlock",
		"every state can reach east-west green",
	}
}

// ExploreController runs the real Controller through every state reachable
// with time advancing in opt.Step ticks and the button pressed at any point
// between ticks (and, with opt.Restarts, a restart at any point), checking
// ExploreProperties. It returns the state space and the first violation, if
// any, with its shortest counterexample.
func ExploreController(cfg Config, opt ExploreOptions) (*sim.StateSpace[ExploreState], error) {
	step := opt.Step
	if step <= 0 {
		step = time.Second
	}
	if shortest := min(cfg.Clearance, cfg.EWGreen, cfg.Yellow, cfg.NSMinGreen, cfg.NSGreen); step > shortest {
		return nil, fmt.Errorf("trafficfsm: explore step %v is longer than the shortest phase (%v)", step, shortest)
	}
	h := &controllerHost{cfg: cfg}
	boot := func() ExploreState {
		h.c = Controller{cfg: cfg}
		h.now, h.timerAt = exploreBase, -1
		h.step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: ControllerID}})
		return h.state()
	}
	init := boot()
	next := func(s ExploreState) []sim.Transition[ExploreState] {
		h.load(s)
		h.advance(step)
		ts := []sim.Transition[ExploreState]{{Event: EventTick, To: h.state()}}
		h.load(s)
		h.step(sim.Event{Kind: sim.EventMessage, From: ButtonID, Msg: Press{}})
		ts = append(ts, sim.Transition[ExploreState]{Event: EventPress, To: h.state()})
		if opt.Restarts {
			ts = append(ts, sim.Transition[ExploreState]{Event: EventRestart, To: boot()})
		}
		return ts
	}
	names := ExploreProperties()
	x := sim.Explorer[ExploreState]{
		Next: next,
		Invariants: []sim.Invariant[ExploreState]{
			{Name: names[0], Check: func(s ExploreState) error {
				if ew, ns := s.Phase.Colours(); ew != Red && ns != Red {
					return fmt.Errorf("east-west %v, north-south %v", ew, ns)
				}
				return nil
			}},
			{Name: names[1], Check: func(s ExploreState) error {
				if s.TimerIn < 0 {
					return errors.New("no phase timer: the controller would stay in this phase forever")
				}
				return nil
			}},
		},
		EdgeInvariants: []sim.EdgeInvariant[ExploreState]{
			{Name: names[2], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				if t.Event == EventRestart || t.To.Phase == from.Phase || t.To.Phase == from.Phase.next() {
					return nil
				}
				return fmt.Errorf("%v followed by %v", from.Phase, t.To.Phase)
			}},
			{Name: names[3], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				lasted, ended := phaseEnded(from, t, step)
				if !ended {
					return nil
				}
				switch from.Phase {
				case PhaseEWGreen:
					if lasted != cfg.EWGreen {
						return fmt.Errorf("east-west green lasted %v", lasted)
					}
				case PhaseEWYellow, PhaseNSYellow:
					if lasted != cfg.Yellow {
						return fmt.Errorf("%v lasted %v", from.Phase, lasted)
					}
				}
				return nil
			}},
			{Name: names[4], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				if from.Phase == PhaseNSGreen && t.Event != EventRestart && from.InPhase > cfg.NSGreen {
					return fmt.Errorf("north-south green for %v", from.InPhase)
				}
				lasted, ended := phaseEnded(from, t, step)
				if ended && from.Phase == PhaseNSGreen && (lasted < cfg.NSMinGreen || lasted > cfg.NSGreen) {
					return fmt.Errorf("north-south green lasted %v", lasted)
				}
				return nil
			}},
			{Name: names[5], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				lasted, ended := phaseEnded(from, t, step)
				if ended && from.Phase == PhaseNSGreen && t.Event == EventTick && !from.Pressed && lasted != cfg.NSGreen {
					return fmt.Errorf("north-south green lasted %v without a press", lasted)
				}
				return nil
			}},
			{Name: names[6], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				lasted, ended := phaseEnded(from, t, step)
				if ended && from.Phase == PhaseNSGreen && from.Pressed && lasted != cfg.NSMinGreen {
					return fmt.Errorf("north-south green lasted %v after an early press", lasted)
				}
				return nil
			}},
			{Name: names[7], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				if t.Event == EventPress && from.Phase == PhaseNSGreen && from.InPhase >= cfg.NSMinGreen &&
					(t.To.Phase != PhaseNSYellow || t.To.InPhase != 0) {
					return fmt.Errorf("press after %v of north-south green led to %v", from.InPhase, t.To)
				}
				return nil
			}},
			{Name: names[8], Check: func(from ExploreState, t sim.Transition[ExploreState]) error {
				if t.Event == EventPress && from.Phase != PhaseNSGreen && t.To != from {
					return fmt.Errorf("press in %v changed the state to %v", from, t.To)
				}
				return nil
			}},
		},
	}
	sp, err := x.Explore(init)
	if err != nil {
		return sp, err
	}
	if err := sp.AlwaysCanReach(names[10], func(s ExploreState) bool { return s.Phase == PhaseEWGreen }); err != nil {
		return sp, err
	}
	return sp, nil
}

// phaseEnded reports whether transition t ended from's phase (other than by a
// restart) and, if so, how long that phase lasted.
func phaseEnded(from ExploreState, t sim.Transition[ExploreState], step time.Duration) (time.Duration, bool) {
	if t.Event == EventRestart || t.To.Phase == from.Phase && t.To.InPhase >= from.InPhase {
		return 0, false
	}
	switch t.Event {
	case EventTick:
		return from.InPhase + step - t.To.InPhase, true
	default:
		return from.InPhase, true
	}
}
