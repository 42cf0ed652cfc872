package sim

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// probe is a test machine. On start it records its journal; when Period is
// set it broadcasts a hello to every peer on a timer; it obeys cmd messages.
type probe struct {
	id      NodeID
	n       int
	period  time.Duration
	booted  Journal
	recv    []received
	fired   []time.Duration // Event.Now of each timer firing
	started bool
	early   int        // events handled before the start event
	synced  []received // EventSynced: when, and the token in from
}

type received struct {
	at   time.Duration
	from NodeID
	msg  Message
}

type hello struct{ From NodeID }

// cmd asks a probe to append records, optionally sync, send, or set a
// one-shot timer.
type cmd struct {
	Records  []string
	Sync     bool
	SendTo   NodeID // -1: none
	Snapshot uint64 // with SnapUpTo
	SnapUpTo uint64
	Timer    time.Duration
	Early    bool   // the send to SendTo is SendEarly
	Notify   uint64 // if not 0, NotifySynced with this token
}

func (p *probe) Step(ev Event, out *Effects) {
	if ev.Kind != EventStart && !p.started {
		p.early++
	}
	switch ev.Kind {
	case EventStart:
		p.started = true
		p.booted = ev.Boot.Journal
		if p.period > 0 {
			out.SetTimer("tick", p.period)
		}
	case EventSynced:
		p.synced = append(p.synced, received{at: ev.Now, msg: ev.Token})
	case EventTimer:
		p.fired = append(p.fired, ev.Now)
		if ev.Timer == "tick" {
			for i := range p.n {
				if NodeID(i) != p.id {
					out.Send(NodeID(i), hello{From: p.id})
				}
			}
			out.SetTimer("tick", p.period)
		}
	case EventMessage:
		p.recv = append(p.recv, received{at: ev.Now, from: ev.From, msg: ev.Msg})
		out.Observe(ev.Msg)
		c, ok := ev.Msg.(cmd)
		if !ok {
			return
		}
		for _, r := range c.Records {
			out.Append([]byte(r))
		}
		if c.Snapshot > 0 {
			out.SaveSnapshot([]byte(fmt.Sprint(c.Snapshot)), c.SnapUpTo)
		}
		if c.Sync {
			out.Sync()
		}
		if c.SendTo >= 0 && c.Early {
			out.SendEarly(c.SendTo, hello{From: p.id})
		} else if c.SendTo >= 0 {
			out.Send(c.SendTo, hello{From: p.id})
		}
		if c.Notify != 0 {
			out.NotifySynced(c.Notify)
		}
		if c.Timer > 0 {
			out.SetTimer("once", c.Timer)
		}
	}
}

func probes(n int, period time.Duration) func(NodeID) Machine {
	return func(id NodeID) Machine { return &probe{id: id, n: n, period: period} }
}

func probeOf(s *Sim, id NodeID) *probe { return s.Machine(id).(*probe) }

// inFlight counts message copies the simulator holds, independently of
// the counter it keeps.
func inFlight(s *Sim) uint64 {
	var c uint64
	for _, k := range s.q.keys {
		if s.q.bodies[k.slot].kind == itemMessage {
			c++
		}
	}
	for _, n := range s.nodes {
		for _, it := range n.held {
			if it.kind == itemMessage {
				c++
			}
		}
	}
	return c + uint64(len(s.clogHeld))
}

// drawFaults draws up to most faults within d for n nodes, in time order.
func drawFaults(t *rapid.T, n int, d time.Duration, most int) []Fault {
	faults := make([]Fault, rapid.IntRange(0, most).Draw(t, "faults"))
	for i := range faults {
		faults[i] = drawFault(t, n, d, fmt.Sprint(i))
	}
	slices.SortStableFunc(faults, func(a, b Fault) int { return int(a.At - b.At) })
	return faults
}

func drawFault(t *rapid.T, n int, d time.Duration, label string) Fault {
	f := Fault{
		At:   time.Duration(rapid.Int64Range(0, int64(d)).Draw(t, label+"at")),
		Kind: FaultKind(rapid.IntRange(int(FaultPartition), int(FaultResume)).Draw(t, label+"kind")),
		Node: NodeID(rapid.IntRange(0, n-1).Draw(t, label+"node")),
		Side: rapid.Uint64Range(1, 1<<n-1).Draw(t, label+"side"),
	}
	f.Peer = NodeID((int(f.Node) + rapid.IntRange(1, n-1).Draw(t, label+"peer")) % n)
	return f
}

