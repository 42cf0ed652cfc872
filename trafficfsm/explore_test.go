package trafficfsm_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

func TestExploreController(t *testing.T) {
	for _, restarts := range []bool{false, true} {
		sp, err := trafficfsm.ExploreController(trafficfsm.DefaultConfig(), trafficfsm.ExploreOptions{Restarts: restarts})
		if err != nil {
			t.Fatalf("restarts=%v: %v", restarts, err)
		}
		// One state per second of each phase: clearance 10, EW green 30,
		// EW yellow 5, NS green 60 without a press and 30 with one
		// pending, NS yellow 5. A press after 30 s of NS green leads to
		// the NS yellow state a timed change leads to.
		const want = 10 + 30 + 5 + 60 + 30 + 5
		if sp.Len() != want {
			t.Errorf("restarts=%v: %d states, want %d", restarts, sp.Len(), want)
		}
		t.Logf("restarts=%v: %d states, %d transitions, depth %d", restarts, sp.Len(), sp.Transitions(), sp.Depth())
	}
}

// A controller whose timings break the rules must be caught, with a
// shortest counterexample.
func TestExploreControllerFindsBrokenConfig(t *testing.T) {
	cfg := trafficfsm.DefaultConfig()
	cfg.NSGreen = 20 * time.Second // shorter than the press minimum: inconsistent
	_, err := trafficfsm.ExploreController(cfg, trafficfsm.ExploreOptions{})
	var v *sim.Violation
	if !errors.As(err, &v) {
		t.Fatalf("NSGreen < NSMinGreen passed: %v", err)
	}
	if !strings.Contains(v.Name, "north-south green") {
		t.Fatalf("violation %q, want a north-south green rule:\n%v", v.Name, err)
	}
	// clearance 10 ticks, 30 + 5 more, then 20 ticks of NS green: the
	// shortest way to see the short green is all ticks.
	if len(v.Path) != 10+30+5+20 {
		t.Fatalf("counterexample of %d events, want %d:\n%v", len(v.Path), 65, err)
	}
}
