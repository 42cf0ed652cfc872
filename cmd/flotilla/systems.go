package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm/kvsim"
	"github.com/flotilla-sim/flotilla/raft/raftsim"
	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
	"github.com/flotilla-sim/flotilla/trafficfsm/trafficsim"
)

// system is something flotilla sim can sweep: it builds the standard
// scenario of one seed, with its checkers and liveness condition.
type system struct {
	name         string
	about        string
	defaultNodes int
	minNodes     int
	maxNodes     int // 0: 64, the simulator's limit
	// defaultDuration is the fault phase a sweep runs by default; 0 means
	// 10 s. Long enough to cover the system's whole behaviour: the traffic
	// light's cycle alone is 100 s, after a 10 s start-up clearance.
	defaultDuration time.Duration
	base            sim.Network
	scenario        func(seed uint64, nodes int, plan sim.Plan, d time.Duration) sim.Config
}

// systemList is every system flotilla sim knows.
var systemList = []system{
	{name: "kv", about: "replicated key-value store on Raft, histories checked with porcupine", defaultNodes: 5, minNodes: 1,
		maxNodes: 9, base: kvsim.BaseNetwork, scenario: kvsim.Scenario},
	{name: "pingpong", about: "the simulator's example machine", defaultNodes: 5, minNodes: 1,
		base: pingpong.BaseNetwork, scenario: pingpong.Scenario},
	{name: "raft", about: "Raft alone: proposals, reads and transfers under faults", defaultNodes: 5, minNodes: 1, maxNodes: 9,
		base: raftsim.BaseNetwork, scenario: raftsim.Scenario},
	{name: "raft-nemesis", about: "Raft without the leader's no-op under a nemesis that builds the paper's Figure 8 and crashes voters right after voting (try -faults none)",
		defaultNodes: 5, minNodes: 3, maxNodes: 7, base: raftsim.BaseNetwork, scenario: raftNemesis},
	{name: "traffic", about: "the traffic-light controller, lights and button", defaultNodes: 4, minNodes: 4, maxNodes: 4, defaultDuration: 30 * time.Minute,
		base: trafficsim.BaseNetwork, scenario: trafficsim.Scenario},
}

func systems() []system { return systemList }

func raftNemesis(seed uint64, nodes int, plan sim.Plan, d time.Duration) sim.Config {
	cfg, _ := raftsim.NemesisScenario(seed, nodes, plan, d)
	return cfg
}

// The kv and raft systems number their clients after their replicas;
// -clients sets how many.
func init() {
	clientKnobs["kv"] = clientKnob{defaultClients: kvsim.DefaultClients, minClients: 1, scenario: kvsim.ScenarioClients}
	clientKnobs["raft"] = clientKnob{defaultClients: 1, minClients: 1, scenario: raftsim.ScenarioClients}
}

func (s system) duration() time.Duration {
	if s.defaultDuration == 0 {
		return 10 * time.Second
	}
	return s.defaultDuration
}

// nodeRange is the number of nodes s can simulate, lo to hi.
func (s system) nodeRange() (lo, hi int) {
	hi = 64
	if s.maxNodes > 0 {
		hi = s.maxNodes
	}
	return s.minNodes, hi
}

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
