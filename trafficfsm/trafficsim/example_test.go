package trafficsim_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm/trafficsim"
)

// One seed of the standard scenario with every fault on: ten minutes of
// faults aimed at the controller and the network, then healing; the run
// passes every checker and the liveness condition.
func ExampleScenario() {
	plan := sim.AllFaults(trafficsim.BaseNetwork, trafficsim.Nodes)
	res := sim.New(trafficsim.Scenario(7, trafficsim.Nodes, plan, 10*time.Minute)).Run()
	fmt.Println("error:", res.Err)
	fmt.Println("ran past the fault phase:", res.Virtual > 10*time.Minute)
	// Output:
	// error: <nil>
	// ran past the fault phase: true
}
