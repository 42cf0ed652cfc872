package kvsim

import (
	"bytes"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// Scenario tests in the manner of the classic KV-on-Raft suites. Each
// drives a cluster by hand and ends with the porcupine check.

func start(t *testing.T, o Options) (*Cluster, *sim.Sim) {
	t.Helper()
	c := New(o)
	return c, sim.New(c.Config)
}

// finish checks the run had no failure and the history is linearizable.
func finish(t *testing.T, c *Cluster, s *sim.Sim) {
	t.Helper()
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckHistory(History(s.Observations(), c.Nodes), 20*time.Second, HTMLPath(c.Seed, c.Nodes)); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, s *sim.Sim, d time.Duration) {
	t.Helper()
	if err := s.RunFor(d); err != nil {
		t.Fatal(err)
	}
}

// doneBetween counts calls client i completed (known outcome) with their
// Done observed in [from, to).
func doneBetween(s *sim.Sim, node sim.NodeID, from, to time.Duration) int {
	n := 0
	for _, o := range s.Observations() {
		if d, ok := o.Value.(kvsm.Done); ok && o.Node == node && !d.Unknown && o.At >= from && o.At < to {
			n++
		}
	}
	return n
}

func leader(s *sim.Sim, nodes int) sim.NodeID {
	best, term := raft.None, uint64(0)
	for i := range nodes {
		r := Replica(s, sim.NodeID(i))
		if r != nil && r.IsLeader() && r.Raft().Term() >= term {
			best, term = sim.NodeID(i), r.Raft().Term()
		}
	}
	return best
}

func TestBasic(t *testing.T) {
	c, s := start(t, Options{Seed: 1, Nodes: 3, Clients: 1, OpsPerClient: 100})
	run(t, s, 5*time.Second)
	if got := c.Tracker.Total(); got != 100 {
		t.Fatalf("%d of 100 calls completed", got)
	}
	finish(t, c, s)
}

func TestConcurrentClients(t *testing.T) {
	c, s := start(t, Options{Seed: 2, Nodes: 5, Clients: 8, OpsPerClient: 60})
	run(t, s, 5*time.Second)
	if got := c.Tracker.Total(); got != 8*60 {
		t.Fatalf("%d of %d calls completed", got, 8*60)
	}
	finish(t, c, s)
}

func TestUnreliableNetwork(t *testing.T) {
	net := BaseNetwork
	net.Loss, net.Duplicate, net.Reorder = 0.1, 0.05, 0.1
	c, s := start(t, Options{Seed: 3, Nodes: 5, Clients: 5, OpsPerClient: 40, Network: &net})
	run(t, s, 20*time.Second)
	if got := c.Tracker.Total(); got != 5*40 {
		t.Fatalf("%d of %d calls completed", got, 5*40)
	}
	finish(t, c, s)
}

// TestOnePartition cuts the leader and one client off with one other
// replica: the minority side completes nothing while the majority carries
// on, and after healing every client completes new calls within 3s.
func TestOnePartition(t *testing.T) {
	const nodes = 5
	c, s := start(t, Options{Seed: 4, Nodes: nodes, Clients: 3})
	run(t, s, time.Second)
	l := leader(s, nodes)
	if l == raft.None {
		t.Fatal("no leader after 1s")
	}
	other := (l + 1) % nodes
	minClient := sim.NodeID(nodes)
	var rest []sim.NodeID
	for i := range nodes + 3 {
		if id := sim.NodeID(i); id != l && id != other && id != minClient {
			rest = append(rest, id)
		}
	}
	cut := s.Now()
	s.Partition([]sim.NodeID{l, other, minClient}, rest)
	run(t, s, 3*time.Second)
	// Give calls that were already answered half a second to land.
	if n := doneBetween(s, minClient, cut+500*time.Millisecond, s.Now()); n != 0 {
		t.Fatalf("the minority client completed %d calls while cut off", n)
	}
	for _, cl := range []sim.NodeID{nodes + 1, nodes + 2} {
		if n := doneBetween(s, cl, cut+time.Second, s.Now()); n < 10 {
			t.Fatalf("majority client %d completed only %d calls in the partition", cl, n)
		}
	}
	s.Heal()
	healed := s.Now()
	if err := s.RunUntil(func(s *sim.Sim) bool { return c.Tracker.CompletedAfter(s, healed) }, 3*time.Second); err != nil {
		t.Fatalf("after healing: %v", err)
	}
	finish(t, c, s)
}

// partitionStorm splits the cluster (clients included) at random every
// 50-550ms for d, then heals and requires every client to progress.
func partitionStorm(t *testing.T, o Options, d time.Duration) {
	c, s := start(t, o)
	total := o.Nodes + o.Clients
	rng := s.Rand()
	for end := s.Now() + d; s.Now() < end; {
		s.Heal()
		var a, b []sim.NodeID
		for i := range total {
			if rng.IntN(2) == 0 {
				a = append(a, sim.NodeID(i))
			} else {
				b = append(b, sim.NodeID(i))
			}
		}
		s.Partition(a, b)
		run(t, s, time.Duration(50+rng.IntN(500))*time.Millisecond)
	}
	s.Heal()
	healed := s.Now()
	if err := s.RunUntil(func(s *sim.Sim) bool { return c.Tracker.CompletedAfter(s, healed) }, 5*time.Second); err != nil {
		t.Fatalf("after healing: %v", err)
	}
	finish(t, c, s)
}

func TestManyPartitionsOneClient(t *testing.T) {
	partitionStorm(t, Options{Seed: 5, Nodes: 5, Clients: 1}, 8*time.Second)
}

func TestManyPartitionsManyClients(t *testing.T) {
	partitionStorm(t, Options{Seed: 6, Nodes: 5, Clients: 7}, 8*time.Second)
}

// TestPersistence crashes every replica at once, several times (some
// mid-write), and restarts them: acknowledged writes and sessions survive,
// so the history stays linearizable and the clients carry on.
func TestPersistence(t *testing.T) {
	const nodes = 5
	c, s := start(t, Options{Seed: 7, Nodes: nodes, Clients: 4, SnapshotEvery: 30})
	rng := s.Rand()
	for range 5 {
		run(t, s, time.Duration(300+rng.IntN(700))*time.Millisecond)
		before := c.Tracker.Total()
		for i := range nodes {
			if rng.IntN(2) == 0 {
				s.CrashTorn(sim.NodeID(i))
			} else {
				s.Crash(sim.NodeID(i))
			}
		}
		run(t, s, time.Duration(rng.IntN(300))*time.Millisecond)
		for i := range nodes {
			s.Restart(sim.NodeID(i))
		}
		if before == 0 {
			t.Fatal("nothing completed before a crash")
		}
	}
	healed := s.Now()
	if err := s.RunUntil(func(s *sim.Sim) bool { return c.Tracker.CompletedAfter(s, healed) }, 5*time.Second); err != nil {
		t.Fatalf("after the last restart: %v", err)
	}
	finish(t, c, s)
}

// TestLogAndSnapshotSize runs a steady workload and bounds every replica's
// durable journal: with compaction every 100 entries, the snapshot plus the
// records after it stay under 16 KiB however long the run. (Without
// compaction this run's journals grow past 60 KiB.)
func TestLogAndSnapshotSize(t *testing.T) {
	const nodes, limit = 3, 16 << 10
	c, s := start(t, Options{Seed: 8, Nodes: nodes, Clients: 5, SnapshotEvery: 100})
	biggest := 0
	for range 40 {
		run(t, s, 250*time.Millisecond)
		for i := range nodes {
			j := s.Durable(sim.NodeID(i))
			size := len(j.Snapshot)
			for _, r := range j.Records {
				size += len(r)
			}
			biggest = max(biggest, size)
			if size > limit {
				t.Fatalf("replica %d journal is %d bytes (%d records) after %d calls", i, size, len(j.Records), c.Tracker.Total())
			}
		}
	}
	if c.Tracker.Total() < 1000 {
		t.Fatalf("only %d calls completed: the bound proves little", c.Tracker.Total())
	}
	t.Logf("%d calls; largest journal %d bytes", c.Tracker.Total(), biggest)
	finish(t, c, s)
}

// TestLaggingNodeCatchesUpBySnapshot keeps one replica down while the
// others commit far past their compaction point, then brings it back: it
// must install the leader's snapshot and end with the same state.
func TestLaggingNodeCatchesUpBySnapshot(t *testing.T) {
	const nodes = 3
	c, s := start(t, Options{Seed: 9, Nodes: nodes, Clients: 3, OpsPerClient: 150, SnapshotEvery: 20})
	run(t, s, 500*time.Millisecond)
	lag := (leader(s, nodes) + 1) % nodes
	lagLast := Replica(s, lag).Raft().LastIndex()
	s.Crash(lag)
	run(t, s, 2*time.Second)
	l := Replica(s, leader(s, nodes))
	// The entries after lagLast are gone from the leader's log: only a
	// snapshot can bring the lagging replica up to date.
	if l == nil || l.Raft().SnapshotIndex() <= lagLast+1 {
		t.Fatalf("the leader has not compacted past the lagging replica's log (last %d)", lagLast)
	}
	s.Restart(lag)
	run(t, s, 10*time.Second) // the clients finish their calls; all is quiet
	if c.Tracker.Total() != 3*150 {
		t.Fatalf("%d of %d calls completed", c.Tracker.Total(), 3*150)
	}
	r := Replica(s, lag)
	if r.Raft().SnapshotIndex() == 0 {
		t.Fatal("the lagging replica never installed a snapshot")
	}
	want := Replica(s, leader(s, nodes))
	if r.Raft().Applied() != want.Raft().Applied() {
		t.Fatalf("lagging replica applied %d, leader %d", r.Raft().Applied(), want.Raft().Applied())
	}
	if !bytes.Equal(r.State().Snapshot(), want.State().Snapshot()) {
		t.Fatal("the lagging replica's state differs from the leader's")
	}
	if r.State().Sessions() != 3 {
		t.Fatalf("the lagging replica has %d sessions, want 3", r.State().Sessions())
	}
	finish(t, c, s)
}

// TestLinearizable15Clients7Nodes is the large linearizability check: 15
// clients against 7 replicas under every fault.
func TestLinearizable15Clients7Nodes(t *testing.T) {
	c := New(Options{Seed: 10, Nodes: 7, Clients: 15})
	c.ApplyPlan(sim.AllFaults(BaseNetwork, 7), 5*time.Second)
	res := sim.New(c.Config).Run()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if c.Tracker.Total() < 300 {
		t.Fatalf("only %d calls completed", c.Tracker.Total())
	}
	t.Logf("%d calls completed, %v virtual, %d steps", c.Tracker.Total(), res.Virtual, res.Steps)
}

// TestSessionsExpire gives sessions a 1s TTL and clients that think for up
// to 3s between calls: idle sessions expire on every replica alike, a
// client's next write is answered "session expired" (outcome unknown), it
// opens a new session, and the history stays linearizable.
func TestSessionsExpire(t *testing.T) {
	const nodes = 3
	c, s := start(t, Options{Seed: 11, Nodes: nodes, Clients: 4, Keys: 2, Think: 3 * time.Second,
		SnapshotEvery: 10, Sessions: kvsm.SessionConfig{TTL: time.Second}})
	run(t, s, 30*time.Second)
	expired := 0
	for _, o := range s.Observations() {
		if d, ok := o.Value.(kvsm.Done); ok && d.Status == kvsm.StatusSessionExpired {
			expired++
		}
	}
	if expired == 0 {
		t.Fatal("no write was answered session expired")
	}
	l := Replica(s, leader(s, nodes))
	if l == nil {
		t.Fatal("no leader")
	}
	if l.State().Sessions() > 4 {
		t.Fatalf("%d sessions open for 4 clients", l.State().Sessions())
	}
	for i := range nodes {
		r := Replica(s, sim.NodeID(i))
		if r.Raft().Applied() == l.Raft().Applied() && !bytes.Equal(r.State().Snapshot(), l.State().Snapshot()) {
			t.Fatalf("replica %d differs from the leader at the same applied index", i)
		}
	}
	t.Logf("%d writes met an expired session, %d calls completed", expired, c.Tracker.Total())
	finish(t, c, s)
}
