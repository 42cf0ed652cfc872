package purity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// machinePackages are the packages that must stay pure, relative to the
// module root; those that do not exist yet are skipped by name. Their
// subpackages (simulation harnesses, binaries) are not machine code and may
// use goroutines and I/O, but nothing a machine package imports may.
var machinePackages = []string{"sim", "sim/pingpong", "raft", "kvsm", "trafficfsm"}

func TestMachinePackagesArePure(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, p := range machinePackages {
		if _, err := os.Stat(filepath.Join(root, p)); err == nil {
			patterns = append(patterns, "./"+p)
		}
	}
	problems, err := Check(root, patterns...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("checked %v", patterns)
}

func TestImpureFixtureIsCaught(t *testing.T) {
	problems, err := Check(".", "./testdata/impure")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"imports os", "go statement", "time.Now", "time.Sleep", "time.After"} {
		found := false
		for _, p := range problems {
			found = found || strings.Contains(p, want)
		}
		if !found {
			t.Errorf("fixture violation %q not reported; got %q", want, problems)
		}
	}
}