// Every message sent is, at every moment, delivered, dropped or in flight,
// whatever the network and the faults.
func TestAccountingUnderRapidFaults(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 5).Draw(t, "nodes")
		d := 3 * time.Second
		faults := drawFaults(t, n, d, 20)
		cfg := Config{
			Seed:  rapid.Uint64().Draw(t, "seed"),
			Nodes: n,
			New:   probes(n, 10*time.Millisecond),
			Network: Network{
				Delay:     time.Millisecond,
				Jitter:    time.Duration(rapid.Int64Range(0, int64(5*time.Millisecond)).Draw(t, "jitter")),
				Loss:      rapid.Float64Range(0, 0.5).Draw(t, "loss"),
				Duplicate: rapid.Float64Range(0, 0.5).Draw(t, "dup"),
				Reorder:   rapid.Float64Range(0, 0.5).Draw(t, "reorder"),
				TailProb:  rapid.Float64Range(0, 0.1).Draw(t, "tail"),
				TailDelay: 20 * time.Millisecond,
			},
			SyncLatency: time.Duration(rapid.Int64Range(0, int64(3*time.Millisecond)).Draw(t, "synclat")),
			Faults:      faults,
			Duration:    d,
		}
		cfg.Checkers = []Checker{{Name: "accounting", Step: func(s *Sim) error {
			st := s.Stats()
			if st.Sent+st.Duplicated != st.Delivered+st.Dropped+st.InFlight {
				return fmt.Errorf("sent %d + dup %d != delivered %d + dropped %d + in flight %d",
					st.Sent, st.Duplicated, st.Delivered, st.Dropped, st.InFlight)
			}
			if got := inFlight(s); got != st.InFlight {
				return fmt.Errorf("counter says %d in flight, queue holds %d", st.InFlight, got)
			}
			return nil
		}}}
		if res := New(cfg).Run(); res.Err != nil {
			t.Fatal(res.Err)
		}
	})
}

func helloCounts(p *probe, from, to time.Duration) map[NodeID]int {
	c := map[NodeID]int{}
	for _, r := range p.recv {
		if _, ok := r.msg.(hello); ok && r.at >= from && r.at < to {
			c[r.from]++
		}
	}
	return c
}

func TestPartitionBlocksBothWays(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 3, New: probes(3, 10*time.Millisecond), Network: Network{Delay: time.Millisecond}})
	s.RunFor(time.Second)
	s.Partition([]NodeID{0}, []NodeID{1, 2})
	s.RunFor(time.Second)
	s.Heal()
	s.RunFor(time.Second)
	during := func(id NodeID) map[NodeID]int {
		return helloCounts(probeOf(s, id), time.Second+2*time.Millisecond, 2*time.Second)
	}
	if c := during(0); c[1]+c[2] != 0 {
		t.Errorf("node 0 heard %v across the partition", c)
	}
	if c := during(1); c[0] != 0 || c[2] == 0 {
		t.Errorf("node 1 heard %v; want nothing from 0, something from 2", c)
	}
	if c := helloCounts(probeOf(s, 0), 2*time.Second+2*time.Millisecond, 3*time.Second); c[1] == 0 || c[2] == 0 {
		t.Errorf("after healing node 0 heard %v", c)
	}
}

func TestOneWayBlockBlocksOneWay(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 10*time.Millisecond), Network: Network{Delay: time.Millisecond}})
	s.Block(0, 1)
	s.RunFor(time.Second)
	if c := helloCounts(probeOf(s, 1), 0, time.Second); c[0] != 0 {
		t.Errorf("node 1 heard node 0 %d times through a cut link", c[0])
	}
	if c := helloCounts(probeOf(s, 0), 0, time.Second); c[1] < 90 {
		t.Errorf("node 0 heard node 1 only %d times over the open direction", c[1])
	}
}

