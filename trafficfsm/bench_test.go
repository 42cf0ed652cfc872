package trafficfsm_test

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

// BenchmarkExploreController measures the exhaustive check with 1 ms ticks
// (140 000 states).
func BenchmarkExploreController(b *testing.B) {
	states := 0
	for b.Loop() {
		sp, err := trafficfsm.ExploreController(trafficfsm.DefaultConfig(), trafficfsm.ExploreOptions{Step: time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		states = sp.Len()
	}
	b.ReportMetric(float64(states), "states/op")
	b.ReportMetric(float64(states)*float64(b.N)/b.Elapsed().Seconds(), "states/s")
}

// BenchmarkSimIntersection measures one hour of simulated intersection under
// loss, duplication and reordering: how much faster than real time the
// simulator runs it.
func BenchmarkSimIntersection(b *testing.B) {
	const hour = time.Hour
	var events uint64
	for b.Loop() {
		s := intersection(1, sim.Network{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.1, Duplicate: 0.05, Reorder: 0.1},
			[]time.Duration{50 * time.Second, 20 * time.Minute, 40 * time.Minute})
		if err := s.RunFor(hour); err != nil {
			b.Fatal(err)
		}
		events += s.Stats().Events
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(hour.Seconds()*float64(b.N)/secs, "virtual-s/s")
	b.ReportMetric(float64(events)/secs, "events/s")
}
