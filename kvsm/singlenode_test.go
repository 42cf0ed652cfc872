package kvsm_test

import (
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// TestRaftSingleNodeCommitsOnlyDurable: a one-member cluster commits (and
// applies) an entry only once the journal write holding it is durable. The
// node crashes after appending an entry but before its 5ms sync completes,
// restarts, and takes a different entry at that index; raft's checker
// fails the run if the lost entry had been committed.
func TestRaftSingleNodeCommitsOnlyDurable(t *testing.T) {
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
	if r := s.Machine(0).(*kvsm.Replica).Raft(); r.Commit() == r.LastIndex() {
		t.Fatalf("entry %d committed before its write is durable", r.Commit())
	}
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
