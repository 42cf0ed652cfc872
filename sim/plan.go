package sim

import (
	"fmt"
	"strings"
	"time"
)

// FaultNames are the names ParsePlan accepts in a fault list.
var FaultNames = []string{"loss", "dup", "reorder", "tail", "partition", "oneway", "clog", "crash", "torn", "pause", "drift", "sync"}

// ParsePlan turns a fault spec into a plan for seed: "swarm" draws the
// faults from the seed, "all" turns every fault on, "none" turns them all
// off, and a comma-separated list of FaultNames turns on exactly those, at
// the rates "all" uses.
func ParsePlan(spec string, seed uint64, base Network, n int) (Plan, error) {
	switch spec {
	case "swarm", "":
		return SwarmPlan(seed, base, n), nil
	case "none":
		return Plan{Network: base}, nil
	case "all":
		return AllFaults(base, n), nil
	}
	all := AllFaults(base, n)
	p := Plan{Network: base, Faults: FaultConfig{Every: all.Faults.Every}}
	for _, name := range strings.Split(spec, ",") {
		switch strings.TrimSpace(name) {
		case "loss":
			p.Network.Loss = all.Network.Loss
		case "dup":
			p.Network.Duplicate = all.Network.Duplicate
		case "reorder":
			p.Network.Reorder = all.Network.Reorder
		case "tail":
			p.Network.TailProb, p.Network.TailDelay = all.Network.TailProb, all.Network.TailDelay
		case "partition":
			p.Faults.Partitions = true
		case "oneway":
			p.Faults.OneWay = true
		case "clog":
			p.Faults.Clogs = true
		case "crash":
			p.Faults.Crashes = true
		case "torn":
			p.Faults.Crashes, p.Faults.TornWrites = true, true
		case "pause":
			p.Faults.Pauses = true
		case "drift":
			p.DriftPPM = all.DriftPPM
		case "sync":
			p.SyncLatency = all.SyncLatency
		default:
			return Plan{}, fmt.Errorf("unknown fault %q (want swarm, all, none or a list of %s)", name, strings.Join(FaultNames, ","))
		}
	}
	return p, nil
}

// DefaultEvery is the mean time between fault episodes in the "all" plan.
const DefaultEvery = time.Second
