package kvsim_test

import (
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm/kvsim"
	"github.com/flotilla-sim/flotilla/sim"
)

// The standard scenario of one seed: five replicas and five clients under
// every fault for 3s, then healing, the liveness deadline and the
// porcupine check.
func ExampleScenario() {
	cfg := kvsim.Scenario(42, 5, sim.AllFaults(kvsim.BaseNetwork, 5), 3*time.Second)
	res := sim.New(cfg).Run()
	fmt.Println("failure:", res.Err)
	// Output: failure: <nil>
}
