package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The intersection has exactly four nodes: -nodes and reproduction files
// asking for another number are refused.
func TestTrafficNodesBound(t *testing.T) {
	for _, n := range []string{"3", "5", "64"} {
		if code := run([]string{"sim", "-system", "traffic", "-nodes", n, "-seeds", "1"}); code != 2 {
			t.Errorf("flotilla sim -system traffic -nodes %s exited %d; want 2", n, code)
		}
	}
	for _, tc := range []struct {
		system string
		nodes  int
		ok     bool
	}{{"traffic", 4, true}, {"pingpong", 64, true}, {"pingpong", 65, false}} {
		f := simFlags{system: tc.system, nodes: tc.nodes, seeds: 1, workers: 1, faults: "swarm", shrinkMax: 1, shrinkRuns: 1}
		if err := f.validate(flag.NewFlagSet("test", flag.ContinueOnError)); (err == nil) != tc.ok {
			t.Errorf("-system %s -nodes %d: validate says %v", tc.system, tc.nodes, err)
		}
	}
	path := filepath.Join(t.TempDir(), "five.json")
	body := `{"system":"traffic","seed":1,"nodes":5,"duration":"1s","network":{},"faults":[]}`
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := replay(t, path); code != 1 || !strings.Contains(out, "needs 4 to 4 nodes") {
		t.Errorf("replaying a five-node traffic file: exit %d; want 1 and the bound:\n%s", code, out)
	}
}

// The traffic system sweeps clean under the swarm and with every fault on.
func TestTrafficSweeps(t *testing.T) {
	for _, faults := range []string{"swarm", "all"} {
		code, out := runSim(t, "-system", "traffic", "-nodes", "4", "-faults", faults, "-seeds", "20", "-duration", "2m")
		if code != 0 || !strings.Contains(out, "seeds: 20 run, 0 failed") {
			t.Errorf("-faults %s: exit %d:\n%s", faults, code, out)
		}
	}
}
