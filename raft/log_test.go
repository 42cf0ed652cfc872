package raft

import (
	"fmt"
	"slices"
	"testing"

	"github.com/flotilla-sim/flotilla/sim"
)

// figure7Leader is the leader's log of Figure 7 in the Raft paper.
var figure7Leader = []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6}

// TestFigure7 replays Figure 7 of the Raft paper: a leader of term 8 with
// log 1 1 1 4 4 5 5 6 6 6 brings each of the paper's followers (a)-(f) to
// exactly its own log (plus its term-8 no-op), removing only conflicting
// entries, and needs at most a few rejections thanks to the conflict hint.
func TestFigure7(t *testing.T) {
	for _, tc := range []struct {
		name       string
		log        []uint64
		maxRejects int
	}{
		{"a", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6}, 1},
		{"b", []uint64{1, 1, 1, 4}, 1},
		{"c", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 1},
		{"d", []uint64{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 1},
		{"e", []uint64{1, 1, 1, 4, 4, 4, 4}, 2},
		{"f", []uint64{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Node 0 is the leader-to-be, node 1 the follower under test,
			// node 2 a voter holding the leader's log.
			m := newManual(t, testConfig(3),
				journalWith(7, None, figure7Leader...),
				journalWith(tc.log[len(tc.log)-1], None, tc.log...),
				journalWith(7, None, figure7Leader...))
			m.fire(0, timerElection) // pre-vote, then the election
			m.deliver(nil)
			l := m.nodes[0]
			if l.Role() != Leader || l.Term() != 8 {
				t.Fatalf("node 0 is %v in term %d, want leader in term 8", l.Role(), l.Term())
			}
			want := terms(l)
			if got := terms(m.nodes[1]); !slices.Equal(got, want) {
				t.Fatalf("follower log %v, want %v", got, want)
			}
			for i := uint64(1); i <= l.LastIndex(); i++ {
				a, _ := l.Entry(i)
				b, _ := m.nodes[1].Entry(i)
				if string(a.Data) != string(b.Data) {
					t.Errorf("entry %d: %q, leader has %q", i, b.Data, a.Data)
				}
			}
			if r := m.stats["reject"]; r > tc.maxRejects {
				t.Errorf("%d rejections, want <= %d", r, tc.maxRejects)
			}
			if l.Commit() != l.LastIndex() {
				t.Errorf("leader commit %d, want %d", l.Commit(), l.LastIndex())
			}
		})
	}
}

// TestFigure8CommitRule: a leader never commits an entry of an earlier
// term by counting replicas, only through an entry of its own term.
func TestFigure8CommitRule(t *testing.T) {
	// S1 (node 0) leads term 4 with log [1:t1 2:t2 3:t4]; index 2 is
	// stored on S1, S2, S3 — a majority — as in Figure 8 (c).
	m := newManual(t, testConfig(5),
		journalWith(3, None, 1, 2),
		journalWith(3, None, 1, 2),
		journalWith(3, None, 1),
		journalWith(3, None, 1),
		journalWith(3, None, 1, 3))
	n := m.nodes[0]
	var out sim.Effects
	n.term = 4
	n.becomeLeader(&out)
	n.synced(3, &out) // its no-op (index 3, term 4) is durable
	n.prs[1].match, n.prs[2].match = 2, 2
	n.maybeCommit(&out)
	if n.Commit() != 0 {
		t.Fatalf("commit %d by counting replicas of an old-term entry; want 0", n.Commit())
	}
	// The term-4 entry reaches a majority: now index 3, and with it 2,
	// is committed.
	n.prs[1].match, n.prs[2].match = 3, 3
	n.maybeCommit(&out)
	if n.Commit() != 3 {
		t.Fatalf("commit %d, want 3", n.Commit())
	}
}

