package raft

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// checkerCatches runs a healthy 5-node cluster until it has a leader and a
// few committed entries, lets corrupt break one node's state behind the
// protocol's back, and returns the raft checker's failure within the next
// events (nil if it caught nothing).
func checkerCatches(t *testing.T, corrupt func(c *cluster, leader sim.NodeID)) error {
	t.Helper()
	c := newCluster(3, 5)
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.commitOn("x", time.Second, l); err != nil {
		t.Fatal(err)
	}
	if err := c.s.RunFor(100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	corrupt(c, l)
	err = c.s.RunFor(200 * time.Millisecond)
	var f *sim.Failure
	if err != nil && (!errors.As(err, &f) || f.Checker != "raft-safety") {
		t.Fatalf("failed outside the raft checker: %v", err)
	}
	return err
}

// TestCheckerCatchesSecondLeader: a follower that makes itself leader of
// the current term is caught (at its next step: the checker looks only at
// nodes that stepped since their last check).
func TestCheckerCatchesSecondLeader(t *testing.T) {
	err := checkerCatches(t, func(c *cluster, l sim.NodeID) {
		f := c.node((l + 1) % 5)
		f.role, f.term = Leader, c.node(l).term
	})
	if err == nil || !strings.Contains(err.Error(), "two leaders") {
		t.Fatalf("got %v, want two leaders in a term", err)
	}
}

// TestCheckerCatchesRewrittenLastEntry: a leader whose last entry is
// rewritten in place (same length, same log epoch) is caught.
func TestCheckerCatchesRewrittenLastEntry(t *testing.T) {
	err := checkerCatches(t, func(c *cluster, l sim.NodeID) {
		// (A changed copy in the leader's log alone: the entry itself
		// may be shared with followers' logs.)
		r := c.node(l)
		e := *r.log.at(r.log.len() - 1)
		e.Term = r.term + 7
		p := r.log.off + r.log.len() - 1
		r.log.refs[p>>logBlockShift][p&logBlockMask] = &e
	})
	if err == nil || !strings.Contains(err.Error(), "overwrote its entry") {
		t.Fatalf("got %v, want the leader's overwritten entry", err)
	}
}

// TestCheckerSeesChangesOutsideStep: an embedding machine changes a Node
// through Propose, ReadIndex and TransferLeadership, not only Step; each
// counts as a change, so the checker looks at the node after that event
// rather than at its next Step (which may never come if it crashes).
func TestCheckerSeesChangesOutsideStep(t *testing.T) {
	c := newCluster(3, 3)
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	n := c.node(l)
	var out sim.Effects
	for name, call := range map[string]func(){
		"Propose":            func() { n.Propose([]byte("p"), &out) },
		"ReadIndex":          func() { n.ReadIndex(1, &out) },
		"TransferLeadership": func() { n.TransferLeadership((l+1)%3, &out) },
	} {
		before := n.steps
		call()
		if n.steps == before {
			t.Errorf("%s left the change counter at %d: the checker would skip the node", name, before)
		}
	}
}
