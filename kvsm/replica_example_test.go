package kvsm_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// Three replicas and one client in the simulator: the user's calls are
// injected into the client machine, which finds the leader, and each
// completed call is observed.
func ExampleReplica() {
	servers := []sim.NodeID{0, 1, 2}
	s := sim.New(sim.Config{
		Seed:    1,
		Nodes:   4,
		Network: sim.Network{Delay: time.Millisecond},
		Codec:   kvsm.ReplicaCodec{},
		New: func(id sim.NodeID) sim.Machine {
			if id < 3 {
				return kvsm.NewReplica(id, kvsm.ReplicaConfig{Raft: raft.Config{Peers: servers}})
			}
			return kvsm.NewClient(kvsm.ClientConfig{Servers: servers})
		},
	})
	s.Inject(3, kvsm.Call{ID: 1, Op: kvsm.OpSet, Key: []byte("greeting"), Value: []byte("hello")})
	s.Inject(3, kvsm.Call{ID: 2, Op: kvsm.OpGet, Key: []byte("greeting")})
	s.Inject(3, kvsm.Call{ID: 3, Op: kvsm.OpDelete, Key: []byte("greeting")})
	s.Inject(3, kvsm.Call{ID: 4, Op: kvsm.OpGet, Key: []byte("greeting")})
	if err := s.RunFor(2 * time.Second); err != nil {
		fmt.Println(err)
	}
	for _, o := range s.Observations() {
		if d, ok := o.Value.(kvsm.Done); ok {
			fmt.Printf("%d %v %s: %v %q\n", d.ID, d.Op, d.Key, d.Status, d.Result)
		}
	}
	// Output:
	// 1 set greeting: ok ""
	// 2 get greeting: ok "hello"
	// 3 delete greeting: ok ""
	// 4 get greeting: not found ""
}
