package trafficfsm

import (
	"slices"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Light is a traffic light as a machine for the simulator: it starts red and
// shows the last colour it was sent. It never answers and ignores any other
// message. The real light is cmd/light.
type Light struct {
	colour Colour
}

var _ sim.Machine = (*Light)(nil)

// NewLight returns a light that has not started.
func NewLight() *Light { return &Light{} }

// Colour is what the light shows now (zero before it starts).
func (l *Light) Colour() Colour { return l.colour }

// Step handles one event.
func (l *Light) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		l.colour = Red
		out.Observe(Red)
	case sim.EventMessage:
		c, ok := ev.Msg.(Colour)
		if !ok || !c.Valid() || l.colour == 0 {
			return
		}
		if c != l.colour {
			l.colour = c
			out.Observe(c)
		}
	}
}

// Button is the push button as a machine for the simulator. It sends
// a Press to the controller at each time of its schedule (node time since
// its start; presses scheduled before a restart are not repeated), and for
// every Press it receives from anywhere (a test injects them with
// sim.Sim.Inject). It observes a Press for each press it sends.
type Button struct {
	controller sim.NodeID
	schedule   []time.Duration
	next       int
}

var _ sim.Machine = (*Button)(nil)

// TimerPress is the button's timer for its next scheduled press.
const TimerPress = "press"

// NewButton returns a button that presses the controller at the given node
// times. The schedule is copied and sorted.
func NewButton(controller sim.NodeID, schedule ...time.Duration) *Button {
	s := slices.Clone(schedule)
	slices.Sort(s)
	return &Button{controller: controller, schedule: s}
}

// Step handles one event.
func (b *Button) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		b.next = 0
		for b.next < len(b.schedule) && b.schedule[b.next] < ev.Now {
			b.next++
		}
		b.arm(ev.Now, out)
	case sim.EventTimer:
		if ev.Timer != TimerPress {
			return
		}
		for b.next < len(b.schedule) && b.schedule[b.next] <= ev.Now {
			b.next++
			b.press(out)
		}
		b.arm(ev.Now, out)
	case sim.EventMessage:
		if _, ok := ev.Msg.(Press); ok {
			b.press(out)
		}
	}
}

func (b *Button) press(out *sim.Effects) {
	out.Send(b.controller, Press{})
	out.Observe(Press{})
}

func (b *Button) arm(now time.Duration, out *sim.Effects) {
	if b.next < len(b.schedule) {
		out.SetTimer(TimerPress, b.schedule[b.next]-now)
	}
}
