package sim_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-sim/flotilla/sim"
)

// lockState is a toy two-process "mutual exclusion" protocol with a known
// bug: a process checks the other's flag and only then raises its own, so
// both can pass the check before either flag is up.
type lockState struct {
	PC   [2]uint8 // 0 idle, 1 checking, 2 passed the check, 3 critical section
	Flag [2]bool
}

func lockNext(s lockState) []sim.Transition[lockState] {
	var ts []sim.Transition[lockState]
	for i := range 2 {
		n := s
		switch s.PC[i] {
		case 0:
			n.PC[i] = 1
			ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d tries", i), To: n})
		case 1:
			if !s.Flag[1-i] {
				n.PC[i] = 2
				ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d sees the flag down", i), To: n})
			}
		case 2:
			n.PC[i] = 3
			n.Flag[i] = true
			ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d raises its flag and enters", i), To: n})
		case 3:
			n.PC[i] = 0
			n.Flag[i] = false
			ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d leaves", i), To: n})
		}
	}
	return ts
}

var mutex = sim.Invariant[lockState]{Name: "mutual exclusion", Check: func(s lockState) error {
	if s.PC[0] == 3 && s.PC[1] == 3 {
		return errors.New("both processes in the critical section")
	}
	return nil
}}

func TestExploreFindsShortestCounterexample(t *testing.T) {
	sp, err := sim.Explore(lockState{}, lockNext, mutex)
	var v *sim.Violation
	if !errors.As(err, &v) {
		t.Fatalf("Explore = %v, want a *Violation", err)
	}
	if v.Kind != "invariant" || v.Name != "mutual exclusion" {
		t.Fatalf("violation %s %q, want invariant \"mutual exclusion\"", v.Kind, v.Name)
	}
	// Each process needs three events to get in; no shorter path exists.
	if len(v.Path) != 6 {
		t.Fatalf("counterexample has %d events, want the shortest (6):\n%v", len(v.Path), err)
	}
	// Replaying the path from the initial state must end in the bad state.
	s := lockState{}
	for _, ev := range v.Path {
		found := false
		for _, tr := range lockNext(s) {
			if tr.Event == ev {
				s, found = tr.To, true
				break
			}
		}
		if !found {
			t.Fatalf("event %q of the counterexample is not enabled in %+v", ev, s)
		}
	}
	if diff := cmp.Diff(v.State, any(s)); diff != "" {
		t.Fatalf("replayed path ends elsewhere (-reported +replayed):\n%s", diff)
	}
	if len(v.States) != 7 || v.States[0] != any(lockState{}) || v.States[6] != v.State {
		t.Fatalf("States along the path: %v", v.States)
	}
	if mutex.Check(s) == nil {
		t.Fatalf("replayed state %+v does not violate the invariant", s)
	}
	msg := err.Error()
	for _, want := range []string{"mutual exclusion", "counterexample (6 events", "p0 tries", "both processes"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error text lacks %q:\n%s", want, msg)
		}
	}
	if sp.Len() == 0 {
		t.Fatal("partial state space is empty")
	}
}

func TestExploreFixedProtocolPasses(t *testing.T) {
	// Raising the flag before checking removes the bug (and adds a
	// deadlock: both flags up, both waiting), which the explorer reports.
	next := func(s lockState) []sim.Transition[lockState] {
		var ts []sim.Transition[lockState]
		for i := range 2 {
			n := s
			switch s.PC[i] {
			case 0:
				n.PC[i], n.Flag[i] = 1, true
				ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d raises", i), To: n})
			case 1:
				if !s.Flag[1-i] {
					n.PC[i] = 3
					ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d enters", i), To: n})
				}
			case 3:
				n.PC[i], n.Flag[i] = 0, false
				ts = append(ts, sim.Transition[lockState]{Event: fmt.Sprintf("p%d leaves", i), To: n})
			}
		}
		return ts
	}
	_, err := sim.Explore(lockState{}, next, mutex)
	var v *sim.Violation
	if !errors.As(err, &v) || v.Kind != "deadlock" {
		t.Fatalf("Explore = %v, want a deadlock", err)
	}
	if diff := cmp.Diff([]string{"p0 raises", "p1 raises"}, v.Path); diff != "" {
		t.Fatalf("deadlock path (-want +got):\n%s", diff)
	}
	x := sim.Explorer[lockState]{Next: next, Invariants: []sim.Invariant[lockState]{mutex}, AllowDeadlock: true}
	sp, err := x.Explore(lockState{})
	if err != nil {
		t.Fatalf("with deadlocks allowed: %v", err)
	}
	// Reachable: both idle; one raised (x2); one in, other idle (x2);
	// both raised; one in, other raised (x2) = 8.
	if sp.Len() != 8 {
		t.Fatalf("states = %d, want 8", sp.Len())
	}
}

func TestExploreCountsGrid(t *testing.T) {
	type pt struct{ X, Y int }
	next := func(p pt) []sim.Transition[pt] {
		var ts []sim.Transition[pt]
		if p.X < 9 {
			ts = append(ts, sim.Transition[pt]{Event: "right", To: pt{p.X + 1, p.Y}})
		}
		if p.Y < 9 {
			ts = append(ts, sim.Transition[pt]{Event: "down", To: pt{p.X, p.Y + 1}})
		}
		if len(ts) == 0 {
			ts = append(ts, sim.Transition[pt]{Event: "home", To: pt{}})
		}
		return ts
	}
	sp, err := sim.Explore(pt{}, next)
	if err != nil {
		t.Fatal(err)
	}
	if sp.Len() != 100 || sp.Transitions() != 2*9*10+1 || sp.Depth() != 18 {
		t.Fatalf("states %d transitions %d depth %d, want 100, 181, 18", sp.Len(), sp.Transitions(), sp.Depth())
	}
	i, ok := sp.Index(pt{3, 2})
	if !ok || len(sp.Path(i)) != 5 {
		t.Fatalf("Index(3,2) = %d,%v path %v", i, ok, sp.Path(i))
	}
	if err := sp.AlwaysCanReach("home", func(p pt) bool { return p == pt{} }); err != nil {
		t.Fatal(err)
	}
}

