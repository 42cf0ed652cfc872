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
	cfg, _ := intersectionConfig(seed, net, presses)
	cfg.Checkers = checkers
	return sim.New(cfg)
}

// intersectionConfig is the simulation config of intersection. Its
// controller is wrapped in a commandLog that records every colour command
// sent; the returned log is shared by all the controller's incarnations.
func intersectionConfig(seed uint64, net sim.Network, presses []time.Duration) (sim.Config, *commands) {
	cfg := tf.DefaultConfig()
	cmds := &commands{last: [2]tf.Colour{tf.Red, tf.Red}}
	return sim.Config{
		Seed:    seed,
		Nodes:   4,
		Network: net,
		Codec:   tf.Codec{},
		New: func(id sim.NodeID) sim.Machine {
			switch id {
			case tf.ControllerID:
				return &commandLog{Controller: tf.NewController(cfg), cmds: cmds}
			case tf.EWLightID, tf.NSLightID:
				return tf.NewLight()
			}
			return tf.NewButton(tf.ControllerID, presses...)
		},
	}, cmds
}

// commands is the latest colour the controller (any incarnation) sent to
// each light, and the first moment that pair was ever conflicting.
type commands struct {
	last     [2]tf.Colour // EW, NS
	conflict error
}

// commandLog wraps the controller and checks, after every single send, that
// the latest commands to the two lights are never both non-red: the
// commanded state, in the order the datagrams leave.
type commandLog struct {
	*tf.Controller
	cmds *commands
}