func TestClogHoldsAndReleasesInOrder(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), Network: Network{Delay: time.Millisecond}})
	s.RunFor(time.Millisecond)
	s.Clog(0, 1)
	for range 3 {
		s.Inject(0, cmd{SendTo: 1})
		s.RunFor(10 * time.Millisecond)
	}
	if got := len(probeOf(s, 1).recv); got != 0 {
		t.Fatalf("%d messages crossed a clogged link", got)
	}
	s.Unclog(0, 1)
	s.RunFor(time.Millisecond)
	if got := len(probeOf(s, 1).recv); got != 3 {
		t.Fatalf("after unclogging %d of 3 messages arrived", got)
	}
	if st := s.Stats(); st.Dropped != 0 {
		t.Errorf("clogging dropped %d messages", st.Dropped)
	}
}

// diskModel is what the durable journal should hold: every record written
// before the last sync, and none written after it.
type diskModel struct{ written, durable []string }

func TestCrashLosesExactlyUnsyncedWrites(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := New(Config{Seed: 7, Nodes: 2, New: probes(2, 0)})
		var m diskModel
		s.RunFor(time.Millisecond)
		for i := range rapid.IntRange(1, 30).Draw(t, "steps") {
			if rapid.IntRange(0, 4).Draw(t, fmt.Sprint("crash", i)) == 0 {
				s.Crash(0)
				s.Restart(0)
				s.RunFor(time.Millisecond)
				got := probeOf(s, 0).booted.Records
				if diff := cmp.Diff(m.durable, toStrings(got)); diff != "" {
					t.Fatalf("recovered journal differs from the synced writes (-want +got):\n%s", diff)
				}
				m.written = slices.Clone(m.durable)
				continue
			}
			c := cmd{SendTo: -1, Sync: rapid.Bool().Draw(t, fmt.Sprint("sync", i))}
			for j := range rapid.IntRange(0, 3).Draw(t, fmt.Sprint("n", i)) {
				c.Records = append(c.Records, fmt.Sprintf("r%d.%d", i, j))
			}
			if rapid.Bool().Draw(t, fmt.Sprint("send", i)) {
				c.SendTo = 1 // a send syncs too
			}
			m.written = append(m.written, c.Records...)
			if c.Sync || c.SendTo >= 0 {
				m.durable = slices.Clone(m.written)
			}
			s.Inject(0, c)
			s.RunFor(time.Millisecond)
		}
	})
}

func toStrings(b [][]byte) []string {
	var out []string
	for _, r := range b {
		out = append(out, string(r))
	}
	return out
}

func TestSyncLatencyHoldsMessagesAndCrashLosesBoth(t *testing.T) {
	for _, tc := range []struct {
		crashAfter time.Duration
		durable    bool
	}{{2 * time.Millisecond, false}, {6 * time.Millisecond, true}} {
		s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), SyncLatency: 5 * time.Millisecond})
		s.RunFor(time.Millisecond)
		s.Inject(0, cmd{Records: []string{"x"}, SendTo: 1})
		s.RunFor(tc.crashAfter)
		s.Crash(0)
		s.RunFor(10 * time.Millisecond)
		got := len(probeOf(s, 1).recv)
		if rec := len(s.Durable(0).Records); (rec == 1) != tc.durable || (got == 1) != tc.durable {
			t.Errorf("crash %v after the write: durable records %d, messages delivered %d; want both %v",
				tc.crashAfter, rec, got, tc.durable)
		}
	}
}

// An early send leaves at once while its event's write syncs; the
// notification comes when the sync completes, and never if the node
// crashes first, though the early message still arrives.
func TestSendEarlyAndNotifySynced(t *testing.T) {
	for _, crash := range []bool{false, true} {
		s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), SyncLatency: 5 * time.Millisecond})
		s.RunFor(time.Millisecond)
		s.Inject(0, cmd{Records: []string{"x"}, SendTo: 1, Early: true, Notify: 7})
		s.RunFor(2 * time.Millisecond)
		if got := len(probeOf(s, 1).recv); got != 1 {
			t.Fatalf("crash=%v: %d messages delivered 2ms into a 5ms sync, want the early one", crash, got)
		}
		if crash {
			s.Crash(0)
			s.Restart(0)
		}
		s.RunFor(10 * time.Millisecond)
		var want []received
		if !crash {
			want = []received{{at: 6 * time.Millisecond, msg: uint64(7)}}
		}
		if diff := cmp.Diff(want, probeOf(s, 0).synced, cmp.AllowUnexported(received{})); diff != "" {
			t.Errorf("crash=%v: synced events (-want +got):\n%s", crash, diff)
		}
		if rec := len(s.Durable(0).Records); rec != len(want) {
			t.Errorf("crash=%v: %d durable records, want %d", crash, rec, len(want))
		}
	}
}

