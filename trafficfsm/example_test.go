package trafficfsm_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

// The intersection in the simulator: controller, two lights and a button
// pressed 50 s in, five seconds into the north-south green.
func Example() {
	cfg := trafficfsm.DefaultConfig()
	s := sim.New(sim.Config{
		Seed:    1,
		Nodes:   4,
		Network: sim.Network{Delay: time.Millisecond},
		Codec:   trafficfsm.Codec{},
		New: func(id sim.NodeID) sim.Machine {
			switch id {
			case trafficfsm.ControllerID:
				return trafficfsm.NewController(cfg)
			case trafficfsm.ButtonID:
				return trafficfsm.NewButton(trafficfsm.ControllerID, 50*time.Second)
			}
			return trafficfsm.NewLight()
		},
	})
	if err := s.RunFor(2 * time.Minute); err != nil {
		fmt.Println(err)
		return
	}
	for _, o := range s.Observations() {
		if st, ok := o.Value.(trafficfsm.State); ok {
			fmt.Printf("%v: %v (EW %v, NS %v)\n", o.At, st.Phase, st.EW, st.NS)
		}
	}
	// Output:
	// 0s: clear (EW R, NS R)
	// 10s: ew-green (EW G, NS R)
	// 40s: ew-yellow (EW Y, NS R)
	// 45s: ns-green (EW R, NS G)
	// 1m15s: ns-yellow (EW R, NS Y)
	// 1m20s: ew-green (EW G, NS R)
	// 1m50s: ew-yellow (EW Y, NS R)
	// 1m55s: ns-green (EW R, NS G)
}

func ExampleExploreController() {
	sp, err := trafficfsm.ExploreController(trafficfsm.DefaultConfig(), trafficfsm.ExploreOptions{Step: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(sp.Len(), "states, all properties hold")
	// Output: 140 states, all properties hold
}
