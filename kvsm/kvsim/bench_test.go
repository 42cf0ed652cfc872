package kvsim

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// benchScenario runs the standard scenario (5 replicas, 5 clients, 10s of
// faults under plan, healing, liveness, porcupine check) once per
// iteration and reports committed calls per virtual second and how much
// faster than real time the simulation ran, check included.
func benchScenario(b *testing.B, plan func(seed uint64) sim.Plan) {
	var calls int
	var virtual, real time.Duration
	for i := 0; b.Loop(); i++ {
		seed := uint64(i + 1)
		c := New(Options{Seed: seed, Nodes: 5})
		c.ApplyPlan(plan(seed), 10*time.Second)
		start := time.Now()
		res := sim.New(c.Config).Run()
		real += time.Since(start)
		if res.Err != nil {
			b.Fatalf("seed %d: %v", seed, res.Err)
		}
		calls += c.Tracker.Total()
		virtual += res.Virtual
	}
	b.ReportMetric(float64(calls)/virtual.Seconds(), "calls/vsec")
	b.ReportMetric(virtual.Seconds()/real.Seconds(), "virtual/real")
}

func BenchmarkScenarioNoFaults(b *testing.B) {
	benchScenario(b, func(uint64) sim.Plan { return sim.Plan{Network: BaseNetwork} })
}

func BenchmarkScenarioAllFaults(b *testing.B) {
	benchScenario(b, func(uint64) sim.Plan { return sim.AllFaults(BaseNetwork, 5) })
}

func BenchmarkScenarioSwarm(b *testing.B) {
	benchScenario(b, func(seed uint64) sim.Plan { return sim.SwarmPlan(seed, BaseNetwork, 5) })
}

// BenchmarkThroughput saturates 5 replicas with 20 clients that never
// think, no faults, for 5 virtual seconds: committed calls per virtual
// second are then bounded by the cluster (1ms±1ms links), not the users.
func BenchmarkThroughput(b *testing.B) {
	var calls int
	var virtual, real time.Duration
	for i := 0; b.Loop(); i++ {
		c := New(Options{Seed: uint64(i + 1), Nodes: 5, Clients: 20, Think: 1})
		c.ApplyPlan(sim.Plan{Network: BaseNetwork}, 5*time.Second)
		start := time.Now()
		res := sim.New(c.Config).Run()
		real += time.Since(start)
		if res.Err != nil {
			b.Fatal(res.Err)
		}
		calls += c.Tracker.Total()
		virtual += res.Virtual
	}
	b.ReportMetric(float64(calls)/virtual.Seconds(), "calls/vsec")
	b.ReportMetric(virtual.Seconds()/real.Seconds(), "virtual/real")
}
