package trafficfsm_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
	tf "github.com/flotilla-sim/flotilla/trafficfsm"
	"github.com/flotilla-sim/flotilla/trafficfsm/trafficsim"
)

// intersection builds a simulation of the four nodes with the default
// configuration: controller 0, lights 1 and 2, button 3 pressing at the given
// times.
func intersection(seed uint64, net sim.Network, presses []time.Duration, checkers ...sim.Checker) *sim.Sim {
	cfg, _ := trafficsim.Intersection(seed, net, presses)
	cfg.Checkers = checkers
	return sim.New(cfg)
}

type stateAt struct {
	At    time.Duration
	State tf.State
}

type colourAt struct {
	At     time.Duration
	Colour tf.Colour
}

func states(s *sim.Sim) []stateAt {
	var out []stateAt
	for _, o := range s.Observations() {
		if st, ok := o.Value.(tf.State); ok && o.Node == tf.ControllerID {
			out = append(out, stateAt{o.At, st})
		}
	}
	return out
}

func colours(s *sim.Sim, light sim.NodeID) []colourAt {
	var out []colourAt
	for _, o := range s.Observations() {
		if c, ok := o.Value.(tf.Colour); ok && o.Node == light {
			out = append(out, colourAt{o.At, c})
		}
	}
	return out
}

