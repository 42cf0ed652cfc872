package raftsim_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/raft/raftsim"
	"github.com/flotilla-sim/flotilla/sim"
)

// The standard scenario of one seed: five replicas and the client under
// every fault for 2s, then healing and the liveness deadline.
func ExampleScenario() {
	cfg := raftsim.Scenario(42, 5, sim.AllFaults(raftsim.BaseNetwork, 5), 2*time.Second)
	res := sim.New(cfg).Run()
	fmt.Println("failure:", res.Err)
	// Output: failure: <nil>
}