func TestExploreReachability(t *testing.T) {
	// A ring 0→1→2→3→0 with a trap: from 2 one can fall into 9, which only
	// loops on itself.
	next := func(s int) []sim.Transition[int] {
		switch s {
		case 9:
			return []sim.Transition[int]{{Event: "stuck", To: 9}}
		case 2:
			return []sim.Transition[int]{{Event: "step", To: 3}, {Event: "fall", To: 9}}
		}
		return []sim.Transition[int]{{Event: "step", To: (s + 1) % 4}}
	}
	sp, err := sim.Explore(0, next)
	if err != nil {
		t.Fatal(err)
	}
	err = sp.AlwaysCanReach("back to 0", func(s int) bool { return s == 0 })
	var v *sim.Violation
	if !errors.As(err, &v) || v.Kind != "reachability" {
		t.Fatalf("AlwaysCanReach = %v, want a reachability violation", err)
	}
	if diff := cmp.Diff([]string{"step", "step", "fall"}, v.Path); diff != "" {
		t.Fatalf("path (-want +got):\n%s", diff)
	}
	if v.State != any(9) {
		t.Fatalf("state %v, want 9", v.State)
	}
	if err := sp.AlwaysCanReach("the ring", func(s int) bool { return s == 9 || s == 3 }); err != nil {
		t.Fatalf("every state reaches 3 or 9: %v", err)
	}
}

func TestExploreEdgeInvariantAndLimit(t *testing.T) {
	next := func(s int) []sim.Transition[int] {
		ts := []sim.Transition[int]{{Event: "inc", To: s + 1}}
		if s == 4 {
			ts = append(ts, sim.Transition[int]{Event: "jump", To: s + 3})
		}
		return ts
	}
	x := sim.Explorer[int]{
		Next: next,
		EdgeInvariants: []sim.EdgeInvariant[int]{{Name: "steps of one", Check: func(from int, t sim.Transition[int]) error {
			if t.To-from > 1 {
				return fmt.Errorf("%d to %d", from, t.To)
			}
			return nil
		}}},
		MaxStates: 1000,
	}
	_, err := x.Explore(0)
	var v *sim.Violation
	if !errors.As(err, &v) || v.Kind != "edge invariant" {
		t.Fatalf("Explore = %v, want an edge invariant violation", err)
	}
	if diff := cmp.Diff([]string{"inc", "inc", "inc", "inc", "jump"}, v.Path); diff != "" {
		t.Fatalf("path (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]any{0, 1, 2, 3, 4, 7}, v.States); diff != "" {
		t.Fatalf("states (-want +got):\n%s", diff)
	}
	if !strings.Contains(err.Error(), "5. jump -> 7") {
		t.Fatalf("error text lacks the last step:\n%v", err)
	}
	x.EdgeInvariants = nil
	sp, err := x.Explore(0)
	if !errors.Is(err, sim.ErrStateLimit) {
		t.Fatalf("unbounded counter: err = %v, want ErrStateLimit", err)
	}
	if sp.Len() != 1000 {
		t.Fatalf("stopped at %d states, want 1000", sp.Len())
	}
}

func ExampleExplore() {
	// A counter modulo 5 that may also reset: every state is safe and can
	// get back to zero.
	next := func(n int) []sim.Transition[int] {
		return []sim.Transition[int]{{Event: "inc", To: (n + 1) % 5}, {Event: "reset", To: 0}}
	}
	below5 := sim.Invariant[int]{Name: "below 5", Check: func(n int) error {
		if n >= 5 {
			return fmt.Errorf("%d", n)
		}
		return nil
	}}
	sp, err := sim.Explore(0, next, below5)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sp.Len(), "states,", sp.Transitions(), "transitions")
	fmt.Println(sp.AlwaysCanReach("zero", func(n int) bool { return n == 0 }))
	// Output:
	// 5 states, 10 transitions
	// <nil>
}

// BenchmarkExplore measures the explorer on a 300×300 grid (90 000 states,
// two transitions each) with one invariant and a reachability check.
func BenchmarkExplore(b *testing.B) {
	type pt struct{ X, Y int16 }
	const n = 300
	next := func(p pt) []sim.Transition[pt] {
		return []sim.Transition[pt]{
			{Event: "right", To: pt{(p.X + 1) % n, p.Y}},
			{Event: "down", To: pt{p.X, (p.Y + 1) % n}},
		}
	}
	inv := sim.Invariant[pt]{Name: "in range", Check: func(p pt) error {
		if p.X >= n || p.Y >= n {
			return errors.New("out of range")
		}
		return nil
	}}
	states := 0
	for b.Loop() {
		sp, err := sim.Explore(pt{}, next, inv)
		if err != nil {
			b.Fatal(err)
		}
		if err := sp.AlwaysCanReach("origin", func(p pt) bool { return p == pt{} }); err != nil {
			b.Fatal(err)
		}
		states = sp.Len()
	}
	b.ReportMetric(float64(states), "states/op")
	b.ReportMetric(float64(states)*float64(b.N)/b.Elapsed().Seconds(), "states/s")
}
