package raft

import (
	"fmt"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

func TestInitialElection(t *testing.T) {
	c := newCluster(1, 3)
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	term := c.node(l).Term()
	// Every node agrees on the leader and, with no failures, the term
	// stays put for a good while.
	if err := c.s.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	for i := range c.n {
		r := c.node(sim.NodeID(i))
		if r.Term() != term || r.Leader() != l {
			t.Errorf("node %d: term %d leader %d, want term %d leader %d", i, r.Term(), r.Leader(), term, l)
		}
	}
}

func TestAgreement(t *testing.T) {
	c := newCluster(2, 5)
	for i := range 10 {
		if _, err := c.commitOn(fmt.Sprint("x", i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}
