package sim_test

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
)

// BenchmarkSimPingPong5 measures the engine on the example machine with 5
// nodes, faults off and tracing off: delivered events per wall second.
func BenchmarkSimPingPong5(b *testing.B) {
	var events uint64
	var virtual time.Duration
	b.ReportAllocs()
	for b.Loop() {
		s := sim.New(sim.Config{Seed: 1, Nodes: 5, New: pingpong.New(5), Network: pingpong.BaseNetwork})
		s.RunFor(100 * time.Second)
		events += s.Stats().Events
		virtual += s.Now()
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(events)/sec, "events/s")
	b.ReportMetric(virtual.Seconds()/sec, "virtual-s/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
}