// TestFigure8Scenario plays Figure 8 (c)-(d) with messages: S1 leads term
// 4 and gets its term-2 entry onto S3, but must not commit it, and S5 (with
// the term-3 entry) can then still be elected and overwrite it everywhere.
func TestFigure8Scenario(t *testing.T) {
	cfg := testConfig(5)
	cfg.MaxBatchEntries = 1
	cfg.PreVote, cfg.CheckQuorum = false, false // the paper's Raft
	m := newManual(t, cfg,
		journalWith(3, None, 1, 2),
		journalWith(3, None, 1, 2),
		journalWith(3, None, 1),
		journalWith(3, None, 1),
		journalWith(3, None, 1, 3))
	// S1 is elected in term 4 by S2, S3 (S4 votes too).
	m.fire(0, timerElection)
	m.deliver(func(e envelope) bool {
		_, isAE := as[AppendEntries](e.msg)
		return e.from != 4 && e.to != 4 && !isAE && e.to != 1 || (e.to == 1 && !isAE)
	})
	s1 := m.nodes[0]
	if s1.Role() != Leader || s1.Term() != 4 {
		t.Fatalf("S1 is %v in term %d", s1.Role(), s1.Term())
	}
	// Replicate index 2 (term 2) to S3 only, never the term-4 no-op.
	m.fire(0, timerHeartbeat)
	m.deliver(func(e envelope) bool {
		if _, ok := as[AppendEntries](e.msg); ok && e.to == 2 {
			return m.nodes[2].LastIndex() < 2
		}
		return e.to == 2 || e.from == 2
	})
	if got := terms(m.nodes[2]); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("S3 log %v, want [1 2]", got)
	}
	if s1.Commit() >= 2 {
		t.Fatalf("S1 committed index 2 (term 2) by counting replicas in term 4")
	}
	// S1 crashes. S5 times out and wins with S2, S3, S4's votes (its last
	// term 3 beats their term 2), then overwrites index 2 everywhere.
	// (Its first try, in term 4, finds the votes of term 4 taken.)
	m.queue = nil
	for range 2 {
		m.fire(4, timerElection)
		m.deliver(func(e envelope) bool { return e.to != 0 && e.from != 0 })
	}
	s5 := m.nodes[4]
	if s5.Role() != Leader {
		t.Fatalf("S5 is %v in term %d; it should win", s5.Role(), s5.Term())
	}
	m.fire(4, timerHeartbeat)
	m.deliver(func(e envelope) bool { return e.to != 0 && e.from != 0 })
	for _, i := range []int{1, 2, 3, 4} {
		if got := terms(m.nodes[i]); got[1] != 3 {
			t.Errorf("S%d log %v: index 2 should now be term 3", i+1, got)
		}
	}
}

// TestStaleAppendNeverTruncates: a delayed or duplicated AppendEntries whose
// entries the follower already has must not cut off the entries after them.
func TestStaleAppendNeverTruncates(t *testing.T) {
	m := newManual(t, testConfig(2), journalWith(2, None, 1, 1, 2, 2, 2), journalWith(2, 0, 1, 1, 2, 2, 2))
	f := m.nodes[1]
	var out sim.Effects
	stale := AppendEntries{Term: 2, PrevIndex: 2, PrevTerm: 1, Entries: []Entry{
		{Index: 3, Term: 2, Data: []byte("e3.2")}, {Index: 4, Term: 2, Data: []byte("e4.2")}}}
	f.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: stale}, &out)
	if got := terms(f); !slices.Equal(got, []uint64{1, 1, 2, 2, 2}) {
		t.Fatalf("log after stale AppendEntries: %v", got)
	}
	if len(out.Appends) != 0 {
		t.Errorf("stale AppendEntries wrote %d journal records", len(out.Appends))
	}
	reply, _ := as[AppendEntriesReply](out.Sends[len(out.Sends)-1].Msg)
	if !reply.Success || reply.Index != 4 {
		t.Errorf("reply %+v, want success with index 4", reply)
	}
	// A conflicting entry does truncate, from the conflict on.
	out.Reset()
	conflict := AppendEntries{Term: 3, PrevIndex: 3, PrevTerm: 2, Entries: []Entry{{Index: 4, Term: 3}}}
	f.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: conflict}, &out)
	if got := terms(f); !slices.Equal(got, []uint64{1, 1, 2, 3}) {
		t.Fatalf("log after conflicting AppendEntries: %v", got)
	}
}

// TestStaleTermIgnored: messages from an older term change nothing and are
// answered with the current term.
func TestStaleTermIgnored(t *testing.T) {
	m := newManual(t, testConfig(3), journalWith(5, None, 1, 5), journalWith(5, None, 1, 5), journalWith(5, None, 1, 5))
	f := m.nodes[1]
	for _, msg := range []sim.Message{
		AppendEntries{Term: 4, PrevIndex: 1, PrevTerm: 1, Commit: 2, Entries: []Entry{{Index: 2, Term: 4}}},
		Heartbeat{Term: 4, Commit: 2},
		RequestVote{Term: 4, LastIndex: 9, LastTerm: 4},
		InstallSnapshot{Term: 4, Index: 9, LastTerm: 4},
	} {
		var out sim.Effects
		f.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: msg}, &out)
		if f.Term() != 5 || f.Vote() != None || f.Commit() != 0 || !slices.Equal(terms(f), []uint64{1, 5}) || len(out.Appends) != 0 {
			t.Fatalf("%T from term 4 changed state: term %d vote %d commit %d log %v", msg, f.Term(), f.Vote(), f.Commit(), terms(f))
		}
		for _, s := range out.Sends {
			if got := fmt.Sprint(s.Msg); got == "" {
				t.Fatal("empty reply")
			}
		}
	}
}

