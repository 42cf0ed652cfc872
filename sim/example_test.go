package sim_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
)

// A whole simulation: five ping-pong nodes on a lossy network, one node
// crashed and restarted mid-run, a checker after every event, and a
// liveness phase at the end. The same seed always prints the same result.
func Example() {
	cfg := sim.Config{
		Seed:     42,
		Nodes:    5,
		New:      pingpong.New(5),
		Network:  sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond, Loss: 0.1},
		Checkers: []sim.Checker{pingpong.Checker()},
		Faults: []sim.Fault{
			{At: 2 * time.Second, Kind: sim.FaultCrash, Node: 3},
			{At: 3 * time.Second, Kind: sim.FaultRestart, Node: 3},
		},
		Duration: 5 * time.Second,
		Liveness: &sim.Liveness{Name: "hears back", Within: time.Second, Cond: pingpong.EveryNodeHearsBack()},
	}
	res := sim.New(cfg).Run()
	st := res.Stats
	fmt.Println("error:", res.Err)
	fmt.Println("accounted:", st.Sent+st.Duplicated == st.Delivered+st.Dropped+st.InFlight)
	fmt.Println("same again:", sim.New(cfgAgain(cfg)).Run().Hash == res.Hash)
	// Output:
	// error: <nil>
	// accounted: true
	// same again: true
}

// cfgAgain rebuilds the config with fresh state for a second run.
func cfgAgain(cfg sim.Config) sim.Config {
	cfg.Liveness = &sim.Liveness{Name: "hears back", Within: time.Second, Cond: pingpong.EveryNodeHearsBack()}
	return cfg
}

// Stepping a simulation by hand, the way scenario tests do.
func ExampleSim_RunUntil() {
	s := sim.New(sim.Config{Seed: 1, Nodes: 3, New: pingpong.New(3), Network: sim.Network{Delay: time.Millisecond}})
	s.Partition([]sim.NodeID{0}, []sim.NodeID{1, 2})
	s.RunFor(time.Second)
	s.Heal()
	err := s.RunUntil(func(s *sim.Sim) bool { return s.Machine(0).(*pingpong.Node).Pongs > 0 }, time.Second)
	fmt.Println(err, s.Now() > time.Second)
	// Output: <nil> true
}

// writer appends a record for every message it gets, replicates it to node
// 1 without waiting for its own disk (SendEarly), asks to hear when the
// record is durable (NotifySynced), and then tells the requester with a
// plain Send. replica just prints what arrives.
type writer struct{ asker sim.NodeID }

func (w *writer) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventMessage:
		if ev.From == 1 {
			return
		}
		w.asker = ev.From
		out.Append([]byte("record"))
		out.SendEarly(1, "copy")
		out.NotifySynced(7)
	case sim.EventSynced:
		fmt.Printf("%v node 0: token %d durable\n", ev.Now, ev.Token)
		out.Send(w.asker, "done")
	}
}

type replica struct{}

func (replica) Step(ev sim.Event, _ *sim.Effects) {
	if ev.Kind == sim.EventMessage {
		fmt.Printf("%v node 1: got %v\n", ev.Now, ev.Msg)
	}
}

// A message sent early leaves while the sender's journal write is still
// syncing (5ms here); the sender learns when the write is durable.
func ExampleEffects_NotifySynced() {
	s := sim.New(sim.Config{Seed: 1, Nodes: 2, SyncLatency: 5 * time.Millisecond, Network: sim.Network{Delay: time.Millisecond},
		New: func(id sim.NodeID) sim.Machine {
			if id == 0 {
				return &writer{}
			}
			return replica{}
		}})
	s.Inject(0, "write")
	s.RunFor(10 * time.Millisecond)
	// Output:
	// 1ms node 1: got copy
	// 5ms node 0: token 7 durable
}