func presses(s *sim.Sim) []time.Duration {
	var out []time.Duration
	for _, o := range s.Observations() {
		if _, ok := o.Value.(tf.Press); ok && o.Node == tf.ButtonID {
			out = append(out, o.At)
		}
	}
	return out
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// With a fixed 3 ms network and no faults, every change happens at the
// millisecond the rules say.
func TestSimExactTimings(t *testing.T) {
	const d = 3 * time.Millisecond
	s := intersection(1, sim.Network{Delay: d}, []time.Duration{
		50 * time.Second,  // 5 s into NS green (45 s): ends at 30 s, 75 s
		160 * time.Second, // 45 s into NS green (115 s): at once
		170 * time.Second, // during EW green: ignored
		230 * time.Second, // exactly 30 s into NS green (200.003 s): at once
	})
	if err := s.RunFor(270 * time.Second); err != nil {
		t.Fatal(err)
	}
	st := func(at time.Duration, p tf.Phase) stateAt {
		ew, ns := p.Colours()
		return stateAt{at, tf.State{Phase: p, EW: ew, NS: ns}}
	}
	want := []stateAt{
		st(0, tf.PhaseClear),
		st(10*time.Second, tf.PhaseEWGreen),
		st(40*time.Second, tf.PhaseEWYellow),
		st(45*time.Second, tf.PhaseNSGreen),
		st(75*time.Second, tf.PhaseNSYellow),
		st(80*time.Second, tf.PhaseEWGreen),
		st(110*time.Second, tf.PhaseEWYellow),
		st(115*time.Second, tf.PhaseNSGreen),
		st(160*time.Second+d, tf.PhaseNSYellow),
		st(165*time.Second+d, tf.PhaseEWGreen),
		st(195*time.Second+d, tf.PhaseEWYellow),
		st(200*time.Second+d, tf.PhaseNSGreen),
		st(230*time.Second+d, tf.PhaseNSYellow),
		st(235*time.Second+d, tf.PhaseEWGreen),
		st(265*time.Second+d, tf.PhaseEWYellow),
	}
	if diff := cmp.Diff(want, states(s)); diff != "" {
		t.Fatalf("controller states (-want +got):\n%s", diff)
	}
	// Each light shows each commanded colour exactly d after the command.
	for _, light := range []sim.NodeID{tf.EWLightID, tf.NSLightID} {
		wantC := []colourAt{{0, tf.Red}}
		for _, w := range want {
			c := w.State.EW
			if light == tf.NSLightID {
				c = w.State.NS
			}
			if c != wantC[len(wantC)-1].Colour {
				wantC = append(wantC, colourAt{w.At + d, c})
			}
		}
		if diff := cmp.Diff(wantC, colours(s, light)); diff != "" {
			t.Errorf("light %d (-want +got):\n%s", light, diff)
		}
	}
	var seen []tf.PressSeen
	for _, o := range s.Observations() {
		if p, ok := o.Value.(tf.PressSeen); ok {
			seen = append(seen, p)
		}
	}
	wantSeen := []tf.PressSeen{
		{Phase: tf.PhaseNSGreen, InPhase: 5*time.Second + d, Counted: true},
		{Phase: tf.PhaseNSGreen, InPhase: 45*time.Second + d, Counted: true},
		{Phase: tf.PhaseEWGreen, InPhase: 5 * time.Second, Counted: false},
		{Phase: tf.PhaseNSGreen, InPhase: 30 * time.Second, Counted: true},
	}
	if diff := cmp.Diff(wantSeen, seen); diff != "" {
		t.Errorf("presses seen (-want +got):\n%s", diff)
	}
}

// checkRules checks the controller's phase changes against the specified
// rules, given when every press reached the controller and when the run
// ended.
func checkRules(cfg tf.Config, sts []stateAt, arrivals []time.Duration, end time.Duration) error {
	if len(sts) == 0 || sts[0].State.Phase != tf.PhaseClear || sts[0].At != 0 {
		return fmt.Errorf("does not start with clearance at 0: %v", sts)
	}
	for i, cur := range sts {
		ew, ns := cur.State.Phase.Colours()
		if cur.State.EW != ew || cur.State.NS != ns || (ew != tf.Red && ns != tf.Red) {
			return fmt.Errorf("at %v: bad state %+v", cur.At, cur.State)
		}
		var want time.Duration
		switch cur.State.Phase {
		case tf.PhaseClear:
			want = cfg.Clearance
		case tf.PhaseEWGreen:
			want = cfg.EWGreen
		case tf.PhaseEWYellow, tf.PhaseNSYellow:
			want = cfg.Yellow
		case tf.PhaseNSGreen:
			want = cfg.NSGreen
			// The first press to arrive during the green decides.
			j, _ := slices.BinarySearch(arrivals, cur.At)
			if j < len(arrivals) && arrivals[j] < cur.At+cfg.NSGreen {
				want = max(arrivals[j]-cur.At, cfg.NSMinGreen)
			}
		default:
			return fmt.Errorf("at %v: phase %v", cur.At, cur.State.Phase)
		}
		if i+1 == len(sts) {
			if end-cur.At > want {
				return fmt.Errorf("%v since %v still on at %v, want it over after %v", cur.State.Phase, cur.At, end, want)
			}
			break
		}
		nxt := sts[i+1]
		if got := nxt.At - cur.At; got != want {
			return fmt.Errorf("%v from %v lasted %v, want %v (presses %v)", cur.State.Phase, cur.At, got, want, arrivals)
		}
		wantNext := tf.PhaseEWGreen
		switch cur.State.Phase {
		case tf.PhaseEWGreen:
			wantNext = tf.PhaseEWYellow
		case tf.PhaseEWYellow:
			wantNext = tf.PhaseNSGreen
		case tf.PhaseNSGreen:
			wantNext = tf.PhaseNSYellow
		}
		if nxt.State.Phase != wantNext {
			return fmt.Errorf("%v followed by %v at %v", cur.State.Phase, nxt.State.Phase, nxt.At)
		}
	}
	return nil
}

// Random press schedules (including bursts, presses on phase boundaries
// and none at all) against the rules, on every cycle.
func TestSimPressRulesRapid(t *testing.T) {
	// Presses are sent on whole milliseconds and arrive half a millisecond
	// later, so they never tie with a phase change (whole seconds).
	const d = 500 * time.Microsecond
	const run = 10 * time.Minute
	rapid.Check(t, func(rt *rapid.T) {
		// Presses stop 10 s before the end so every one of them arrives.
		base := rapid.SliceOfN(rapid.Int64Range(0, int64((run-20*time.Second)/time.Millisecond)), 0, 40).Draw(rt, "presses_ms")
		var ps []time.Duration
		for _, p := range base {
			ps = append(ps, ms(p))
			// Bursts: sometimes a few more presses right after.
			n := rapid.IntRange(0, 3).Draw(rt, "burst")
			for k := range n {
				ps = append(ps, ms(p+int64(k+1)*rapid.Int64Range(1, 2000).Draw(rt, "gap_ms")))
			}
		}
		s := intersection(1, sim.Network{Delay: d}, ps)
		if err := s.RunFor(run); err != nil {
			rt.Fatal(err)
		}
		sent := presses(s)
		arrivals := make([]time.Duration, len(sent))
		for i, p := range sent {
			arrivals[i] = p + d
		}
		if len(sent) != len(ps) {
			rt.Fatalf("button sent %d presses, schedule has %d", len(sent), len(ps))
		}
		if err := checkRules(tf.DefaultConfig(), states(s), arrivals, s.Now()); err != nil {
			rt.Fatal(err)
		}
	})
}

// The rule checker itself must reject wrong histories.
func TestCheckRulesRejects(t *testing.T) {
	cfg := tf.DefaultConfig()
	st := func(at time.Duration, p tf.Phase) stateAt {
		ew, ns := p.Colours()
		return stateAt{at, tf.State{Phase: p, EW: ew, NS: ns}}
	}
	good := []stateAt{st(0, tf.PhaseClear), st(10*time.Second, tf.PhaseEWGreen), st(40*time.Second, tf.PhaseEWYellow),
		st(45*time.Second, tf.PhaseNSGreen), st(75*time.Second, tf.PhaseNSYellow)}
	if err := checkRules(cfg, good, []time.Duration{50 * time.Second}, 76*time.Second); err != nil {
		t.Fatalf("good history rejected: %v", err)
	}
	for name, tc := range map[string]struct {
		sts      []stateAt
		arrivals []time.Duration
		end      time.Duration
	}{
		"press ignored":          {good[:4], []time.Duration{50 * time.Second}, 76 * time.Second},
		"no press but shortened": {good, nil, 76 * time.Second},
		"late press not at once": {append(good[:4:4], st(105*time.Second, tf.PhaseNSYellow)), []time.Duration{85 * time.Second}, 106 * time.Second},
		"no press but long":      {append(good[:4:4], st(106*time.Second, tf.PhaseNSYellow)), nil, 107 * time.Second},
		"EW green too long":      {good[:2], nil, 41 * time.Second},
		"press too early":        {append(good[:4:4], st(60*time.Second, tf.PhaseNSYellow)), []time.Duration{50 * time.Second}, 61 * time.Second},
	} {
		if err := checkRules(cfg, tc.sts, tc.arrivals, tc.end); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Under loss, duplication, delay with a tail, reordering, controller clock
// drift and controller crashes: the commanded state is never conflicting,
// the lights' conflicts are bounded, and once the faults end the
// intersection cycles again. Every eighth seed is also run twice to check
// that it is deterministic.
func TestSimFaults(t *testing.T) {
	const run = 30 * time.Minute
	simtest.Sweep(t, 64, func(seed uint64) error {
		var worst time.Duration
		st := trafficsim.DrawSwarm(seed, run)
		st.Worst = &worst
		res := sim.New(st.Config()).Run()
		if res.Err != nil {
			return fmt.Errorf("%v, drift %d ppm: %w", st.Network, st.DriftPPM[0], res.Err)
		}
		if simtest.Single() {
			crashes := 0
			for _, f := range st.Faults {
				if f.Kind == sim.FaultCrash {
					crashes++
				}
			}
			t.Logf("seed %d: %v, drift %d ppm, %d crashes, %d presses, worst fault-free conflict %v, stats %+v",
				seed, st.Network, st.DriftPPM[0], crashes, len(st.Presses), worst, res.Stats)
		}
		if seed%8 == 1 || simtest.Single() {
			if _, err := sim.CheckDeterminism(func() sim.Config { return trafficsim.SwarmScenario(seed, run) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// The checkers must catch what they are there for, and excuse what the
// controller cannot help.
func TestCheckersCatch(t *testing.T) {
	var worst time.Duration
	tcfg := tf.DefaultConfig()
	withConflict := func() *sim.Sim {
		cfg, _ := trafficsim.Intersection(1, sim.Network{}, nil)
		cfg.Checkers = []sim.Checker{trafficsim.ConflictChecker(tcfg, &worst)}
		return sim.New(cfg)
	}

	// A rogue green while the controller's repairs are held back (a
	// clogged link, which the allowance does not excuse) outlasts the bound.
	s := withConflict()
	if err := s.RunFor(50 * time.Second); err != nil { // NS green now
		t.Fatal(err)
	}
	s.Inject(tf.EWLightID, tf.Green)
	s.Clog(tf.ControllerID, tf.EWLightID)
	err := s.RunFor(time.Minute)
	var f *sim.Failure
	if !errors.As(err, &f) || f.Checker != "lights conflict" {
		t.Fatalf("rogue green with the controller's repairs held: %v, want a lights conflict failure", err)
	}

	// A controller that is down cannot repair a light: a rogue green while
	// it is paused is excused for as long as the pause, and the first
	// refresh after it resumes repairs the light.
	s = withConflict()
	if err := s.RunFor(50 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Pause(tf.ControllerID)
	s.Inject(tf.EWLightID, tf.Green)
	// Checkers run after events; let the button make some.
	for i := range 20 {
		s.InjectAt(s.Now()+time.Duration(i)*time.Second, tf.ButtonID, tf.Press{})
	}
	if err := s.RunFor(20 * time.Second); err != nil {
		t.Fatalf("rogue green while the controller is paused: %v", err)
	}
	if got := trafficsim.LightColour(s, tf.EWLightID); got != tf.Green {
		t.Fatalf("EW shows %v during the pause, want the rogue green", got)
	}
	s.Resume(tf.ControllerID)
	if err := s.RunFor(2 * time.Second); err != nil {
		t.Fatalf("after resuming: %v", err)
	}
	if got := trafficsim.LightColour(s, tf.EWLightID); got != tf.Red {
		t.Fatalf("EW shows %v after the controller resumed, want red", got)
	}

	// Without the hang, the next refresh repairs the light in time.
	worst = 0
	s = withConflict()
	if err := s.RunFor(50 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Inject(tf.EWLightID, tf.Green)
	if err := s.RunFor(time.Minute); err != nil {
		t.Fatalf("refresh did not repair a rogue green: %v", err)
	}
	if worst <= 0 || worst > tcfg.Refresh {
		t.Fatalf("rogue green lasted %v, want (0, %v]", worst, tcfg.Refresh)
	}

	// A green sent to one light while the other was last told green is
	// caught by the command log, even in the middle of an event.
	cmds := trafficsim.NewCommands()
	m := trafficsim.NewCommandLog(tf.NewController(tcfg), cmds)
	var out sim.Effects
	m.Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: tf.ControllerID}}, &out)
	out.Reset()
	m.Step(sim.Event{Kind: sim.EventTimer, Now: tcfg.Clearance, Timer: tf.TimerPhase}, &out) // EW green
	if ew, ns := cmds.Last(); cmds.Conflict() != nil || ew != tf.Green || ns != tf.Red {
		t.Fatalf("after EW green: commands %v %v, conflict %v", ew, ns, cmds.Conflict())
	}
	out.Reset()
	out.Send(tf.NSLightID, tf.Green) // a rogue send, ahead of the refresh's
	m.Step(sim.Event{Kind: sim.EventTimer, Now: tcfg.Clearance + tcfg.Refresh, Timer: tf.TimerRefresh}, &out)
	if cmds.Conflict() == nil {
		t.Fatal("the command log missed NS green while EW was last told green")
	}
	if err := cmds.Checker().Step(nil); err == nil {
		t.Fatal("the commanded-state checker passed a commanded conflict")
	}
}

// A press injected into the button machine (as a test or a host would)
// reaches the controller like a scheduled one.
func TestSimInjectedPress(t *testing.T) {
	s := intersection(1, sim.Network{Delay: time.Millisecond}, nil)
	if err := s.RunFor(50 * time.Second); err != nil { // 5 s into NS green
		t.Fatal(err)
	}
	s.Inject(tf.ButtonID, tf.Press{})
	if err := s.RunFor(27 * time.Second); err != nil {
		t.Fatal(err)
	}
	if got := presses(s); len(got) != 1 || got[0] != 50*time.Second {
		t.Fatalf("button pressed at %v, want once at 50s", got)
	}
	sts := states(s)
	last := sts[len(sts)-1]
	if last.State.Phase != tf.PhaseNSYellow || last.At != 75*time.Second {
		t.Fatalf("last state %+v, want ns-yellow at 75s (30 s of NS green)", last)
	}
}
