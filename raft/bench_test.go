package raft

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// BenchmarkStep measures the cost of one handled message for a leader with
// 4 followers under a steady stream of proposals: each iteration is one
// proposal at the leader, its AppendEntries at 4 followers and their 4
// replies at the leader (9 events), with effects dispatched by hand.
func BenchmarkStep(b *testing.B) {
	const n = 5
	cfg := testConfig(n)
	cfg.Peers = peers(n)
	cfg.SnapshotEvery = 4096 // a long-running node compacts its log
	cfg.NewApp = func() Application { return &nopApp{} }
	nodes := make([]*Node, n)
	var out sim.Effects
	for i := range nodes {
		nodes[i] = New(sim.NodeID(i), cfg)
		nodes[i].Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{ID: sim.NodeID(i), Rand: rand.New(rand.NewPCG(1, uint64(i)))}}, &out)
		out.Reset()
	}
	type env struct {
		from, to sim.NodeID
		m        sim.Message
	}
	var q, next []env
	var compact []sim.NodeID
	pump := func(from sim.NodeID) {
		for _, s := range out.Sends {
			if s.To >= 0 {
				next = append(next, env{from, s.To, s.Msg})
			}
		}
		for _, t := range out.Timers {
			if t.Name == timerCompact && !t.Cancel {
				compact = append(compact, from)
			}
		}
		out.Reset()
	}
	nodes[0].Step(sim.Event{Kind: sim.EventTimer, Timer: timerElection, Now: time.Hour}, &out)
	pump(0)
	for len(next) > 0 {
		q, next = next, q[:0]
		for _, e := range q {
			nodes[e.to].Step(sim.Event{Kind: sim.EventMessage, From: e.from, Msg: e.m, Now: time.Hour}, &out)
			pump(e.to)
		}
	}
	if nodes[0].Role() != Leader {
		b.Fatal("no leader")
	}
	data := make([]byte, 64)
	msgs := 0
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		nodes[0].Step(sim.Event{Kind: sim.EventMessage, From: sim.External, Msg: Propose{ID: uint64(i), Data: data}, Now: time.Hour + time.Duration(i)*time.Millisecond}, &out)
		msgs++
		pump(0)
		for len(next) > 0 {
			q, next = next, q[:0]
			for _, e := range q {
				nodes[e.to].Step(sim.Event{Kind: sim.EventMessage, From: e.from, Msg: e.m, Now: time.Hour + time.Duration(i)*time.Millisecond}, &out)
				msgs++
				pump(e.to)
			}
		}
		for _, id := range compact {
			nodes[id].Step(sim.Event{Kind: sim.EventTimer, Timer: timerCompact}, &out)
			out.Reset()
		}
		compact = compact[:0]
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	if nodes[0].Commit() < uint64(b.N) {
		b.Fatalf("commit %d after %d proposals", nodes[0].Commit(), b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(msgs), "allocs/msg")
}

type nopApp struct{ n uint64 }

func (a *nopApp) Apply(uint64, []byte) { a.n++ }
func (a *nopApp) Snapshot() []byte     { return fmt.Appendf(nil, "%d", a.n) }
func (a *nopApp) Restore(b []byte)     { fmt.Sscan(string(b), &a.n) }
