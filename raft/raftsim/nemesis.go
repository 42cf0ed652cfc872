package raftsim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// Nemesis is a fault driver that watches a raft cluster and strikes at the
// moments the classic bugs need, where a random fault schedule almost never
// lands. Each episode starts from a cluster with every replica up and a
// leader, and is one of:
//
//   - Figure 8 of the Raft paper. A leader appends entries that reach only
//     a minority and is cut off; the majority elects a second leader, which
//     appends a conflicting entry at the same index and is cut off in turn;
//     the first side rejoins the rest and elects a third leader, which
//     replicates the old-term entry to a quorum before committing anything
//     of its own term (mostly, the clients cannot reach it); then the third
//     leader is cut off and the second is given a quorum of replicas whose
//     logs end before its term, so it wins and overwrites the old-term
//     entry. That is correct only if the third leader never counted the
//     old-term entry as committed.
//   - A vote forgotten in a crash. The leader crashes; as soon as a
//     candidate appears, it is given exactly a quorum; one of its voters
//     crashes (sometimes tearing its unsynced journal tail) either right
//     after granting its vote or once the candidate has won, restarts at
//     once and is put with the replicas that never saw the candidate, which
//     campaign in the same term (a reply already sent still reaches the
//     candidate). A vote that reached the candidate must survive the crash.
//   - An acknowledgment forgotten in a crash. Every follower that gets a
//     new entry of the leader crashes once (some tearing their journal
//     tail) and restarts, either the moment it gets the entry or the moment
//     the leader commits it; once the leader commits it, the leader is cut
//     off. The followers whose acknowledgments counted must still hold the
//     entry, so the next leader does.
//
// The nemesis needs a workload that proposes at random replicas (Scenario's
// client does) and is meant for runs whose leaders append no no-op (see
// raft.Config.NoLeaderNoop), since the no-op commits an entry of the new term at
// once, and with a sync latency, so that writes have a window in which
// they are not yet durable. It draws every choice from its seed, so a run
// replays exactly. The safety checkers, not the nemesis, decide whether a
// run is correct.
//
// The engine runs checkers after every event; the nemesis acts through that
// hook (see Hook) and never fails a run itself.
type Nemesis struct {
	n, q  int
	rng   *rand.Rand
	until time.Duration
	stats NemesisStats

	phase    phase
	deadline time.Duration
	next     time.Duration // idle until then
	acts     []string      // what the current or last episode did

	// Figure 8 episode: the first, second and third leaders, the side the
	// first was cut off with, the disputed index and the leaders' terms.
	l1, l2, l3     sim.NodeID
	minority, rest []sim.NodeID
	voters         []sim.NodeID
	j1             uint64
	t1, t2, t3     uint64
	reachedAt      time.Duration // when the old-term entry reached a quorum
	reached        bool

	// Vote episode: the candidate, its side, the term, whether a voter
	// crashes right after voting, and the replicas the nemesis crashed
	// and must restart. The acknowledgment episode keeps its leader, term
	// and commit index in l1, t1 and j1, and the election after the crash
	// in side and voteT.
	cand  sim.NodeID
	side  []sim.NodeID
	voteT uint64
	early bool
	down  []sim.NodeID
	hit   []sim.NodeID // followers crashed in an acknowledgment episode
}

// NemesisStats counts how far the nemesis's episodes got.
type NemesisStats struct {
	// Episodes is the number of episodes started.
	Episodes int
	// Figure8 counts the Figure 8 episodes that reached the swap: an entry
	// of an old term on a quorum under a leader of a later term, then that
	// leader cut off and a leader holding a conflicting entry of a term in
	// between given a quorum.
	Figure8 int
	// Overwrites counts the swaps after which the conflicting leader won,
	// overwriting the old-term entry (legal only if it was never counted
	// as committed).
	Overwrites int
	// VoterCrashes counts voters crashed right after they voted or their
	// candidate won, and put with replicas that never saw the candidate.
	VoterCrashes int
	// AckCrashes counts the times the followers holding a new entry
	// crashed and the leader was cut off once it committed it.
	AckCrashes int
}

type phase uint8

const (
	idle phase = iota
	f8Minority
	f8Elect2
	f8Append2
	f8Elect3
	f8Replicate
	f8Elect4
	voteCandidate
	voteWon
	electElsewhere
	ackCommit
)

