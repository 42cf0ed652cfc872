// Package trafficfsm is the traffic-light controller, the two lights and the
// push button, written as pure sim.Machine values so that the simulator and
// the real-network runtime run the very same code.
//
// # Behaviour
//
// The intersection has an East-West light, a North-South light and a push
// button. The cycle is
//
//	EW green / NS red    30 s
//	EW yellow / NS red    5 s
//	EW red / NS green    60 s (see the button)
//	EW red / NS yellow    5 s
//	back to EW green
//
// A button press while North-South is green ends its green early: at once if
// it has been green for 30 s or more, otherwise as soon as it has been green
// for 30 s. A press while North-South is not green is ignored (it is not
// remembered for the next North-South green): the button only shortens a
// green that is already showing.
//
// # Nodes and wire protocol
//
// Node ids are fixed: ControllerID (0), EWLightID (1), NSLightID (2),
// ButtonID (3).
// A light accepts a datagram of exactly "R", "Y" or "G" and never answers;
// the button sends the datagram "press". Codec maps the message types Colour
// and Press to exactly those bytes and rejects everything else.
//
// # Lost datagrams and restarts
//
// Datagrams get lost, so the controller re-sends both lights their current
// colour every Config.Refresh (1 s): a lost command heals within one refresh
// period plus the network delay. When a phase changes, the light that must
// turn red is commanded first.
//
// The controller is volatile and journals nothing. On every start, first
// boot or restart, it enters the all-red clearance phase: it commands both
// lights red and waits Config.Clearance (default 10 s: at least the yellow
// time plus one refresh plus the largest network delay we plan for) before
// the first green.
// Whatever the previous incarnation had commanded — a green, a yellow, or
// datagrams still in flight — has either arrived and been overridden by red,
// or been overtaken by the refresh, before anything turns green again.
// Journaling the phase would not make a restart safer: the downtime is
// unknown (the runtime's monotonic clock starts afresh with each process),
// so resuming mid-phase could stretch or cut a green arbitrarily, while the
// clearance phase is safe whatever happened before. It costs at most one
// Clearance of all-red after a crash.
//
// # Observations
//
// The controller observes a State on every phase change and a PressSeen for
// every press it receives; a light observes the Colour it shows at start and
// whenever the colour changes; the button observes a Press for every press
// it sends.
package trafficfsm