// Notifications come in the order they were asked for, each once the
// writes before it are durable (syncs overlap: each takes SyncLatency from
// its request, and none completes before an earlier one), and a plain send
// waits for every sync in progress.
func TestNotificationsFollowTheSyncs(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), SyncLatency: 5 * time.Millisecond})
	s.RunFor(time.Millisecond)
	s.Inject(0, cmd{Records: []string{"a"}, SendTo: -1, Notify: 1})
	s.RunFor(time.Millisecond)
	s.Inject(0, cmd{Records: []string{"b"}, SendTo: -1, Notify: 2})
	s.Inject(0, cmd{SendTo: 1, Notify: 3})
	s.RunFor(20 * time.Millisecond)
	want := []received{{at: 6 * time.Millisecond, msg: uint64(1)}, {at: 7 * time.Millisecond, msg: uint64(2)}, {at: 7 * time.Millisecond, msg: uint64(3)}}
	if diff := cmp.Diff(want, probeOf(s, 0).synced, cmp.AllowUnexported(received{})); diff != "" {
		t.Errorf("synced events (-want +got):\n%s", diff)
	}
	if r := probeOf(s, 1).recv; len(r) != 1 || r[0].at != 7*time.Millisecond {
		t.Errorf("plain send delivered %v, want once at 7ms (after both syncs)", r)
	}
}

func TestTornCrashKeepsAPrefix(t *testing.T) {
	prefixes := map[int]bool{}
	for seed := range uint64(40) {
		s := New(Config{Seed: seed, Nodes: 1, New: probes(1, 0)})
		s.RunFor(time.Millisecond)
		s.Inject(0, cmd{Records: []string{"a"}, Sync: true, SendTo: -1})
		s.Inject(0, cmd{Records: []string{"b", "c", "d", "e"}, SendTo: -1})
		s.RunFor(time.Millisecond)
		s.CrashTorn(0)
		got := toStrings(s.Durable(0).Records)
		want := []string{"a", "b", "c", "d", "e"}[:len(got)]
		if len(got) < 1 || len(got) > 4 || !slices.Equal(got, want) {
			t.Fatalf("seed %d: torn crash left %q; want a prefix of [a b c d] keeping the synced a", seed, got)
		}
		prefixes[len(got)] = true
	}
	if len(prefixes) < 3 {
		t.Errorf("torn crashes kept only prefix lengths %v over 40 seeds", prefixes)
	}
}

