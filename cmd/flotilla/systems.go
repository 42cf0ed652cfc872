package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
)

// system is something flotilla sim can sweep: it builds the standard
// scenario of one seed, with its checkers and liveness condition.
type system struct {
	name         string
	about        string
	defaultNodes int
	minNodes     int
	base         sim.Network
	scenario     func(seed uint64, nodes int, plan sim.Plan, d time.Duration) sim.Config
}

// systemList is every system flotilla sim knows.
var systemList = []system{
	{name: "pingpong", about: "the simulator's example machine", defaultNodes: 5, minNodes: 1,
		base: pingpong.BaseNetwork, scenario: pingpong.Scenario},
}

func systems() []system { return systemList }

func findSystem(name string) (system, error) {
	all := systems()
	i := slices.IndexFunc(all, func(s system) bool { return s.name == name })
	if i < 0 {
		var names []string
		for _, s := range all {
			names = append(names, s.name)
		}
		return system{}, fmt.Errorf("unknown system %q (have %s)", name, strings.Join(names, ", "))
	}
	return all[i], nil
}
