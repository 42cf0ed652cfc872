package kvsm_test

import (
	"flag"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

var raftBugs = flag.Bool("raftbugs", false, "run the tests of known raft issues (expected to fail until raft is fixed)")

// TestRaftSingleNodeCommitBeforeSync is a known raft issue, reported rather
// than fixed here: a one-member cluster commits (and applies) an entry the
// moment it appends it, before the journal write is durable. If the node
// crashes before the sync completes, the entry is gone after restart and a
// different entry takes its index, which raft's own checker reports as a
// committed entry that changed. No client can see it (the host holds every
// reply until the sync completes), so clusters of three or more are
// unaffected; with one member the checker fails. Run with -raftbugs.
func TestRaftSingleNodeCommitBeforeSync(t *testing.T) {
	if !*raftBugs {
		t.Skip("known raft issue; run with -raftbugs")
	}
	s := sim.New(sim.Config{
		Seed: 1, Nodes: 1, SyncLatency: 5 * time.Millisecond, Codec: kvsm.ReplicaCodec{},
		New: func(id sim.NodeID) sim.Machine {
			return kvsm.NewReplica(id, kvsm.ReplicaConfig{Raft: raft.Config{Peers: []sim.NodeID{0}}})
		},
		Checkers: []sim.Checker{raft.Checker(func(m sim.Machine) *raft.Node { return m.(*kvsm.Replica).Raft() })},
	})
	if err := s.RunUntil(func(s *sim.Sim) bool { return s.Machine(0).(*kvsm.Replica).IsLeader() }, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.RunFor(50 * time.Millisecond); err != nil { // the no-op entry is durable
		t.Fatal(err)
	}
	s.Inject(0, set(1, 1, "k", "lost"))
	s.Step()
	s.Crash(0) // before the 5ms sync completes
	s.Restart(0)
	if err := s.RunUntil(func(s *sim.Sim) bool { return s.Up(0) && s.Machine(0).(*kvsm.Replica).IsLeader() }, time.Second); err != nil {
		t.Fatal(err)
	}
	s.Inject(0, set(2, 1, "k", "other"))
	if err := s.RunFor(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