// TestCrashDuringSyncsKeepsAPrefix: with syncs that take time and overlap,
// a crash leaves durable exactly the writes whose syncs had completed, and
// a torn crash those and a prefix of the rest, in the order written: writes
// of syncs in progress first, then pending ones, never all of them.
func TestCrashDuringSyncsKeepsAPrefix(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const latency = 5 * time.Millisecond
		s := New(Config{Seed: rapid.Uint64().Draw(t, "seed"), Nodes: 1, New: probes(1, 0), SyncLatency: latency})
		s.RunFor(time.Millisecond)
		type syncing struct {
			done time.Duration
			upTo int // writes durable once it completes
		}
		var written []string // since the last boot, after what it booted with
		var syncs []syncing
		var lastDone time.Duration
		base := 0 // writes durable at the last boot
		for i := range rapid.IntRange(1, 40).Draw(t, "steps") {
			switch rapid.IntRange(0, 5).Draw(t, fmt.Sprint("op", i)) {
			case 0, 1: // a crash, plain or torn
				torn := rapid.Bool().Draw(t, fmt.Sprint("torn", i))
				synced := base
				for _, y := range syncs {
					if y.done <= s.Now() {
						synced = y.upTo
					}
				}
				if torn {
					s.CrashTorn(0)
				} else {
					s.Crash(0)
				}
				got := toStrings(s.Durable(0).Records)
				all := len(written)
				if n := len(got); n < synced || n > all || n == all && n > synced || !torn && n != synced || !slices.Equal(got, written[:n]) {
					t.Fatalf("crash (torn %v) at %v after %q, %d of them synced: recovered %q", torn, s.Now(), written, synced, got)
				}
				s.Restart(0)
				written, syncs, lastDone, base = got, nil, 0, len(got)
			default:
				c := cmd{SendTo: -1, Sync: rapid.Bool().Draw(t, fmt.Sprint("sync", i))}
				for j := range rapid.IntRange(0, 3).Draw(t, fmt.Sprint("n", i)) {
					c.Records = append(c.Records, fmt.Sprintf("r%d.%d", i, j))
				}
				written = append(written, c.Records...)
				covered := base
				if len(syncs) > 0 {
					covered = syncs[len(syncs)-1].upTo
				}
				if c.Sync && len(written) > covered {
					lastDone = max(s.Now()+latency, lastDone)
					syncs = append(syncs, syncing{lastDone, len(written)})
				}
				s.Inject(0, c)
			}
			s.RunFor(time.Duration(rapid.IntRange(0, 4).Draw(t, fmt.Sprint("wait", i))) * time.Millisecond)
		}
	})
}

func TestSnapshotReplacesPrefix(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 1, New: probes(1, 0)})
	s.RunFor(time.Millisecond)
	s.Inject(0, cmd{Records: []string{"0", "1", "2", "3"}, Sync: true, SendTo: -1})
	s.Inject(0, cmd{Records: []string{"4"}, Snapshot: 9, SnapUpTo: 3, Sync: true, SendTo: -1})
	s.RunFor(time.Millisecond)
	s.Crash(0)
	s.Restart(0)
	s.RunFor(time.Millisecond)
	j := probeOf(s, 0).booted
	if string(j.Snapshot) != "9" || j.Base != 3 || !slices.Equal(toStrings(j.Records), []string{"3", "4"}) || j.Next() != 5 {
		t.Errorf("journal after snapshot: snapshot %q base %d records %q", j.Snapshot, j.Base, toStrings(j.Records))
	}
}

func TestDriftChangesWhenTimersFire(t *testing.T) {
	for _, ppm := range []int32{0, 100_000, -50_000} {
		s := New(Config{Seed: 1, Nodes: 1, New: probes(1, 0), DriftPPM: []int32{ppm}})
		s.RunFor(time.Millisecond)
		s.Inject(0, cmd{SendTo: -1, Timer: time.Second})
		start := s.Now()
		if err := s.RunUntil(func(s *Sim) bool { return len(probeOf(s, 0).fired) > 0 }, 2*time.Second); err != nil {
			t.Fatal(err)
		}
		want := time.Duration(float64(time.Second) * 1e6 / (1e6 + float64(ppm)))
		if got := s.Now() - start; got < want-time.Nanosecond || got > want+time.Nanosecond {
			t.Errorf("drift %d ppm: a 1 s timer fired after %v of global time; want %v", ppm, got, want)
		}
	}
}

// With drift, a timer never fires before the node's own clock has advanced
// by the full duration, whatever the rounding.
func TestDriftedTimersNeverFireEarlyOnTheNodesClock(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := &node{drift: int64(rapid.Int32Range(-100_000, 100_000).Draw(t, "ppm"))}
		now := time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "now"))
		d := time.Duration(rapid.Int64Range(0, int64(time.Minute)).Draw(t, "d"))
		at := n.fireAt(now, d)
		if n.localNow(at)-n.localNow(now) < d {
			t.Fatalf("fires at local %v, %v after local %v; want at least %v", n.localNow(at), n.localNow(at)-n.localNow(now), n.localNow(now), d)
		}
		if at > now && n.localNow(at-1)-n.localNow(now) >= d {
			t.Fatalf("fires at %v though the deadline was already reached at %v", at, at-1)
		}
	})
}

