package sim

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// plantedBug builds a probe cluster whose "planted" checker fails only
// once node 2 has been down and the link 0->1 has been cut (by a partition
// or a one-way block), in either order. A "decoy" End checker fails every
// run that gets to the end: a shrinker that does not insist on the same
// checker would happily shrink to the empty schedule.
func plantedBug(sc Schedule) Config {
	var crashed, cut bool
	cfg := Config{
		Nodes: sc.Nodes,
		New: func(id NodeID) Machine {
			return &probe{id: id, n: sc.Nodes, period: 50 * time.Millisecond}
		},
		Checkers: []Checker{
			{Name: "planted", Step: func(s *Sim) error {
				if s.Nodes() < 3 {
					return nil
				}
				crashed = crashed || !s.Up(2)
				cut = cut || s.links[0*s.Nodes()+1]&linkCut != 0
				if crashed && cut {
					return errors.New("node 2 crashed and 0 lost its link to 1")
				}
				return nil
			}},
			{Name: "decoy", End: func(*Sim) error { return errors.New("always fails at the end") }},
		},
	}
	sc.Apply(&cfg)
	return cfg
}

func plantedSchedule(seed uint64) Schedule {
	cfg := Config{Seed: seed, Nodes: 5}
	plan := AllFaults(Network{Delay: time.Millisecond, Jitter: time.Millisecond}, 5)
	plan.Faults.Every = 150 * time.Millisecond
	plan.Apply(&cfg, 10*time.Second)
	return ScheduleOf(cfg)
}

