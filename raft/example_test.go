package raft_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// counter is a tiny replicated state machine: it counts applied entries.
type counter struct{ applied []string }

func (c *counter) Apply(index uint64, data []byte) { c.applied = append(c.applied, string(data)) }
func (c *counter) Snapshot() []byte                { return nil }
func (c *counter) Restore([]byte)                  {}

// Example runs a three-node cluster in the simulator: a leader is elected,
// a proposal is committed, and every node applies it.
func Example() {
	cfg := raft.Config{Peers: []sim.NodeID{0, 1, 2}, PreVote: true, CheckQuorum: true}
	apps := map[sim.NodeID]*counter{}
	s := sim.New(sim.Config{
		Seed:     1,
		Nodes:    3,
		Network:  sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond},
		Codec:    raft.Codec{},
		Checkers: []sim.Checker{raft.Checker(nil)},
		New: func(id sim.NodeID) sim.Machine {
			c := cfg
			c.NewApp = func() raft.Application { apps[id] = &counter{}; return apps[id] }
			return raft.New(id, c)
		},
	})
	leader := func() sim.NodeID {
		for i := range sim.NodeID(3) {
			if s.Machine(i).(*raft.Node).Role() == raft.Leader {
				return i
			}
		}
		return raft.None
	}
	if err := s.RunUntil(func(*sim.Sim) bool { return leader() != raft.None }, time.Second); err != nil {
		fmt.Println(err)
		return
	}
	s.Inject(leader(), raft.Propose{ID: 1, Data: []byte("hello")})
	if err := s.RunFor(100 * time.Millisecond); err != nil {
		fmt.Println(err)
		return
	}
	for i := range sim.NodeID(3) {
		fmt.Println(i, apps[i].applied)
	}
	// Output:
	// 0 [hello]
	// 1 [hello]
	// 2 [hello]
}
