package sim

import (
	"bufio"
	"bytes"
	"fmt"
)

// CheckDeterminism runs the scenario built by mk twice, with traces on, and
// returns an error naming the first step where the two traces differ. mk
// must build everything afresh (machines, checkers and their state) on each
// call, exactly as a test would.
func CheckDeterminism(mk func() Config) (Result, error) {
	var traces [2]bytes.Buffer
	var results [2]Result
	for i := range traces {
		cfg := mk()
		cfg.Trace = &traces[i]
		results[i] = New(cfg).Run()
	}
	a := bufio.NewScanner(&traces[0])
	b := bufio.NewScanner(&traces[1])
	a.Buffer(nil, 1<<24)
	b.Buffer(nil, 1<<24)
	for line := 1; ; line++ {
		okA, okB := a.Scan(), b.Scan()
		if !okA && !okB {
			break
		}
		if okA != okB || !bytes.Equal(a.Bytes(), b.Bytes()) {
			return results[0], fmt.Errorf("nondeterminism at trace line %d:\n  run 1: %s\n  run 2: %s", line, a.Text(), b.Text())
		}
	}
	if results[0].Hash != results[1].Hash {
		return results[0], fmt.Errorf("nondeterminism: traces equal but hashes differ (%016x vs %016x)", results[0].Hash, results[1].Hash)
	}
	return results[0], nil
}