// TestVoteRules: one vote per term, and only for an up-to-date log; the
// vote is durable before the reply.
func TestVoteRules(t *testing.T) {
	m := newManual(t, testConfig(3), journalWith(2, None, 1, 2), journalWith(2, None, 1, 2, 2), journalWith(2, None, 1))
	v := m.nodes[1]
	ask := func(from sim.NodeID, rv RequestVote) (RequestVoteReply, sim.Effects) {
		var out sim.Effects
		v.Step(sim.Event{Kind: sim.EventMessage, From: from, Msg: rv}, &out)
		return out.Sends[len(out.Sends)-1].Msg.(RequestVoteReply), out
	}
	// Node 2's log (last term 1) is behind: refused.
	if r, _ := ask(2, RequestVote{Term: 3, LastIndex: 1, LastTerm: 1}); r.Granted {
		t.Error("granted a vote to a candidate with an out-of-date log")
	}
	// Node 0's log is shorter in the same last term: refused.
	if r, _ := ask(0, RequestVote{Term: 3, LastIndex: 2, LastTerm: 2}); r.Granted {
		t.Error("granted a vote to a candidate with a shorter log")
	}
	// Up to date: granted, and the vote is journaled in the same event.
	r, out := ask(0, RequestVote{Term: 3, LastIndex: 3, LastTerm: 2})
	if !r.Granted || v.Vote() != 0 {
		t.Fatalf("vote not granted: %+v", r)
	}
	if len(out.Appends) == 0 || !out.Syncs() {
		t.Error("vote granted without a durable journal write")
	}
	// A second candidate in the same term: refused.
	if r, _ := ask(2, RequestVote{Term: 3, LastIndex: 9, LastTerm: 3}); r.Granted {
		t.Error("voted twice in one term")
	}
}

// TestVoteSurvivesRestart: a vote is in the journal written by the event
// that grants it, so a voter that crashes and restarts cannot vote again in
// the same term; likewise appended entries survive.
func TestVoteSurvivesRestart(t *testing.T) {
	j := journalWith(2, None, 1, 2)
	boot := func() *Node {
		m := newManual(t, testConfig(3), j, j, j)
		return m.nodes[1]
	}
	v := boot()
	var out sim.Effects
	v.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: RequestVote{Term: 3, LastIndex: 2, LastTerm: 2}}, &out)
	if r := out.Sends[len(out.Sends)-1].Msg.(RequestVoteReply); !r.Granted {
		t.Fatal("vote not granted")
	}
	if out.Sends[len(out.Sends)-1].Early {
		t.Fatal("the vote leaves before it is durable (SendEarly)")
	}
	j.Records = append(j.Records, out.Appends...) // what the host made durable before the reply left
	v = boot()
	if v.Term() != 3 || v.Vote() != 0 {
		t.Fatalf("after restart: term %d vote %d, want term 3 vote 0", v.Term(), v.Vote())
	}
	out.Reset()
	v.Step(sim.Event{Kind: sim.EventMessage, From: 2, Msg: RequestVote{Term: 3, LastIndex: 2, LastTerm: 2}}, &out)
	if r := out.Sends[len(out.Sends)-1].Msg.(RequestVoteReply); r.Granted {
		t.Fatal("voted twice in term 3 across a restart")
	}
	// Entries acknowledged to the leader are durable too.
	out.Reset()
	v.Step(sim.Event{Kind: sim.EventMessage, From: 0, Msg: AppendEntries{Term: 3, PrevIndex: 2, PrevTerm: 2,
		Entries: []Entry{{Index: 3, Term: 3, Data: []byte("x")}}}}, &out)
	if r, _ := as[AppendEntriesReply](out.Sends[len(out.Sends)-1].Msg); !r.Success || r.Index != 3 {
		t.Fatalf("append refused: %+v", r)
	}
	if out.Sends[len(out.Sends)-1].Early {
		t.Fatal("the acknowledgment leaves before the entries are durable (SendEarly)")
	}
	j.Records = append(j.Records, out.Appends...)
	if v = boot(); v.LastIndex() != 3 {
		t.Fatalf("after restart: last index %d, want 3", v.LastIndex())
	}
}
