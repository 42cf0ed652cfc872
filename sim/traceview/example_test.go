package traceview_test

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
	"github.com/flotilla-sim/flotilla/sim/traceview"
)

// Trace a short pingpong run with a crash, then export it both ways. In
// practice the trace comes from `flotilla sim -seed N -trace FILE` and the
// exports from `flotilla trace FILE -o OUT.html`.
func Example() {
	var trace bytes.Buffer
	cfg := pingpong.Scenario(1, 3, sim.Plan{Network: pingpong.BaseNetwork}, time.Second)
	cfg.Faults = []sim.Fault{{At: 300 * time.Millisecond, Kind: sim.FaultCrash, Node: 2}, {At: 600 * time.Millisecond, Kind: sim.FaultRestart, Node: 2}}
	cfg.Trace = &trace
	sim.New(cfg).Run()

	tr, err := traceview.Read(&trace)
	if err != nil {
		fmt.Println(err)
		return
	}
	kinds := map[string]int{}
	for _, e := range tr.Events {
		kinds[e.Kind]++
	}
	fmt.Printf("%d nodes; crash %d, restart %d, start %d\n", tr.Nodes, kinds["crash"], kinds["restart"], kinds["start"])

	if err := traceview.WriteChrome(io.Discard, tr); err != nil { // for ui.perfetto.dev
		fmt.Println(err)
	}
	if err := traceview.WriteHTML(io.Discard, tr, traceview.HTMLOptions{Title: "pingpong seed 1"}); err != nil { // for any browser
		fmt.Println(err)
	}
	// Output:
	// 3 nodes; crash 1, restart 1, start 4
}
