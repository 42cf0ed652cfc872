package simtest

import (
	"strings"
	"testing"
)

func TestReplayCommandNamesPackageTestAndSeed(t *testing.T) {
	got := ReplayCommand(t, 42)
	want := "go test ./sim/simtest -run '^TestReplayCommandNamesPackageTestAndSeed$' -seed=42"
	if !strings.HasPrefix(got, want) {
		t.Errorf("got %q; want prefix %q", got, want)
	}
}

func TestSeedsDefault(t *testing.T) {
	if Single() {
		t.Skip("-seed given: the default list is not in use")
	}
	s := Seeds(3)
	if len(s) != 3 || s[0] != *seedBase || s[2] != *seedBase+2 {
		t.Errorf("Seeds(3) = %v", s)
	}
}

// Sweep runs every seed of the list, in parallel.
func TestSweepRunsEverySeed(t *testing.T) {
	var ran []uint64
	ch := make(chan uint64, 100)
	Sweep(t, 20, func(seed uint64) error { ch <- seed; return nil })
	close(ch)
	for s := range ch {
		ran = append(ran, s)
	}
	if len(ran) != len(Seeds(20)) {
		t.Errorf("ran %d seeds; want %d", len(ran), len(Seeds(20)))
	}
}