// Pauses between the nemesis's episodes and limits on each phase.
const (
	settleMin  = 200 * time.Millisecond
	settleMax  = 600 * time.Millisecond
	phaseLimit = 1500 * time.Millisecond
	// quorumGrace is how long the third leader of a Figure 8 episode has,
	// once the old-term entry is on a quorum, to hear so: a few round trips
	// and syncs.
	quorumGrace = 10 * time.Millisecond
)

// NemesisScenario is Scenario (one client) with leaders that append no
// no-op and the nemesis acting through the fault phase d, on top of
// whatever plan brings (plan.Faults may well be empty). If the plan has no
// sync latency, 1, 2 or 5 ms is drawn from the seed: the nemesis needs
// writes that take a while to become durable.
func NemesisScenario(seed uint64, nodes int, plan sim.Plan, d time.Duration) (sim.Config, *Nemesis) {
	if plan.SyncLatency == 0 {
		plan.SyncLatency = []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond}[sim.Stream(seed, 98).IntN(3)]
	}
	cfg := ScenarioTuned(seed, nodes, 1, plan, d, func(c *raft.Config) { c.NoLeaderNoop = true })
	nem := NewNemesis(seed, nodes, d)
	cfg.Checkers = append(cfg.Checkers, nem.Hook())
	return cfg, nem
}

// NewNemesis returns a nemesis for a cluster of nodes replicas (ids
// 0..nodes-1; any further nodes are clients), acting until the virtual time
// until, with choices drawn from seed. With fewer than three replicas it
// does nothing.
func NewNemesis(seed uint64, nodes int, until time.Duration) *Nemesis {
	m := &Nemesis{n: nodes, q: nodes/2 + 1, rng: sim.Stream(seed, 4242), until: until}
	m.next = settleMin
	return m
}

// Hook returns the checker through which the engine lets the nemesis act
// after every event. It always returns nil: the nemesis judges nothing.
func (m *Nemesis) Hook() sim.Checker {
	return sim.Checker{Name: "nemesis", Step: func(s *sim.Sim) error { m.step(s); return nil }}
}

// Stats reports how far the episodes got.
func (m *Nemesis) Stats() NemesisStats { return m.stats }

// String describes the nemesis's progress and its latest episode's actions,
// for failure messages.
func (m *Nemesis) String() string {
	return fmt.Sprintf("%+v; last episode: %s", m.stats, strings.Join(m.acts, "; "))
}

func (m *Nemesis) note(s *sim.Sim, format string, args ...any) {
	m.acts = append(m.acts, fmt.Sprintf("%v ", s.Now().Round(time.Microsecond))+fmt.Sprintf(format, args...))
}

func (m *Nemesis) enter(s *sim.Sim, p phase) {
	m.phase = p
	m.deadline = s.Now() + phaseLimit
}

// split replaces every cut link with a partition into groups.
func split(s *sim.Sim, groups ...[]sim.NodeID) {
	s.Heal()
	s.Partition(groups...)
}

// splitExcept is split, but leaves the link from keepFrom to keepTo open.
func splitExcept(s *sim.Sim, keepFrom, keepTo sim.NodeID, groups ...[]sim.NodeID) {
	s.Heal()
	for gi, g := range groups {
		for gj, h := range groups {
			if gi == gj {
				continue
			}
			for _, a := range g {
				for _, b := range h {
					if a != keepFrom || b != keepTo {
						s.Block(a, b)
					}
				}
			}
		}
	}
}

// leaderIn returns the live leader with the highest term above minTerm
// among ids, or raft.None.
func leaderIn(s *sim.Sim, ids []sim.NodeID, minTerm uint64) sim.NodeID {
	best, bt := raft.None, minTerm
	for _, id := range ids {
		if r := Replica(s, id); r != nil && r.Role() == raft.Leader && r.Term() > bt {
			best, bt = id, r.Term()
		}
	}
	return best
}

// holds reports whether replica id is up and has an entry of term t at i.
func holds(s *sim.Sim, id sim.NodeID, i, t uint64) bool {
	r := Replica(s, id)
	if r == nil {
		return false
	}
	got, ok := r.TermAt(i)
	return ok && got == t
}

// lastTerm is the term of replica r's last entry.
func lastTerm(r *raft.Node) uint64 {
	t, _ := r.TermAt(r.LastIndex())
	return t
}

