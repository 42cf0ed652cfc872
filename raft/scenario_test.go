package raft

import (
	"fmt"
	"slices"
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

func others(n int, except ...sim.NodeID) []sim.NodeID {
	var o []sim.NodeID
	for i := range n {
		if !slices.Contains(except, sim.NodeID(i)) {
			o = append(o, sim.NodeID(i))
		}
	}
	return o
}

func TestReElection(t *testing.T) {
	c := newCluster(3, 3)
	l1, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.s.Crash(l1)
	l2, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if l2 == l1 {
		t.Fatalf("leader %d still leads after crashing", l1)
	}
	// The old leader rejoins: one leader, and it does not disturb l2.
	term := c.node(l2).Term()
	c.s.Restart(l1)
	if err := c.s.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if c.leader() != l2 || c.node(l2).Term() != term {
		t.Errorf("rejoining node disturbed the leader: leader %d term %d, want %d term %d", c.leader(), c.node(c.leader()).Term(), l2, term)
	}
	// Two of three down: no leader.
	c.s.Crash(l2)
	c.s.Crash(others(3, l1, l2)[0])
	if err := c.s.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	if l := c.leader(); l != None {
		t.Errorf("node %d leads without a quorum", l)
	}
}

func TestNoLeaderWithoutQuorum(t *testing.T) {
	c := newCluster(4, 5)
	if _, err := c.waitLeader(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	c.s.Partition([]sim.NodeID{0, 1}, []sim.NodeID{2}, []sim.NodeID{3, 4})
	// CheckQuorum makes the old leader step down; nobody can be elected.
	if err := c.s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.s.RunUntil(func(*sim.Sim) bool { return c.leader() != None }, 3*time.Second); err == nil {
		t.Fatalf("node %d became leader without a quorum", c.leader())
	}
	c.s.Heal()
	if _, err := c.waitLeader(3 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestAgreementWithFailedFollower(t *testing.T) {
	c := newCluster(5, 3)
	if _, err := c.commitOn("a", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	f := others(3, l)[0]
	c.s.Crash(f)
	live := others(3, f)
	for _, d := range []string{"b", "c", "d"} {
		if _, err := c.commitOn(d, 3*time.Second, live...); err != nil {
			t.Fatal(err)
		}
	}
	c.s.Restart(f)
	idx, err := c.commitOn("e", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.node(f).Applied(); got < idx {
		t.Fatalf("restarted follower applied %d, want >= %d", got, idx)
	}
}

func TestNoCommitWithoutQuorum(t *testing.T) {
	c := newCluster(6, 5)
	if _, err := c.commitOn("a", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	commit := c.node(l).Commit()
	o := others(5, l)
	c.s.Crash(o[0])
	c.s.Crash(o[1])
	c.s.Crash(o[2])
	c.s.Inject(l, Propose{ID: 99, Data: []byte("lonely")})
	if err := c.s.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, id := range []sim.NodeID{l, o[3]} {
		if got := c.node(id).Commit(); got != commit {
			t.Errorf("node %d: commit %d without a quorum, want %d", id, got, commit)
		}
	}
	c.s.Restart(o[0])
	c.s.Restart(o[1])
	c.s.Restart(o[2])
	if _, err := c.commitOn("after", 5*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentProposals(t *testing.T) {
	c := newCluster(7, 5)
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		c.s.Inject(l, Propose{ID: uint64(i + 1), Data: fmt.Appendf(nil, "c%d", i)})
	}
	err = c.s.RunUntil(func(*sim.Sim) bool {
		for i := range 5 {
			if c.node(sim.NodeID(i)).Applied() < 201 {
				return false
			}
		}
		return true
	}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := uint64(2); i <= 201; i++ {
		seen[c.rec.applied[i]] = true
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct proposals applied, want 200", len(seen))
	}
}

// TestPartitionedLeaderRejoins: a leader cut off with uncommitted entries
// loses them to the majority's new leader when it rejoins.
func TestPartitionedLeaderRejoins(t *testing.T) {
	c := newCluster(8, 5)
	if _, err := c.commitOn("base", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	old := c.leader()
	rest := others(5, old)
	c.s.Partition([]sim.NodeID{old}, rest)
	for i := range 5 {
		c.s.Inject(old, Propose{ID: uint64(100 + i), Data: fmt.Appendf(nil, "lost%d", i)})
	}
	if err := c.s.RunFor(10 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if c.node(old).LastIndex() < 7 {
		t.Fatalf("cut-off leader did not append the proposals")
	}
	var idx uint64
	var err error
	if idx, err = c.commitOn("majority", 3*time.Second, rest...); err != nil {
		t.Fatal(err)
	}
	c.s.Heal()
	if _, err := c.commitOn("healed", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	r := c.node(old)
	if r.Applied() < idx {
		t.Fatalf("old leader applied %d, want >= %d", r.Applied(), idx)
	}
	for i := range 5 {
		if _, ok := c.rec.index[fmt.Sprint("lost", i)]; ok {
			t.Errorf("entry lost%d proposed to a cut-off leader was applied", i)
		}
	}
}

// TestFastBackup: a follower with 60 conflicting entries (and a leader 60
// entries ahead) is repaired with a handful of rejections, not 60.
func TestFastBackup(t *testing.T) {
	c := newCluster(9, 5)
	if _, err := c.commitOn("base", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	old := c.leader()
	o := others(5, old)
	// The leader and one follower get 60 entries that never commit.
	c.s.Partition([]sim.NodeID{old, o[0]}, o[1:])
	for i := range 60 {
		c.s.Inject(old, Propose{ID: uint64(1000 + i), Data: fmt.Appendf(nil, "x%d", i)})
	}
	if err := c.s.RunFor(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The other three elect a leader and commit 60 entries of their own.
	c.s.Partition([]sim.NodeID{old, o[0]}, o[1:])
	for i := range 60 {
		if _, err := c.commitOn(fmt.Sprint("y", i), 3*time.Second, o[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	before := c.s.Stats().Sent
	c.s.Heal()
	idx, err := c.commitOn("z", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []sim.NodeID{old, o[0]} {
		if c.node(id).Applied() < idx {
			t.Fatalf("node %d not repaired", id)
		}
	}
	if sent := c.s.Stats().Sent - before; sent > 400 {
		t.Errorf("repair took %d messages", sent)
	}
}

func TestCrashRestartEveryNode(t *testing.T) {
	c := newCluster(10, 5)
	for round := range 3 {
		for i := range 5 {
			if _, err := c.commitOn(fmt.Sprint("r", round, "n", i), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			c.s.Crash(sim.NodeID(i))
			if err := c.s.RunFor(200 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			c.s.Restart(sim.NodeID(i))
		}
	}
	// Everything at once.
	for i := range 5 {
		c.s.Crash(sim.NodeID(i))
	}
	for i := range 5 {
		c.s.Restart(sim.NodeID(i))
	}
	idx, err := c.commitOn("final", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if idx < 16 {
		t.Fatalf("index %d: earlier entries lost across restarts", idx)
	}
	for i := range 5 {
		if got := c.node(sim.NodeID(i)).Applied(); got < idx {
			t.Errorf("node %d applied %d < %d", i, got, idx)
		}
	}
}

func TestChurnUnreliable(t *testing.T) {
	c := newCluster(11, 5, func(sc *sim.Config, rc *Config) {
		sc.Network = sim.Network{Delay: time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.1, Duplicate: 0.05, Reorder: 0.1}
		rc.SnapshotEvery = 20
	})
	rng := c.s.Rand()
	for i := range 30 {
		id := sim.NodeID(rng.IntN(5))
		switch rng.IntN(3) {
		case 0:
			c.s.Crash(id)
		case 1:
			c.s.Restart(id)
		}
		l := c.leader()
		if l != None {
			c.s.Inject(l, Propose{ID: uint64(i + 1), Data: fmt.Appendf(nil, "churn%d", i)})
		}
		if err := c.s.RunFor(time.Duration(50+rng.IntN(400)) * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		c.s.Restart(sim.NodeID(i))
	}
	if _, err := c.commitOn("end", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if c.rec.count < 20 {
		t.Errorf("only %d applies under churn", c.rec.count)
	}
}

// TestMessageBudget: an idle cluster sends only heartbeats (and their
// replies); ten agreements cost O(10) AppendEntries per follower.
func TestMessageBudget(t *testing.T) {
	var counts map[string]int
	c := newCluster(12, 5, func(sc *sim.Config, rc *Config) {
		sc.Codec = countingCodec{&counts}
	})
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.s.RunFor(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	counts = map[string]int{}
	if err := c.s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	hb := counts["raft.Heartbeat"]
	if hb < 4*18 || hb > 4*21 || counts["raft.HeartbeatReply"] != hb || len(counts) != 2 {
		t.Errorf("idle second: %v, want only ~4x20 heartbeats and their replies", counts)
	}
	counts = map[string]int{}
	for i := range 10 {
		c.s.Inject(l, Propose{ID: uint64(i + 1), Data: []byte{byte(i)}})
		if err := c.s.RunFor(20 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	if ae := counts["raft.AppendEntries"]; ae > 4*10+4 {
		t.Errorf("10 agreements took %d AppendEntries for 4 followers", ae)
	}
}

type countingCodec struct{ m *map[string]int }

func (c countingCodec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	if *c.m != nil {
		(*c.m)[msgName(m)]++
	}
	return Codec{}.Encode(dst, m)
}

func (c countingCodec) Decode(b []byte) (sim.Message, error) { return Codec{}.Decode(b) }

// TestRejoinDoesNotDepose: with PreVote, a node cut off for a long time
// (its election timer firing again and again) does not raise the term of
// the healthy majority when it comes back.
func TestRejoinDoesNotDepose(t *testing.T) {
	c := newCluster(13, 5)
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	iso := others(5, l)[0]
	c.s.Partition([]sim.NodeID{iso}, others(5, iso))
	if err := c.s.RunFor(3 * time.Second); err != nil {
		t.Fatal(err)
	}
	term := c.node(l).Term()
	if c.node(iso).Term() != term {
		t.Errorf("isolated node raised its term to %d (PreVote should keep it at %d)", c.node(iso).Term(), term)
	}
	c.s.Heal()
	if err := c.s.RunFor(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if c.leader() != l || c.node(l).Term() != term {
		t.Errorf("rejoin deposed the leader: leader %d term %d, want %d term %d", c.leader(), c.node(c.leader()).Term(), l, term)
	}
}

// TestCheckQuorumStepsDown: a leader cut off from the majority steps down
// within about an election timeout.
func TestCheckQuorumStepsDown(t *testing.T) {
	c := newCluster(14, 5)
	l, err := c.waitLeader(2 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.s.Partition([]sim.NodeID{l}, others(5, l))
	err = c.s.RunUntil(func(*sim.Sim) bool { return c.node(l).Role() != Leader }, 400*time.Millisecond)
	if err != nil {
		t.Fatalf("isolated leader still leads: %v", err)
	}
}

func TestLeadershipTransfer(t *testing.T) {
	c := newCluster(15, 5)
	if _, err := c.commitOn("a", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	to := others(5, l)[2]
	c.s.Inject(l, TransferLeader{To: to})
	if err := c.s.RunUntil(func(*sim.Sim) bool { return c.leader() == to }, 500*time.Millisecond); err != nil {
		t.Fatalf("transfer to %d: %v", to, err)
	}
	if _, err := c.commitOn("b", 3*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotInstall(t *testing.T) {
	c := newCluster(16, 3, func(sc *sim.Config, rc *Config) { rc.SnapshotEvery = 10 })
	if _, err := c.commitOn("a", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	lag := others(3, c.leader())[0]
	c.s.Crash(lag)
	for i := range 50 {
		if _, err := c.commitOn(fmt.Sprint("s", i), 3*time.Second, others(3, lag)...); err != nil {
			t.Fatal(err)
		}
	}
	l := c.leader()
	if c.node(l).SnapshotIndex() < 40 {
		t.Fatalf("leader snapshot at %d, want compaction", c.node(l).SnapshotIndex())
	}
	if j := c.s.Durable(l); j.Snapshot == nil || len(j.Records) > 25 {
		t.Errorf("leader journal not compacted: base %d, %d records", j.Base, len(j.Records))
	}
	c.s.Restart(lag)
	idx, err := c.commitOn("b", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	r := c.node(lag)
	if r.Applied() < idx || r.SnapshotIndex() == 0 {
		t.Fatalf("lagging node: applied %d snapshot %d, want a snapshot and >= %d", r.Applied(), r.SnapshotIndex(), idx)
	}
	// Its application state matches the leader's.
	a, b := c.appOf(l), c.appOf(lag)
	if a.last != b.last || a.hash != b.hash || a.n != b.n {
		t.Errorf("state differs: leader %+v, lagging %+v", *a, *b)
	}
	// And it survives a restart from its own snapshot.
	c.s.Crash(lag)
	c.s.Restart(lag)
	if _, err := c.commitOn("c", 3*time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestReadIndex(t *testing.T) {
	c := newCluster(17, 5)
	idx, err := c.commitOn("w", 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	l := c.leader()
	c.s.Inject(l, Read{ID: 7})
	if err := c.s.RunFor(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if n := len(c.node(l).reads); n != 0 {
		t.Fatalf("%d reads still pending on a healthy leader", n)
	}
	r := c.node(l)
	if r.Applied() < idx {
		t.Fatalf("read served at applied %d < %d", r.Applied(), idx)
	}
	// A leader cut off from the majority cannot serve reads.
	c.s.Partition([]sim.NodeID{l}, others(5, l))
	c.s.Inject(l, Read{ID: 8})
	if err := c.s.RunFor(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(c.node(l).reads) != 1 {
		t.Fatalf("isolated leader has %d pending reads, want the read to wait", len(c.node(l).reads))
	}
}