func (m *commandLog) Step(ev sim.Event, out *sim.Effects) {
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

// commandChecker fails once the controller has commanded a conflict.
func commandChecker(cmds *commands) sim.Checker {
	return sim.Checker{Name: "commanded state", Step: func(*sim.Sim) error { return cmds.conflict }}
}

// controller returns the controller of s, or nil while it is down.
func controller(s *sim.Sim) *tf.Controller {
	if m, ok := s.Machine(tf.ControllerID).(*commandLog); ok {
		return m.Controller
	}
	return nil
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

// faultScenario is a network fault model, a controller crash schedule,
// controller clock drift and button presses, all drawn from the seed.
type faultScenario struct {
	net     sim.Network
	drift   int32 // the controller's, in ppm
	down    outages
	faults  []sim.Fault
	presses []time.Duration
}

// outages are the intervals [crashed at, restarted at] of the controller.
type outages [][2]time.Duration

// within is how much of [a, b] the controller was down.
func (o outages) within(a, b time.Duration) time.Duration {
	var d time.Duration
	for _, iv := range o {
		if lo, hi := max(a, iv[0]), min(b, iv[1]); hi > lo {
			d += hi - lo
		}
	}
	return d
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
	sc.drift = int32(r.IntN(4001)) - 2000
	at := time.Duration(0)
	for {
		at += time.Duration(r.Int64N(int64(5 * time.Minute)))
		if at >= run {
			break
		}
		down := time.Duration(r.Int64N(int64(20 * time.Second)))
		sc.down = append(sc.down, [2]time.Duration{at, at + down})
		sc.faults = append(sc.faults,
			sim.Fault{At: at, Kind: sim.FaultCrash, Node: tf.ControllerID},
			sim.Fault{At: at + down, Kind: sim.FaultRestart, Node: tf.ControllerID})
		at += down
	}
	for range r.IntN(60) {
		sc.presses = append(sc.presses, time.Duration(r.Int64N(int64(run))))
	}
	return sc
}

// conflictChecker fails when the lights actually show two non-red colours
// for longer than one refresh period (in global time, given the
// controller's drift) plus the network's largest delay, plus one refresh
// period for every datagram the network dropped meanwhile, plus the time the
// controller was down meanwhile (a dead controller cannot repair a light).
// worst records the longest conflict seen without drops or outages.
func conflictChecker(cfg tf.Config, drift int32, maxDelay time.Duration, down outages, worst *time.Duration) sim.Checker {
	refresh := time.Duration(int64(cfg.Refresh) * 1_000_000 / (1_000_000 + int64(drift)))
	var (
		inConflict bool
		start      time.Duration
		drops0     uint64
	)
	check := func(s *sim.Sim, over bool) error {
		now := s.Now()
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
			allowed := refresh + maxDelay + time.Duration(drops)*refresh + dt
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

// faultConfig is the whole scenario of a seed for sim.Sim.Run: the fault
// phase, then healing and the liveness requirement that both directions get
// green again, then a check that the lights show what is commanded.
func faultConfig(seed uint64, run time.Duration, worst *time.Duration) (sim.Config, faultScenario) {
	sc := drawScenario(seed, run)
	cfg, cmds := intersectionConfig(seed, sc.net, sc.presses)
	cfg.DriftPPM = []int32{sc.drift}
	cfg.Faults = sc.faults
	cfg.Duration = run
	tcfg := tf.DefaultConfig()
	cfg.Checkers = []sim.Checker{
		commandChecker(cmds),
		conflictChecker(tcfg, sc.drift, sc.net.MaxDelay(), sc.down, worst),
		{Name: "lights agree", End: func(s *sim.Sim) error {
			c := controller(s)
			if c == nil {
				return errors.New("controller down at the end")
			}
			ew, ns := c.Phase().Colours()
			// The calm network's delay is below 160 ms; allow a refresh.
			if localNow(s, sc.drift)-c.Since() < 2*time.Second {
				return errors.New("the run ended too close to a phase change to compare")
			}
			if got := s.Machine(tf.EWLightID).(*tf.Light).Colour(); got != ew {
				return fmt.Errorf("EW light shows %v, controller commands %v", got, ew)
			}
			if got := s.Machine(tf.NSLightID).(*tf.Light).Colour(); got != ns {
				return fmt.Errorf("NS light shows %v, controller commands %v", got, ns)
			}
			return nil
		}},
	}
	// After healing, north-south and then east-west must turn green again
	// within two cycles; the run ends 3 s into that east-west green.
	var sawNS bool
	cfg.Liveness = &sim.Liveness{Name: "both directions green again", Within: 4 * time.Minute, Cond: func(s *sim.Sim) bool {
		if s.Machine(tf.NSLightID).(*tf.Light).Colour() == tf.Green {
			sawNS = true
		}
		c := controller(s)
		return sawNS && c != nil && c.Phase() == tf.PhaseEWGreen && localNow(s, sc.drift)-c.Since() >= 3*time.Second
	}}
	return cfg, sc
}

// localNow is the controller's clock, given its drift.
func localNow(s *sim.Sim, drift int32) time.Duration {
	return s.Now() + time.Duration(int64(s.Now())*int64(drift)/1_000_000)
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
		cfg, sc := faultConfig(seed, run, &worst)
		res := sim.New(cfg).Run()
		if res.Err != nil {
			return fmt.Errorf("%v, drift %d ppm: %w", sc.net, sc.drift, res.Err)
		}
		if simtest.Single() {
			t.Logf("seed %d: %v, drift %d ppm, %d crashes, %d presses, worst fault-free conflict %v, stats %+v",
				seed, sc.net, sc.drift, len(sc.down), len(sc.presses), worst, res.Stats)
		}
		if seed%8 == 1 || simtest.Single() {
			if _, err := sim.CheckDeterminism(func() sim.Config {
				var w time.Duration
				cfg, _ := faultConfig(seed, run, &w)
				return cfg
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

// The checkers must catch what they are there for.
func TestCheckersCatch(t *testing.T) {
	var worst time.Duration
	tcfg := tf.DefaultConfig()

	// A rogue green while the controller hangs outlasts the bound.
	cfg, _ := intersectionConfig(1, sim.Network{}, nil)
	cfg.Checkers = []sim.Checker{conflictChecker(tcfg, 0, 0, nil, &worst)}
	s := sim.New(cfg)
	if err := s.RunFor(50 * time.Second); err != nil { // NS green now
		t.Fatal(err)
	}
	s.Inject(tf.EWLightID, tf.Green)
	s.Pause(tf.ControllerID)
	// Checkers run after events; let the button make some.
	for i := range 60 {
		s.InjectAt(s.Now()+time.Duration(i)*time.Second, tf.ButtonID, tf.Press{})
	}
	err := s.RunFor(time.Minute)
	var f *sim.Failure
	if !errors.As(err, &f) || f.Checker != "lights conflict" {
		t.Fatalf("rogue green with a hung controller: %v, want a lights conflict failure", err)
	}

	// Without the hang, the next refresh repairs the light in time.
	s = sim.New(cfg)
	cfg.Checkers[0] = conflictChecker(tcfg, 0, 0, nil, &worst)
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
	cmds := &commands{last: [2]tf.Colour{tf.Red, tf.Red}}
	m := &commandLog{Controller: tf.NewController(tcfg), cmds: cmds}
	var out sim.Effects
	m.Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: tf.ControllerID}}, &out)
	out.Reset()
	m.Step(sim.Event{Kind: sim.EventTimer, Now: tcfg.Clearance, Timer: tf.TimerPhase}, &out) // EW green
	if cmds.conflict != nil || cmds.last != [2]tf.Colour{tf.Green, tf.Red} {
		t.Fatalf("after EW green: commands %v, conflict %v", cmds.last, cmds.conflict)
	}
	out.Reset()
	out.Send(tf.NSLightID, tf.Green) // a rogue send, ahead of the refresh's
	m.Step(sim.Event{Kind: sim.EventTimer, Now: tcfg.Clearance + tcfg.Refresh, Timer: tf.TimerRefresh}, &out)
	if cmds.conflict == nil {
		t.Fatal("the command log missed NS green while EW was last told green")
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
