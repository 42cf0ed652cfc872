package raft

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// TestLeaderWritesInParallelWithFollowers: with every sync taking 5ms and
// every message 1ms, a new entry reaches the followers 1ms after it is
// proposed — while the leader's own write is still syncing — and commits
// once a quorum holds it durably: 1ms there, 5ms of the followers' syncs,
// 1ms back, 7ms in all. Were the leader's AppendEntries held until its own
// sync, the followers would see the entry at 6ms and it would commit at
// 12ms.
func TestLeaderWritesInParallelWithFollowers(t *testing.T) {
	c := newCluster(1, 3, func(sc *sim.Config, _ *Config) {
		sc.Network = sim.Network{Delay: time.Millisecond}
		sc.SyncLatency = 5 * time.Millisecond
	})
	l, err := c.waitLeader(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.s.RunFor(200 * time.Millisecond); err != nil { // the no-op commits
		t.Fatal(err)
	}
	idx := c.node(l).LastIndex() + 1
	t0 := c.s.Now()
	c.s.Inject(l, Propose{ID: 1, Data: []byte("x")})
	reached := func(*sim.Sim) bool {
		for i := range c.n {
			if id := sim.NodeID(i); id != l && c.node(id).LastIndex() >= idx {
				return true
			}
		}
		return false
	}
	if err := c.s.RunUntil(reached, time.Second); err != nil {
		t.Fatal(err)
	}
	if at := c.s.Now() - t0; at != time.Millisecond {
		t.Errorf("a follower got entry %d %v after the proposal, want 1ms (before the leader's 5ms sync)", idx, at)
	}
	if err := c.s.RunUntil(func(*sim.Sim) bool { return c.node(l).Commit() >= idx }, time.Second); err != nil {
		t.Fatal(err)
	}
	if at := c.s.Now() - t0; at != 7*time.Millisecond {
		t.Errorf("entry %d committed %v after the proposal, want 7ms", idx, at)
	}
}
