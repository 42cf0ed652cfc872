package trafficfsm

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Phase is the controller's state in the cycle.
type Phase uint8

// The phases, in cycle order after the start-up clearance.
const (
	// PhaseOff is a controller that has not started.
	PhaseOff Phase = iota
	// PhaseClear is the all-red clearance entered on every start.
	PhaseClear
	// PhaseEWGreen: East-West green, North-South red.
	PhaseEWGreen
	// PhaseEWYellow: East-West yellow, North-South red.
	PhaseEWYellow
	// PhaseNSGreen: East-West red, North-South green.
	PhaseNSGreen
	// PhaseNSYellow: East-West red, North-South yellow.
	PhaseNSYellow
)

var phaseNames = [...]string{"off", "clear", "ew-green", "ew-yellow", "ns-green", "ns-yellow"}

// String names the phase as the logs and observations print it.
func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", uint8(p))
}

// Colours returns what the East-West and North-South lights show in p.
func (p Phase) Colours() (ew, ns Colour) {
	switch p {
	case PhaseEWGreen:
		return Green, Red
	case PhaseEWYellow:
		return Yellow, Red
	case PhaseNSGreen:
		return Red, Green
	case PhaseNSYellow:
		return Red, Yellow
	}
	return Red, Red
}

// next is the phase that follows p when its time is up.
func (p Phase) next() Phase {
	switch p {
	case PhaseClear, PhaseNSYellow:
		return PhaseEWGreen
	case PhaseEWGreen:
		return PhaseEWYellow
	case PhaseEWYellow:
		return PhaseNSGreen
	case PhaseNSGreen:
		return PhaseNSYellow
	}
	return PhaseClear
}

// Config holds the controller's timings and the node ids of its lights.
type Config struct {
	EWGreen    time.Duration // East-West green (30 s)
	NSGreen    time.Duration // North-South green without a press (60 s)
	NSMinGreen time.Duration // North-South green before a press may end it (30 s)
	Yellow     time.Duration // either yellow (5 s)
	// Clearance is the all-red interval entered on every start. Keep it at
	// least Yellow plus Refresh plus the largest network delay: then a green
	// or yellow the previous incarnation commanded has been overridden by a
	// red before anything turns green again.
	Clearance time.Duration
	// Refresh is how often both lights are re-sent their current colour, so
	// a lost datagram heals.
	Refresh time.Duration
	EW, NS  sim.NodeID // the lights' node ids
}

// DefaultConfig is the specified intersection: 30 s / 60 s greens, 5 s
// yellows, a press honoured after 30 s of North-South green, a 10 s all-red
// clearance at start, a refresh every second, lights at nodes 1 and 2.
func DefaultConfig() Config {
	return Config{
		EWGreen:    30 * time.Second,
		NSGreen:    60 * time.Second,
		NSMinGreen: 30 * time.Second,
		Yellow:     5 * time.Second,
		Clearance:  10 * time.Second,
		Refresh:    time.Second,
		EW:         EWLightID,
		NS:         NSLightID,
	}
}

// Timer names the controller sets.
const (
	TimerPhase   = "phase"   // the current phase's time is up
	TimerRefresh = "refresh" // re-send both colours
)

// State is the controller's observation on every phase change: the new phase
// and the colours it commands.
type State struct {
	Phase  Phase
	EW, NS Colour
}

// PressSeen is the controller's observation of a press it received: the
// phase it was in, how long that phase had lasted, and whether the press
// counted (only a press during North-South green does).
type PressSeen struct {
	Phase   Phase
	InPhase time.Duration
	Counted bool
}

// Controller is the intersection controller as a sim.Machine. Its
// state is a comparable value (the explorer relies on that); it holds no
// pointers, so copying it copies the controller.
type Controller struct {
	cfg     Config
	phase   Phase
	since   time.Duration // node time at which the current phase began
	pressed bool          // a counted press arrived before NSMinGreen
}

var _ sim.Machine = (*Controller)(nil)

// NewController returns a controller that has not started; the host starts it.
func NewController(cfg Config) *Controller { return &Controller{cfg: cfg} }

// Phase is the current phase.
func (c *Controller) Phase() Phase { return c.phase }

// Since is the node time at which the current phase began.
func (c *Controller) Since() time.Duration { return c.since }

// Step handles one event.
func (c *Controller) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		// Volatile: whatever ran before, start from all red.
		c.enter(PhaseClear, ev.Now, out)
		out.SetTimer(TimerRefresh, c.cfg.Refresh)
	case sim.EventTimer:
		if c.phase == PhaseOff {
			return
		}
		switch ev.Timer {
		case TimerPhase:
			// The host replaces a timer when it is set again, so this is
			// the current phase's deadline. It is taken as it comes: a
			// host's clock conversions may deliver it a hair early, and
			// re-arming for a nanosecond could spin.
			c.enter(c.phase.next(), ev.Now, out)
		case TimerRefresh:
			c.sendColours(out)
			out.SetTimer(TimerRefresh, c.cfg.Refresh)
		}
	case sim.EventMessage:
		if _, ok := ev.Msg.(Press); ok && c.phase != PhaseOff {
			c.press(ev.Now, out)
		}
	}
}

// deadline is the node time at which the current phase ends.
func (c *Controller) deadline() time.Duration {
	switch c.phase {
	case PhaseClear:
		return c.since + c.cfg.Clearance
	case PhaseEWGreen:
		return c.since + c.cfg.EWGreen
	case PhaseNSGreen:
		if c.pressed {
			return c.since + c.cfg.NSMinGreen
		}
		return c.since + c.cfg.NSGreen
	}
	return c.since + c.cfg.Yellow
}

func (c *Controller) press(now time.Duration, out *sim.Effects) {
	in := now - c.since
	counted := c.phase == PhaseNSGreen
	out.Observe(PressSeen{Phase: c.phase, InPhase: in, Counted: counted})
	if !counted {
		return // documented: a press outside North-South green is ignored
	}
	if in >= c.cfg.NSMinGreen {
		c.enter(PhaseNSYellow, now, out)
		return
	}
	if !c.pressed {
		c.pressed = true
		out.SetTimer(TimerPhase, c.deadline()-now)
	}
}

func (c *Controller) enter(p Phase, now time.Duration, out *sim.Effects) {
	c.phase, c.since, c.pressed = p, now, false
	out.SetTimer(TimerPhase, c.deadline()-now)
	c.sendColours(out)
	ew, ns := p.Colours()
	out.Observe(State{Phase: p, EW: ew, NS: ns})
}

// sendColours commands both lights, the one that must be red first.
func (c *Controller) sendColours(out *sim.Effects) {
	ew, ns := c.phase.Colours()
	if ew == Red {
		out.Send(c.cfg.EW, ew)
		out.Send(c.cfg.NS, ns)
	} else {
		out.Send(c.cfg.NS, ns)
		out.Send(c.cfg.EW, ew)
	}
}