func TestPauseHoldsEventsUntilResume(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), Network: Network{Delay: time.Millisecond}})
	s.RunFor(time.Millisecond)
	s.Inject(1, cmd{SendTo: -1, Timer: 10 * time.Millisecond})
	s.RunFor(time.Millisecond)
	s.Pause(1)
	s.Inject(0, cmd{SendTo: 1})
	s.RunFor(50 * time.Millisecond)
	p := probeOf(s, 1)
	if len(p.fired) != 0 || len(p.recv) != 1 {
		t.Fatalf("paused node handled events: %d timers, %d messages", len(p.fired), len(p.recv))
	}
	s.Resume(1)
	s.RunFor(0)
	if len(p.fired) != 1 || len(p.recv) != 2 {
		t.Errorf("after resume: %d timers, %d messages; want 1 and 2", len(p.fired), len(p.recv))
	}
}

type silent struct{}

func (silent) Step(Event, *Effects) {}

func TestLivenessFailureIsReported(t *testing.T) {
	res := New(Config{Seed: 1, Nodes: 1, New: func(NodeID) Machine { return silent{} }, Duration: time.Second,
		Liveness: &Liveness{Name: "never", Within: time.Second, Cond: func(*Sim) bool { return false }}}).Run()
	var f *Failure
	if !errors.As(res.Err, &f) || f.Checker != "liveness never" {
		t.Fatalf("got %v; want a liveness failure", res.Err)
	}
}

func TestCheckerFailureStopsTheRun(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 10*time.Millisecond),
		Checkers: []Checker{{Name: "no-hellos", Step: func(s *Sim) error {
			if len(s.Observations()) > 0 {
				return fmt.Errorf("saw %v", s.Observations()[0].Value)
			}
			return nil
		}}}})
	err := s.RunFor(time.Second)
	if err == nil || s.Now() > 20*time.Millisecond {
		t.Fatalf("err %v at %v; want a failure at the first hello", err, s.Now())
	}
	if s.Step() {
		t.Error("Step went on after a failure")
	}
}

func TestGenerateFaultsHealsEverything(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := FaultConfig{Partitions: rapid.Bool().Draw(t, "p"), OneWay: rapid.Bool().Draw(t, "o"),
			Clogs: rapid.Bool().Draw(t, "c"), Crashes: rapid.Bool().Draw(t, "cr"), TornWrites: rapid.Bool().Draw(t, "t"),
			Pauses: rapid.Bool().Draw(t, "pa"), Every: time.Duration(rapid.Int64Range(0, int64(time.Second)).Draw(t, "every"))}
		n := rapid.IntRange(2, 7).Draw(t, "n")
		d := 10 * time.Second
		fs := GenerateFaults(Stream(rapid.Uint64().Draw(t, "seed"), 1), cfg, n, d)
		starts := map[FaultKind]int{}
		for i, f := range fs {
			if f.At < 0 || f.At > d || (i > 0 && f.At < fs[i-1].At) {
				t.Fatalf("fault %d at %v out of order or range", i, f.At)
			}
			starts[f.Kind]++
		}
		if starts[FaultCrash]+starts[FaultCrashTorn] != starts[FaultRestart] || starts[FaultPause] != starts[FaultResume] {
			t.Fatalf("unbalanced episodes: %v", starts)
		}
		if starts[FaultPartition]+starts[FaultBlock]+starts[FaultClog] != starts[FaultHeal] {
			t.Fatalf("network faults without heals: %v", starts)
		}
	})
}

// A message due at the very instant a node restarts reaches the new machine
// after its start event, never before.
func TestRestartBootsBeforeSameInstantMessages(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0)})
	s.RunFor(time.Millisecond)
	s.Crash(1)
	s.Schedule([]Fault{{At: 5 * time.Millisecond, Kind: FaultRestart, Node: 1}})
	s.InjectAt(5*time.Millisecond, 1, cmd{SendTo: -1})
	s.RunFor(10 * time.Millisecond)
	p := probeOf(s, 1)
	if len(p.recv) != 1 || p.early != 0 {
		t.Fatalf("restarted node got %d messages, %d before its start; want 1, 0", len(p.recv), p.early)
	}
}