func TestShrinkPlantedBug(t *testing.T) {
	sc := plantedSchedule(7)
	if len(sc.Faults) < 40 {
		t.Fatalf("want a big schedule to start from, got %d faults", len(sc.Faults))
	}
	var reported []Schedule
	opts := ShrinkOptions{Build: plantedBug, MinNodes: 1, MaxRuns: 400,
		Progress: func(sc Schedule, f *Failure) { reported = append(reported, sc) }}
	r, err := Shrink(sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(reported) == 0 || !cmp.Equal(reported[len(reported)-1], r.Schedule) {
		t.Errorf("progress reported %d schedules, the last not the result", len(reported))
	}
	opts.Progress = nil
	t.Logf("%d faults, %v, %d nodes -> %d faults, %v, %d nodes in %d runs: %v",
		len(sc.Faults), sc.Duration, sc.Nodes, len(r.Schedule.Faults), r.Schedule.Duration, r.Schedule.Nodes, r.Runs, r.Schedule.Faults)
	if r.Failure.Checker != "planted" {
		t.Fatalf("shrunk to a failure of %q; want the original checker", r.Failure.Checker)
	}
	if len(r.Schedule.Faults) > 3 {
		t.Errorf("shrunk schedule has %d faults; want at most 3 (a crash of 2 and a cut of 0->1): %v", len(r.Schedule.Faults), r.Schedule.Faults)
	}
	var crash, cut bool
	for _, f := range r.Schedule.Faults {
		crash = crash || (f.Kind == FaultCrash || f.Kind == FaultCrashTorn) && f.Node == 2
		cut = cut || f.Kind == FaultPartition && (f.Side&1 != 0) != (f.Side&2 != 0) || f.Kind == FaultBlock && f.Node == 0 && f.Peer == 1
	}
	if !crash || !cut {
		t.Errorf("shrunk schedule lacks the crash of node 2 or the cut of 0->1: %v", r.Schedule.Faults)
	}
	if r.Schedule.Nodes != 3 {
		t.Errorf("shrunk to %d nodes; want 3 (the bug needs node 2)", r.Schedule.Nodes)
	}
	if r.Schedule.Duration >= sc.Duration/2 {
		t.Errorf("duration only cut from %v to %v", sc.Duration, r.Schedule.Duration)
	}
	if r.Schedule.Network.Loss != 0 || r.Schedule.DriftPPM != nil || r.Schedule.SyncLatency != 0 {
		t.Errorf("network faults, drift or sync latency kept though irrelevant: %+v", r.Schedule)
	}
	if r.Runs > opts.MaxRuns {
		t.Errorf("%d runs; bound was %d", r.Runs, opts.MaxRuns)
	}

	// The result replays: the shrunk schedule alone fails the same way.
	res := New(plantedBug(r.Schedule)).Run()
	var f *Failure
	if !errors.As(res.Err, &f) || f.Checker != "planted" {
		t.Fatalf("replaying the shrunk schedule: %v", res.Err)
	}

	// And shrinking is deterministic.
	r2, err := Shrink(sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r.Schedule, r2.Schedule); diff != "" || r.Runs != r2.Runs {
		t.Errorf("second shrink differs (runs %d vs %d):\n%s", r.Runs, r2.Runs, diff)
	}
}

func TestShrinkRespectsRunBound(t *testing.T) {
	sc := plantedSchedule(7)
	r, err := Shrink(sc, ShrinkOptions{Build: plantedBug, MaxRuns: 5})
	if err != nil {
		t.Fatal(err)
	}
	if r.Runs != 5 || !r.Exhausted {
		t.Errorf("runs %d exhausted %v; want 5 and true", r.Runs, r.Exhausted)
	}
	if r.Failure == nil || r.Failure.Checker != "planted" {
		t.Errorf("result must still be a failing schedule: %+v", r.Failure)
	}
}

func TestShrinkNeedsAFailure(t *testing.T) {
	pass := func(sc Schedule) Config {
		cfg := Config{Nodes: sc.Nodes, New: func(id NodeID) Machine { return &probe{id: id, n: sc.Nodes} }}
		sc.Apply(&cfg)
		return cfg
	}
	_, err := Shrink(Schedule{Seed: 1, Nodes: 2, Duration: time.Second}, ShrinkOptions{Build: pass})
	if !errors.Is(err, ErrNoFailure) {
		t.Fatalf("err = %v; want ErrNoFailure", err)
	}
}

func TestScheduleResize(t *testing.T) {
	// Nodes 0..4 and clients 5..7 (sim ids).
	sc := Schedule{Nodes: 5, Clients: 3, DriftPPM: []int32{1, 2, 3, 4, 5, 6, 7, 8}, Faults: []Fault{
		{Kind: FaultPartition, Side: 0b00011000}, // only nodes 3, 4 on one side: gone
		{Kind: FaultPartition, Side: 0b00001001}, // {0} | rest
		{Kind: FaultPartition, Side: 0b10100001}, // {0, client 0, client 2}
		{Kind: FaultCrash, Node: 3},
		{Kind: FaultCrash, Node: 1},
		{Kind: FaultBlock, Node: 0, Peer: 4},
		{Kind: FaultClog, Node: 2, Peer: 0},
		{Kind: FaultBlock, Node: 6, Peer: 1}, // client 1 -> node 1
		{Kind: FaultBlock, Node: 7, Peer: 1}, // client 2 -> node 1: gone with client 2
		{Kind: FaultHeal},
	}}
	got := sc.resize(3, 2)
	// Nodes 0..2, clients renumbered 5->3, 6->4.
	want := Schedule{Nodes: 3, Clients: 2, DriftPPM: []int32{1, 2, 3, 6, 7}, Faults: []Fault{
		{Kind: FaultPartition, Side: 0b00001},
		{Kind: FaultPartition, Side: 0b01001},
		{Kind: FaultCrash, Node: 1},
		{Kind: FaultClog, Node: 2, Peer: 0},
		{Kind: FaultBlock, Node: 4, Peer: 1},
		{Kind: FaultHeal},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
	// Without clients, only nodes matter.
	got = Schedule{Nodes: 4, Faults: []Fault{{Kind: FaultCrash, Node: 3}, {Kind: FaultPause, Node: 2}}}.resize(3, 0)
	if diff := cmp.Diff(Schedule{Nodes: 3, Faults: []Fault{{Kind: FaultPause, Node: 2}}}, got); diff != "" {
		t.Error(diff)
	}
}

func TestReproRoundTrip(t *testing.T) {
	sc := plantedSchedule(3)
	sc.Clients = 4
	in := Repro{System: "\x00faults", Schedule: sc, Checker: "planted", Error: "boom \"faults\": \"\x00faults\""}
	var buf bytes.Buffer
	if err := WriteRepro(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadRepro(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Error(diff)
	}
}

func TestReadReproRejects(t *testing.T) {
	for _, tc := range []struct{ json, want string }{
		{`{"system":"x","seed":1,"nodes":0,"duration":"1s","network":{},"faults":[]}`, "nodes 0"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"soon","network":{},"faults":[]}`, "bad duration"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"1s","network":{"loss":2},"faults":[]}`, "not a probability"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"1s","network":{},"faults":[{"at":"1s","kind":"crash","node":5}]}`, "node 5 not in 0..1"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"1s","network":{},"faults":[{"at":"1s","kind":"melt","node":0}]}`, "unknown kind"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"1s","network":{},"faults":[{"at":"1s","kind":"block","node":0}]}`, "needs peer"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"1s","network":{},"faults":[],"extra":1}`, "unknown field"},
		{`{"system":"x","seed":1,"nodes":2,"duration":"1s","network":{},"faults":[{"at":"1s","kind":"partition","side":[7]}]}`, "node 7"},
	} {
		_, err := ReadRepro(strings.NewReader(tc.json))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadRepro(%s) = %v; want an error containing %q", tc.json, err, tc.want)
		}
	}
}

func FuzzReadRepro(f *testing.F) {
	var buf bytes.Buffer
	sc := plantedSchedule(5)
	sc.Faults = sc.Faults[:6]
	if err := WriteRepro(&buf, Repro{System: "pingpong", Schedule: sc}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"nodes":3,"duration":"1s","faults":[{"at":"0s","kind":"heal"}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadRepro(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever is accepted writes back and reads back the same.
		var out bytes.Buffer
		if err := WriteRepro(&out, r); err != nil {
			t.Fatal(err)
		}
		r2, err := ReadRepro(&out)
		if err != nil {
			t.Fatalf("rereading %s: %v", out.Bytes(), err)
		}
		if diff := cmp.Diff(r, r2); diff != "" {
			t.Fatal(diff)
		}
		// And is safe to schedule.
		for _, f := range r.Schedule.Faults {
			_ = fmt.Sprint(f)
		}
	})
}

// BenchmarkShrinkPlantedBug is the whole shrink of the planted bug: 5
// nodes, 10 s, about 130 faults down to 2.
func BenchmarkShrinkPlantedBug(b *testing.B) {
	sc := plantedSchedule(7)
	runs := 0
	for b.Loop() {
		r, err := Shrink(sc, ShrinkOptions{Build: plantedBug, MaxRuns: 400})
		if err != nil {
			b.Fatal(err)
		}
		runs = r.Runs
	}
	b.ReportMetric(float64(runs), "sims/shrink")
}
