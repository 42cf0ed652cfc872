package raft

import (
	"fmt"

	"github.com/flotilla-sim/flotilla/sim"
)

// Checker verifies Raft's safety properties in a simulation after every
// event, on every node whose state may have changed since it was last
// checked: one that was stepped or had Propose, ReadIndex or
// TransferLeadership called on it (the only ways a Node changes). node
// extracts the raft Node from a machine (nil if the machine has none);
// pass nil when the machines are *Node themselves.
//
// It checks: at most one leader per term; a leader never removes or
// overwrites entries of its own log; log matching (an (index, term) pair
// always names the same data and the same previous term); committed entries
// agree on every node (so no two nodes apply different data at one index);
// leader completeness (a new leader holds every entry committed so far);
// applied <= commit <= last index; commit never goes back within one
// incarnation and never below the snapshot.
func Checker(node func(sim.Machine) *Node) sim.Checker {
	c := &checker{
		node:    node,
		leaders: map[uint64]sim.NodeID{},
		entries: map[[2]uint64]entryInfo{},
	}
	return sim.Checker{Name: "raft-safety", Step: c.step, End: c.step}
}

type entryInfo struct {
	hash     uint64
	prevTerm uint64
}

type committedEntry struct {
	term uint64
	hash uint64
	set  bool
	// in is the term in which the entry was first seen committed (by the
	// leader that committed it, since checks run after every event).
	in uint64
}

type nodeCheck struct {
	ptr           *Node
	steps         uint64 // the node's step count when last checked
	lastCommit    uint64
	verified      uint64 // entries up to here were checked against entries
	epoch         uint64
	leaderTerm    uint64
	leaderLast    uint64
	leaderLastT   uint64
	checkedCommit uint64
}

type checker struct {
	node      func(sim.Machine) *Node
	nodes     []nodeCheck
	leaders   map[uint64]sim.NodeID
	entries   map[[2]uint64]entryInfo
	committed []committedEntry // committed[i-1] for index i
}

// hashData is FNV-1a over the type byte and the data, written out so that
// hashing an entry allocates nothing.
func hashData(t EntryType, b []byte) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := (offset ^ uint64(t)) * prime
	for _, c := range b {
		h = (h ^ uint64(c)) * prime
	}
	return h
}

func (c *checker) step(s *sim.Sim) error {
	for len(c.nodes) < s.Nodes() {
		c.nodes = append(c.nodes, nodeCheck{})
	}
	for id := range sim.NodeID(s.Nodes()) {
		m := s.Machine(id) // nil while crashed
		if m == nil {
			continue
		}
		var r *Node
		if c.node == nil {
			r, _ = m.(*Node)
		} else {
			r = c.node(m)
		}
		if r == nil || r.rand == nil { // not started yet
			continue
		}
		st := &c.nodes[id]
		if r == st.ptr && r.steps == st.steps {
			// Nothing happened to this node since it was last checked
			// (the usual case: one node steps per event), so it would
			// pass again. (A restart builds a new Node.)
			continue
		}
		if err := c.checkNode(st, id, r); err != nil {
			return fmt.Errorf("node %d (term %d, %v): %w", id, r.term, r.role, err)
		}
	}
	return nil
}

func (c *checker) checkNode(st *nodeCheck, id sim.NodeID, r *Node) error {
	if st.ptr != r {
		*st = nodeCheck{ptr: r, lastCommit: r.snapIndex, verified: r.snapIndex, epoch: r.epoch, checkedCommit: r.snapIndex}
	}
	if err := c.checkState(st, id, r); err != nil {
		return err
	}
	st.steps = r.steps
	return nil
}

func (c *checker) checkState(st *nodeCheck, id sim.NodeID, r *Node) error {
	last := r.lastIndex()
	switch {
	case r.applied > r.commit:
		return fmt.Errorf("applied %d > commit %d", r.applied, r.commit)
	case r.commit > last:
		return fmt.Errorf("commit %d > last index %d", r.commit, last)
	case r.commit < r.snapIndex:
		return fmt.Errorf("commit %d below snapshot %d", r.commit, r.snapIndex)
	case r.commit < st.lastCommit:
		return fmt.Errorf("commit went back from %d to %d", st.lastCommit, r.commit)
	}
	st.lastCommit = r.commit

	// Log matching, incrementally: only entries after the verified point.
	v := min(st.verified, last)
	if r.epoch != st.epoch {
		if r.truncAt > 0 {
			v = min(v, r.truncAt-1)
		}
		st.epoch = r.epoch
	}
	v = max(v, r.snapIndex)
	for i := v + 1; i <= last; i++ {
		e := r.entry(i)
		pt, _ := r.termAt(i - 1)
		info := entryInfo{hash: hashData(e.Type, e.Data), prevTerm: pt}
		key := [2]uint64{i, e.Term}
		if old, ok := c.entries[key]; ok {
			if old != info {
				return fmt.Errorf("log matching: entry (index %d, term %d) differs from another node's (prev term %d vs %d)", i, e.Term, pt, old.prevTerm)
			}
		} else {
			c.entries[key] = info
		}
	}
	st.verified = last

	// Committed entries agree everywhere.
	from := max(st.checkedCommit, r.snapIndex)
	if r.commit < st.checkedCommit {
		from = r.snapIndex
	}
	for i := from + 1; i <= r.commit; i++ {
		e := r.entry(i)
		for uint64(len(c.committed)) < i {
			c.committed = append(c.committed, committedEntry{})
		}
		ce := committedEntry{term: e.Term, hash: hashData(e.Type, e.Data), set: true, in: r.term}
		if old := c.committed[i-1]; old.set {
			if old.term != ce.term || old.hash != ce.hash {
				return fmt.Errorf("committed entry %d differs: term %d here, term %d elsewhere", i, e.Term, old.term)
			}
			continue
		}
		c.committed[i-1] = ce
	}
	st.checkedCommit = r.commit

	if r.role != Leader {
		st.leaderTerm = 0
		return nil
	}
	if other, ok := c.leaders[r.term]; ok && other != id {
		return fmt.Errorf("two leaders in term %d: %d and %d", r.term, other, id)
	}
	c.leaders[r.term] = id
	if st.leaderTerm == r.term {
		if last < st.leaderLast {
			return fmt.Errorf("leader's log shrank from %d to %d", st.leaderLast, last)
		}
		if t, ok := r.termAt(st.leaderLast); ok && t != st.leaderLastT {
			return fmt.Errorf("leader overwrote its entry %d (term %d -> %d)", st.leaderLast, st.leaderLastT, t)
		}
	} else {
		// Newly elected: leader completeness (it holds every entry
		// committed in an earlier term).
		for i := r.snapIndex + 1; i <= uint64(len(c.committed)); i++ {
			ce := c.committed[i-1]
			if !ce.set || ce.in >= r.term {
				continue
			}
			t, ok := r.termAt(i)
			if !ok || t != ce.term {
				return fmt.Errorf("leader completeness: new leader lacks committed entry %d (term %d)", i, ce.term)
			}
		}
	}
	st.leaderTerm = r.term
	st.leaderLast = last
	st.leaderLastT, _ = r.termAt(last)
	return nil
}