// Notifications held while a node is paused come out in order at resume,
// before one that falls due at that same instant.
func TestNotificationsStayInOrderAcrossAPause(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), SyncLatency: 5 * time.Millisecond})
	s.Schedule([]Fault{{At: 5 * time.Millisecond, Kind: FaultPause, Node: 0}, {At: 7 * time.Millisecond, Kind: FaultResume, Node: 0}})
	s.RunFor(time.Millisecond)
	s.Inject(0, cmd{Records: []string{"a"}, SendTo: -1, Notify: 1}) // durable at 6ms
	s.RunFor(time.Millisecond)
	s.Inject(0, cmd{Records: []string{"b"}, SendTo: -1, Notify: 2}) // durable at 7ms
	s.RunFor(10 * time.Millisecond)
	var got []uint64
	for _, r := range probeOf(s, 0).synced {
		got = append(got, r.msg.(uint64))
	}
	if !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("notifications %v, want [1 2]", got)
	}
}

// A crash at the very instant a sync completes keeps the synced writes: the
// message that waited for them is delivered, so they must be durable.
func TestCrashAtSyncCompletionKeepsTheWrites(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 2, New: probes(2, 0), SyncLatency: 5 * time.Millisecond})
	s.Schedule([]Fault{{At: 6 * time.Millisecond, Kind: FaultCrash, Node: 0}})
	s.RunFor(time.Millisecond)
	s.Inject(0, cmd{Records: []string{"x"}, SendTo: 1}) // leaves at 6ms with its write
	s.RunFor(10 * time.Millisecond)
	delivered, durable := len(probeOf(s, 1).recv), len(s.Durable(0).Records)
	if delivered != 1 || durable != 1 {
		t.Fatalf("%d messages delivered and %d writes durable, want both 1: the sync completed, so the message left with its write", delivered, durable)
	}
}

// TestOverlappingSyncsKeepUnsyncedBounded: a node that writes and syncs
// faster than its syncs complete always has writes in flight, so its
// unsynced writes never all become durable at once; the array that holds
// them must still not grow with every write ever made.
func TestOverlappingSyncsKeepUnsyncedBounded(t *testing.T) {
	s := New(Config{Seed: 1, Nodes: 1, New: probes(1, 0), SyncLatency: 5 * time.Millisecond})
	s.RunFor(time.Millisecond)
	for i := range 10_000 {
		s.Inject(0, cmd{SendTo: -1, Sync: true, Records: []string{fmt.Sprint(i)}})
		s.RunFor(time.Millisecond)
	}
	n := s.nodes[0]
	if pending := len(n.unsynced) - n.applied; pending > 8 {
		t.Fatalf("%d writes not yet durable with syncs of 5ms every 1ms", pending)
	}
	if c := cap(n.unsynced); c > 256 {
		t.Fatalf("unsynced writes held in an array of %d after 10,000 writes", c)
	}
	if got := len(s.Durable(0).Records); got < 10_000-8 {
		t.Fatalf("%d records durable of 10,000", got)
	}
}

// TestPlainNetworkDrawsAsSample: send draws a plain network's delay itself
// rather than through Network.sample; the two must agree draw for draw, so
// a run is the same either way (the hash covers every event's time).
func TestPlainNetworkDrawsAsSample(t *testing.T) {
	for _, nw := range []Network{
		{Delay: time.Millisecond, Jitter: time.Millisecond, Loss: 0.01},
		{Delay: 3 * time.Millisecond, Jitter: 7*time.Millisecond + 3},
	} {
		if !plainNetwork(nw) {
			t.Fatalf("%v: not plain", nw)
		}
		run := func(viaSample bool) (uint64, Stats) {
			s := New(Config{Seed: 7, Nodes: 4, New: probes(4, 10*time.Millisecond), Network: nw})
			s.netPlain = !viaSample
			s.RunFor(10 * time.Second)
			return s.Hash(), s.Stats()
		}
		h1, st1 := run(false)
		h2, st2 := run(true)
		if st1.Delivered < 1000 {
			t.Fatalf("%v: only %d messages delivered", nw, st1.Delivered)
		}
		if h1 != h2 || st1 != st2 {
			t.Errorf("%v: inline draws give hash %x %+v, Network.sample %x %+v", nw, h1, st1, h2, st2)
		}
	}
}
