package sim_test

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
)

// Shrinking a failing fault schedule. The system is pingpong with a
// planted bug: its checker fails once node 2 has crashed while node 0 was
// ever paused. A swarm of faults over ten seconds trips it; Shrink finds
// the two faults that matter, on the fewest nodes, in the shortest run.
func ExampleShrink() {
	build := func(sc sim.Schedule) sim.Config {
		cfg := pingpong.Scenario(sc.Seed, sc.Nodes, sim.Plan{}, sc.Duration)
		var crashed, paused bool
		cfg.Checkers = append(cfg.Checkers, sim.Checker{Name: "planted", Step: func(s *sim.Sim) error {
			if s.Nodes() < 3 {
				return nil
			}
			crashed, paused = crashed || !s.Up(2), paused || s.Paused(0)
			if crashed && paused {
				return errors.New("node 2 crashed and node 0 paused")
			}
			return nil
		}})
		sc.Apply(&cfg)
		return cfg
	}
	plan, _ := sim.ParsePlan("crash,pause,partition,loss", 7, pingpong.BaseNetwork, 5)
	cfg := pingpong.Scenario(7, 5, plan, 15*time.Second)
	start := sim.ScheduleOf(cfg)

	r, err := sim.Shrink(start, sim.ShrinkOptions{Build: build, MinNodes: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d faults on %d nodes -> %d faults on %d nodes, failing %s\n",
		len(start.Faults), start.Nodes, len(r.Schedule.Faults), r.Schedule.Nodes, r.Failure.Checker)
	for _, f := range r.Schedule.Faults {
		fmt.Println(f)
	}
	// The result is a replayable file: flotilla sim -replay FILE.
	sim.WriteRepro(os.Stdout, sim.Repro{System: "planted", Schedule: r.Schedule, Checker: r.Failure.Checker})
	// Output:
	// 28 faults on 5 nodes -> 2 faults on 3 nodes, failing planted
	// 0s pause 0
	// 0s crash 2
	// {
	//   "system": "planted",
	//   "seed": 7,
	//   "nodes": 3,
	//   "duration": "517.247µs",
	//   "network": {
	//     "delay": "1ms",
	//     "jitter": "1ms"
	//   },
	//   "faults": [
	//     {"at":"0s","kind":"pause","node":0},
	//     {"at":"0s","kind":"crash","node":2}
	//   ],
	//   "checker": "planted"
	// }
}