func without(ids []sim.NodeID, drop ...sim.NodeID) []sim.NodeID {
	var out []sim.NodeID
	for _, id := range ids {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}

func (m *Nemesis) replicas() []sim.NodeID {
	ids := make([]sim.NodeID, m.n)
	for i := range ids {
		ids[i] = sim.NodeID(i)
	}
	return ids
}

// shuffled returns the replicas other than drop, in an order drawn from
// the nemesis's stream.
func (m *Nemesis) shuffled(drop ...sim.NodeID) []sim.NodeID {
	ids := without(m.replicas(), drop...)
	m.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	return ids
}

func (m *Nemesis) step(s *sim.Sim) {
	now := s.Now()
	if now >= m.until {
		return // the run heals everything at the end of the fault phase
	}
	if m.phase != idle && now > m.deadline {
		m.end(s, "gave up")
		return
	}
	switch m.phase {
	case idle:
		m.start(s)
	case f8Minority:
		m.f8Minority(s)
	case f8Elect2:
		m.f8Elect2(s)
	case f8Append2:
		m.f8Append2(s)
	case f8Elect3:
		m.f8Elect3(s)
	case f8Replicate:
		m.f8Replicate(s)
	case f8Elect4:
		if l := leaderIn(s, append([]sim.NodeID{m.l2}, m.voters...), m.t3); l != raft.None {
			if l == m.l2 && !holds(s, l, m.j1, m.t1) {
				m.stats.Overwrites++
			}
			m.end(s, fmt.Sprintf("%d won term %d", l, Replica(s, l).Term()))
		}
	case voteCandidate:
		m.voteCandidate(s)
	case voteWon:
		m.voteWon(s)
	case ackCommit:
		m.ackCommit(s)
	case electElsewhere:
		// The episode ends once the replicas away from side elect a
		// leader of term voteT or later.
		if l := leaderIn(s, without(m.replicas(), m.side...), m.voteT-1); l != raft.None {
			m.end(s, fmt.Sprintf("%d won term %d", l, Replica(s, l).Term()))
		}
	}
}

// end closes an episode: every link healed, every crashed replica
// restarted, and a pause before the next.
func (m *Nemesis) end(s *sim.Sim, why string) {
	m.note(s, "end: %s", why)
	s.Heal()
	for _, id := range m.down {
		s.Restart(id)
	}
	m.down = nil
	m.phase = idle
	m.next = s.Now() + settleMin + time.Duration(m.rng.Int64N(int64(settleMax-settleMin)))
}

func (m *Nemesis) start(s *sim.Sim) {
	if m.n < 3 || s.Now() < m.next {
		return
	}
	for _, id := range m.replicas() {
		if Replica(s, id) == nil {
			return
		}
	}
	l := leaderIn(s, m.replicas(), 0)
	if l == raft.None {
		return
	}
	m.stats.Episodes++
	m.acts = m.acts[:0]
	switch k := m.rng.IntN(10); {
	case k < 4:
		m.startFigure8(s, l)
	case k < 7:
		m.startVote(s, l)
	default:
		m.startAck(s, l)
	}
}

// ---- Figure 8 ----

// startFigure8 cuts leader l off with just enough followers that what it
// appends next reaches a minority.
func (m *Nemesis) startFigure8(s *sim.Sim, l sim.NodeID) {
	others := m.shuffled(l)
	m.l1, m.t1 = l, Replica(s, l).Term()
	m.minority = append([]sim.NodeID{l}, others[:m.q-2]...)
	m.rest = others[m.q-2:]
	split(s, m.minority, m.rest)
	m.note(s, "figure 8: leader %d (term %d) cut off with %v", l, m.t1, m.minority)
	m.enter(s, f8Minority)
}

// f8Minority waits for the cut-off side to hold an entry of the first
// leader's term past the end of every log on the other side.
func (m *Nemesis) f8Minority(s *sim.Sim) {
	var maxRest uint64
	for _, id := range m.rest {
		if r := Replica(s, id); r != nil {
			maxRest = max(maxRest, r.LastIndex())
		}
	}
	for _, id := range m.minority {
		if !holds(s, id, maxRest+1, m.t1) {
			return
		}
	}
	m.note(s, "entry %d of term %d on the minority only", maxRest+1, m.t1)
	m.enter(s, f8Elect2)
}

// f8Elect2 waits for the majority side to elect a leader, and cuts it off
// alone before it replicates anything.
func (m *Nemesis) f8Elect2(s *sim.Sim) {
	l := leaderIn(s, m.rest, m.t1)
	if l == raft.None {
		return
	}
	r := Replica(s, l)
	m.l2, m.t2, m.j1 = l, r.Term(), r.LastIndex()+1
	if lastTerm(r) == m.t2 {
		m.end(s, "second leader already appended")
		return
	}
	for _, id := range m.minority {
		if !holds(s, id, m.j1, m.t1) {
			m.end(s, fmt.Sprintf("minority lacks entry %d of term %d", m.j1, m.t1))
			return
		}
	}
	split(s, m.minority, []sim.NodeID{l}, without(m.rest, l))
	m.note(s, "leader %d (term %d) cut off alone", l, m.t2)
	m.enter(s, f8Append2)
}

// f8Append2 waits for the second leader to append its own entry at the
// disputed index, then lets everyone else elect a third leader.
func (m *Nemesis) f8Append2(s *sim.Sim) {
	if !holds(s, m.l2, m.j1, m.t2) {
		return
	}
	split(s, []sim.NodeID{m.l2}, without(m.replicas(), m.l2))
	m.note(s, "leader %d appended entry %d of term %d; the others rejoin", m.l2, m.j1, m.t2)
	m.enter(s, f8Elect3)
}

// f8Elect3 waits for a third leader, which must hold the first leader's
// entry (only the minority's logs are up to date enough).
func (m *Nemesis) f8Elect3(s *sim.Sim) {
	l := leaderIn(s, without(m.replicas(), m.l2), m.t2)
	if l == raft.None {
		return
	}
	if !holds(s, l, m.j1, m.t1) {
		m.end(s, fmt.Sprintf("third leader %d lacks entry %d of term %d", l, m.j1, m.t1))
		return
	}
	m.l3, m.t3, m.reached = l, Replica(s, l).Term(), false
	m.note(s, "leader %d elected in term %d", l, m.t3)
	if m.rng.IntN(4) != 0 {
		// Mostly, keep the clients from the third leader, so that it has
		// nothing of its own term to commit while it replicates the old
		// entry (as in the paper); else whatever reaches it may commit
		// the old entry legitimately first.
		for c := sim.NodeID(m.n); int(c) < s.Nodes(); c++ {
			s.Block(c, l)
		}
		m.note(s, "clients cut off from %d", l)
	}
	m.enter(s, f8Replicate)
}

// f8Replicate waits until the old-term entry is on a quorum (and the
// third leader has heard so, or said it committed it), then cuts the third
// leader off and gives the second a quorum of replicas whose logs end
// before its term, which will elect it.
func (m *Nemesis) f8Replicate(s *sim.Sim) {
	r3 := Replica(s, m.l3)
	if r3 == nil || r3.Role() != raft.Leader || r3.Term() != m.t3 {
		m.end(s, "third leader lost its leadership")
		return
	}
	if !m.reached {
		on := 0
		for _, id := range without(m.replicas(), m.l2) {
			if holds(s, id, m.j1, m.t1) {
				on++
			}
		}
		if on >= m.q {
			m.reached, m.reachedAt = true, s.Now()
		}
	}
	if r3.Commit() < m.j1 && (!m.reached || s.Now()-m.reachedAt < quorumGrace) {
		return
	}
	var voters []sim.NodeID
	for _, id := range m.shuffled(m.l2, m.l3) {
		if r := Replica(s, id); r != nil && lastTerm(r) < m.t2 && len(voters) < m.q-1 {
			voters = append(voters, id)
		}
	}
	if len(voters) < m.q-1 {
		m.end(s, "too few replicas with logs older than the second leader's term")
		return
	}
	m.voters = voters
	group := append([]sim.NodeID{m.l2}, voters...)
	split(s, group, without(m.replicas(), group...))
	m.stats.Figure8++
	m.note(s, "entry %d of term %d on a quorum under leader %d (commit %d); %d rejoins with %v",
		m.j1, m.t1, m.l3, r3.Commit(), m.l2, voters)
	m.enter(s, f8Elect4)
}

// ---- forgotten votes ----

// startVote crashes the leader so that an election follows.
func (m *Nemesis) startVote(s *sim.Sim, l sim.NodeID) {
	s.Crash(l)
	m.down = []sim.NodeID{l}
	m.note(s, "vote: leader %d crashed", l)
	m.enter(s, voteCandidate)
}

// voteCandidate waits for a candidate and gives it exactly a quorum.
func (m *Nemesis) voteCandidate(s *sim.Sim) {
	cand := raft.None
	for _, id := range m.replicas() {
		if r := Replica(s, id); r != nil && r.Role() == raft.Candidate {
			cand = id
			break
		}
	}
	if cand == raft.None {
		return
	}
	var side []sim.NodeID
	for _, id := range m.shuffled(cand) {
		if Replica(s, id) != nil && len(side) < m.q-1 {
			side = append(side, id)
		}
	}
	if len(side) < m.q-1 {
		m.end(s, "too few replicas up")
		return
	}
	m.cand, m.voteT = cand, Replica(s, cand).Term()
	m.early = m.rng.IntN(2) == 0
	m.side = append([]sim.NodeID{cand}, side...)
	split(s, m.side, without(m.replicas(), m.side...))
	m.note(s, "candidate %d (term %d) given %v", cand, m.voteT, m.side)
	m.enter(s, voteWon)
}

// voteWon crashes one of the candidate's voters, either right after it
// granted its vote (before its journal write may be durable: then the
// candidate must not get that vote) or once the candidate has won; the
// voter restarts at once with the replicas that never saw the candidate.
func (m *Nemesis) voteWon(s *sim.Sim) {
	r := Replica(s, m.cand)
	won := r != nil && r.Role() == raft.Leader && r.Term() == m.voteT
	if !m.early && !won {
		return
	}
	voter := raft.None
	for _, id := range m.side {
		if v := Replica(s, id); id != m.cand && v != nil && v.Term() == m.voteT && v.Vote() == m.cand {
			voter = id
			break
		}
	}
	if voter == raft.None {
		if won {
			m.end(s, "no voter found")
		}
		return
	}
	torn := m.rng.IntN(2) == 0
	if torn {
		s.CrashTorn(voter)
	} else {
		s.Crash(voter)
	}
	s.Restart(voter)
	for _, id := range m.down {
		s.Restart(id)
	}
	m.down = nil
	m.side = without(m.side, voter)
	if won {
		split(s, m.side, without(m.replicas(), m.side...))
	} else {
		// The vote may be on its way to the candidate: let it arrive.
		splitExcept(s, voter, m.cand, m.side, without(m.replicas(), m.side...))
	}
	m.stats.VoterCrashes++
	m.note(s, "voter %d crashed (torn %v, candidate won %v) and restarted away from %d", voter, torn, won, m.cand)
	m.enter(s, electElsewhere)
}

// ---- acknowledged entries ----

// startAck waits for leader l to replicate and commit an entry of its
// term.
func (m *Nemesis) startAck(s *sim.Sim, l sim.NodeID) {
	r := Replica(s, l)
	m.l1, m.t1 = l, r.Term()
	m.j1 = r.LastIndex() + 1 // the next entry the leader appends
	m.early, m.hit = m.rng.IntN(2) == 0, m.hit[:0]
	m.note(s, "ack: leader %d (term %d) at commit %d, crash early %v", l, m.t1, r.Commit(), m.early)
	m.enter(s, ackCommit)
}

// crash crashes replica id (tearing its unsynced journal tail or not) and
// restarts it.
func (m *Nemesis) crash(s *sim.Sim, id sim.NodeID) {
	if m.rng.IntN(2) == 0 {
		s.CrashTorn(id)
	} else {
		s.Crash(id)
	}
	s.Restart(id)
}

// ackCommit crashes and restarts the followers of leader l1 that hold its
// entry j1, either each the moment it gets the entry (its acknowledgment
// may be on its way) or all at once the moment the leader commits the
// entry; once the leader commits it, the leader is cut off. Each follower
// crashes at most once. The followers whose acknowledgments counted must
// still hold the entry, so the next leader does.
func (m *Nemesis) ackCommit(s *sim.Sim) {
	r := Replica(s, m.l1)
	if r == nil || r.Role() != raft.Leader || r.Term() != m.t1 {
		m.end(s, "leader lost its leadership")
		return
	}
	committed := r.Commit() >= m.j1
	if m.early || committed {
		for _, id := range without(m.replicas(), m.l1) {
			if !slices.Contains(m.hit, id) && holds(s, id, m.j1, m.t1) {
				m.crash(s, id)
				m.hit = append(m.hit, id)
				m.note(s, "%d crashed holding %d", id, m.j1)
			}
		}
	}
	if !committed {
		return
	}
	split(s, []sim.NodeID{m.l1}, without(m.replicas(), m.l1))
	m.stats.AckCrashes++
	m.note(s, "leader %d committed %d and was cut off", m.l1, m.j1)
	m.enter(s, electElsewhere)
	m.side = []sim.NodeID{m.l1}
	m.voteT = m.t1 + 1
}
