package trafficfsm_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
	tf "github.com/flotilla-sim/flotilla/trafficfsm"
)

// intersection builds a simulation of the four nodes with the default
// configuration: controller 0, lights 1 and 2, button 3 pressing at the given
// times.
func intersection(seed uint64, net sim.Network, presses []time.Duration, checkers ...sim.Checker) *sim.Sim {
	cfg := tf.DefaultConfig()
	return sim.New(sim.Config{
		Seed:    seed,
		Nodes:   4,
		Network: net,
		Codec:   tf.Codec{},
		New: func(id sim.NodeID) sim.Machine {
			switch id {
			case tf.ControllerID:
				return tf.NewController(cfg)
			case tf.EWLightID, tf.NSLightID:
				return tf.NewLight()
			}
			return tf.NewButton(tf.ControllerID, presses...)
		},
		Checkers: checkers,
	})
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

// faultScenario draws a network fault model and a controller crash schedule
// from the seed.
type faultScenario struct {
	net     sim.Network
	crashes [][2]time.Duration // [crash at, down for]
	presses []time.Duration
}

func drawScenario(seed uint64, run time.Duration) faultScenario {
	r := rand.New(rand.NewPCG(seed, 0x7ea1f1c))
	maybe := func(p float64, x float64) float64 {
		if r.Float64() < p {
			return x
		}
		return 0
	}
	var sc faultScenario
	sc.net = sim.Network{
		Delay:     time.Duration(r.Int64N(int64(80 * time.Millisecond))),
		Jitter:    time.Duration(r.Int64N(int64(80 * time.Millisecond))),
		Loss:      maybe(0.7, r.Float64()*0.4),
		Duplicate: maybe(0.5, r.Float64()*0.3),
		Reorder:   maybe(0.5, r.Float64()*0.5),
		TailProb:  maybe(0.5, r.Float64()*0.1),
		TailDelay: time.Duration(r.Int64N(int64(300 * time.Millisecond))),
	}
	at := time.Duration(0)
	for {
		at += time.Duration(r.Int64N(int64(5 * time.Minute)))
		if at >= run {
			break
		}
		down := time.Duration(r.Int64N(int64(20 * time.Second)))
		sc.crashes = append(sc.crashes, [2]time.Duration{at, down})
		at += down
	}
	for range r.IntN(60) {
		sc.presses = append(sc.presses, time.Duration(r.Int64N(int64(run))))
	}
	return sc
}

// outages records when the test crashed and restarted the controller, so
// the conflict checker can allow for the time nobody repaired the lights.
type outages [][2]time.Duration // [crashed at, restarted at (-1 while down)]

func (o *outages) crash(s *sim.Sim) {
	s.Crash(tf.ControllerID)
	*o = append(*o, [2]time.Duration{s.Now(), -1})
}

func (o *outages) restart(s *sim.Sim) {
	s.Restart(tf.ControllerID)
	(*o)[len(*o)-1][1] = s.Now()
}

// within is how much of [a, b] the controller was down.
func (o outages) within(a, b time.Duration) time.Duration {
	var d time.Duration
	for _, iv := range o {
		end := iv[1]
		if end < 0 {
			end = b
		}
		if lo, hi := max(a, iv[0]), min(b, end); hi > lo {
			d += hi - lo
		}
	}
	return d
}

// conflictChecker fails when the lights actually show two non-red colours
// for longer than the refresh period plus the network's largest delay, plus
// one refresh period for every datagram the network dropped meanwhile, plus
// the time the controller was down meanwhile (a dead controller cannot
// repair a light). It also checks the commanded state. worst records the
// longest conflict seen without drops or outages.
func conflictChecker(cfg tf.Config, maxDelay time.Duration, down *outages, worst *time.Duration) sim.Checker {
	var (
		inConflict bool
		start      time.Duration
		drops0     uint64
	)
	check := func(s *sim.Sim, over bool) error {
		now := s.Now()
		if c, ok := s.Machine(tf.ControllerID).(*tf.Controller); ok {
			if ew, ns := c.Phase().Colours(); ew != tf.Red && ns != tf.Red {
				return fmt.Errorf("controller commands %v/%v", ew, ns)
			}
		}
		ew := s.Machine(tf.EWLightID).(*tf.Light).Colour()
		ns := s.Machine(tf.NSLightID).(*tf.Light).Colour()
		conflict := ew != tf.Red && ns != tf.Red && !over
		if conflict && !inConflict {
			inConflict, start, drops0 = true, now, s.Stats().Dropped
		}
		if inConflict {
			lasted := now - start
			drops := s.Stats().Dropped - drops0
			dt := down.within(start, now)
			allowed := cfg.Refresh + maxDelay + time.Duration(drops)*cfg.Refresh + dt
			if lasted > allowed {
				return fmt.Errorf("lights show %v and %v since %v (%v; allowed %v with %d drops, controller down %v)",
					ew, ns, start, lasted, allowed, drops, dt)
			}
			if drops == 0 && dt == 0 {
				*worst = max(*worst, lasted)
			}
			if !conflict {
				inConflict = false
			}
		}
		return nil
	}
	return sim.Checker{
		Name: "lights conflict",
		Step: func(s *sim.Sim) error { return check(s, false) },
		End:  func(s *sim.Sim) error { return check(s, true) },
	}
}

// Under loss, duplication, delay with a tail, reordering and controller
// crashes: the commanded state is never conflicting, the lights' conflicts
// are bounded, and once the faults end the intersection cycles again.
func TestSimFaults(t *testing.T) {
	const run = 30 * time.Minute
	cfg := tf.DefaultConfig()
	simtest.Sweep(t, 64, func(seed uint64) error {
		sc := drawScenario(seed, run)
		var (
			worst time.Duration
			down  outages
		)
		s := intersection(seed, sc.net, sc.presses, conflictChecker(cfg, sc.net.MaxDelay(), &down, &worst))
		for _, c := range sc.crashes {
			if err := s.RunFor(c[0] - s.Now()); err != nil {
				return fmt.Errorf("%v: %w", sc.net, err)
			}
			down.crash(s)
			if err := s.RunFor(c[1]); err != nil {
				return fmt.Errorf("%v: %w", sc.net, err)
			}
			down.restart(s)
		}
		if err := s.RunFor(run - s.Now()); err != nil {
			return fmt.Errorf("%v: %w", sc.net, err)
		}
		// Liveness: heal the network; within two cycles both directions
		// get green, and the lights show what the controller commands.
		s.SetNetwork(sc.net.Calm())
		for _, want := range []sim.NodeID{tf.EWLightID, tf.NSLightID, tf.EWLightID} {
			err := s.RunUntil(func(s *sim.Sim) bool {
				return s.Machine(want).(*tf.Light).Colour() == tf.Green
			}, 3*time.Minute)
			if err != nil {
				return fmt.Errorf("after healing, light %d never green: %w", want, err)
			}
		}
		if err := s.RunFor(2 * time.Second); err != nil {
			return err
		}
		c := s.Machine(tf.ControllerID).(*tf.Controller)
		ew, ns := c.Phase().Colours()
		if got := s.Machine(tf.EWLightID).(*tf.Light).Colour(); got != ew && s.Now()-c.Since() > sc.net.MaxDelay() {
			return fmt.Errorf("EW light shows %v, controller commands %v", got, ew)
		}
		if got := s.Machine(tf.NSLightID).(*tf.Light).Colour(); got != ns && s.Now()-c.Since() > sc.net.MaxDelay() {
			return fmt.Errorf("NS light shows %v, controller commands %v", got, ns)
		}
		if simtest.Single() {
			t.Logf("seed %d: %v, %d crashes, %d presses, worst fault-free conflict %v, stats %+v",
				seed, sc.net, len(sc.crashes), len(sc.presses), worst, s.Stats())
		}
		return s.Result().Err
	})
}

// The conflict checker must catch a light left showing a wrong colour for
// longer than the bound.
func TestConflictCheckerCatches(t *testing.T) {
	var (
		worst time.Duration
		down  outages
	)
	cfg := tf.DefaultConfig()
	s := intersection(1, sim.Network{}, nil, conflictChecker(cfg, 0, &down, &worst))
	if err := s.RunFor(50 * time.Second); err != nil { // NS green now
		t.Fatal(err)
	}
	s.Inject(tf.EWLightID, tf.Green) // a rogue datagram
	s.Pause(tf.ControllerID)         // and the controller hangs
	// Checkers run after events; let the button make some.
	for i := range 60 {
		s.InjectAt(s.Now()+time.Duration(i)*time.Second, tf.ButtonID, tf.Press{})
	}
	err := s.RunFor(time.Minute)
	var f *sim.Failure
	if !errors.As(err, &f) || f.Checker != "lights conflict" {
		t.Fatalf("RunFor = %v, want a lights conflict failure", err)
	}
	// Without the hang, the next refresh repairs the light in time.
	s = intersection(1, sim.Network{}, nil, conflictChecker(cfg, 0, &down, &worst))
	if err := s.RunFor(50 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.Inject(tf.EWLightID, tf.Green)
	if err := s.RunFor(time.Minute); err != nil {
		t.Fatalf("refresh did not repair a rogue green: %v", err)
	}
	if worst <= 0 || worst > cfg.Refresh {
		t.Fatalf("rogue green lasted %v, want (0, %v]", worst, cfg.Refresh)
	}
}
