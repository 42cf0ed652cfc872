package trafficsim_test

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm/trafficsim"
)

// BenchmarkScenarioAllFaults measures one seed of the standard scenario
// with every fault on and a 30-minute fault phase, checkers included: how
// much faster than real time a sweep runs, per core.
func BenchmarkScenarioAllFaults(b *testing.B) {
	plan := sim.AllFaults(trafficsim.BaseNetwork, trafficsim.Nodes)
	var events uint64
	var virtual time.Duration
	seed := uint64(0)
	for b.Loop() {
		seed++
		res := sim.New(trafficsim.Scenario(seed, trafficsim.Nodes, plan, 30*time.Minute)).Run()
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		events += res.Stats.Events
		virtual += res.Virtual
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N)/secs, "seeds/s")
	b.ReportMetric(virtual.Seconds()/secs, "virtual-s/s")
	b.ReportMetric(float64(events)/secs, "events/s")
}
