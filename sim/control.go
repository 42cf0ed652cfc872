package sim

import (
	"fmt"
	"time"
)

// Apply carries out one fault now.
func (s *Sim) Apply(f Fault) {
	switch f.Kind {
	case FaultPartition:
		var a, b []NodeID
		for i := range s.nodes {
			if f.Side&(1<<i) != 0 {
				a = append(a, NodeID(i))
			} else {
				b = append(b, NodeID(i))
			}
		}
		s.Partition(a, b)
	case FaultBlock:
		s.Block(f.Node, f.Peer)
	case FaultClog:
		s.Clog(f.Node, f.Peer)
	case FaultHeal:
		s.Heal()
	case FaultCrash:
		s.Crash(f.Node)
	case FaultCrashTorn:
		s.CrashTorn(f.Node)
	case FaultRestart:
		s.Restart(f.Node)
	case FaultPause:
		s.Pause(f.Node)
	case FaultResume:
		s.Resume(f.Node)
	default:
		panic(fmt.Sprintf("sim: unknown fault kind %d", f.Kind))
	}
}

// Schedule queues faults at their times (relative to time zero).
func (s *Sim) Schedule(faults []Fault) {
	base := len(s.cfg.Faults)
	s.cfg.Faults = append(s.cfg.Faults[:base:base], faults...)
	for i, f := range faults {
		b := s.push(f.At, nil)
		b.kind, b.slot = itemFault, int32(base+i)
	}
}

// Crash stops node id: its machine and timers are discarded, messages it
// had not yet sent are lost, and so is every journal write not yet synced.
func (s *Sim) Crash(id NodeID) { s.crash(id, false) }

// CrashTorn crashes node id in the middle of writing its journal: a random
// prefix of the unsynced writes reached the disk, and the write after it was
// torn (and so discarded by recovery).
func (s *Sim) CrashTorn(id NodeID) { s.crash(id, true) }

func (s *Sim) crash(id NodeID, torn bool) {
	n := s.nodes[id]
	if !n.up {
		return
	}
	// A sync completing at this very instant has completed: the messages
	// waiting for it count as sent (see deliver), so its writes must count
	// as durable.
	for len(n.syncing) > 0 && n.syncing[0].done <= s.now {
		n.finishSync()
	}
	unsynced := n.unsynced[n.applied:]
	kept := 0
	if torn && len(unsynced) > 0 {
		kept = s.faultRng.IntN(len(unsynced))
		n.applyDurable(unsynced[:kept])
	}
	s.noteNode(id, "crash", fmt.Sprintf("lost %d unsynced writes, kept %d", len(unsynced)-kept, kept))
	n.up, n.paused, n.m = false, false, nil
	n.crashAt = append(n.crashAt, s.now)
	n.inc++
	n.timers = n.timers[:0]
	n.unsynced, n.applied, n.nsyncing, n.syncing, n.lastDone = nil, 0, 0, nil, 0
	for i := range n.held {
		if n.held[i].kind == itemMessage {
			s.stats.InFlight--
			s.stats.Dropped++
		}
	}
	n.held = nil
}

// Restart boots a crashed node with a fresh machine and its durable journal,
// handling its start event immediately.
func (s *Sim) Restart(id NodeID) {
	n := s.nodes[id]
	if n.up {
		return
	}
	n.up = true
	n.m = s.cfg.New(id)
	s.noteNode(id, "restart", "")
	// Boot at once, within the restart: anything already queued for this
	// instant must find the machine started, never before its start event.
	s.boot(n)
}

// Pause freezes node id: events for it wait until Resume.
func (s *Sim) Pause(id NodeID) {
	n := s.nodes[id]
	if n.up && !n.paused {
		n.paused = true
		s.noteNode(id, "pause", "")
	}
}

// Resume unfreezes node id; what arrived meanwhile is handled now, in order.
func (s *Sim) Resume(id NodeID) {
	n := s.nodes[id]
	if !n.paused {
		return
	}
	n.paused = false
	s.noteNode(id, "resume", "")
	for _, it := range n.held {
		// Keep each item's sequence number: it goes before anything queued
		// for this instant after it was, so the node's notifications and
		// messages stay in order.
		*s.q.pushOld(s.now, it.seq, it.msg) = it.itemBody
	}
	n.held = nil
}

// Partition cuts every link between nodes of different groups. Nodes in no
// group keep their links.
func (s *Sim) Partition(groups ...[]NodeID) {
	for gi, g := range groups {
		for _, a := range g {
			for gj, h := range groups {
				if gi == gj {
					continue
				}
				for _, b := range h {
					s.links[int(a)*len(s.nodes)+int(b)] |= linkCut
				}
			}
		}
	}
	s.traceNote("partition", fmt.Sprint(groups))
}

// Block cuts the link from one node to another, one way.
func (s *Sim) Block(from, to NodeID) {
	s.links[int(from)*len(s.nodes)+int(to)] |= linkCut
	s.traceNote("block", fmt.Sprintf("%d->%d", from, to))
}

// Clog holds messages from one node to another until Unclog or Heal.
func (s *Sim) Clog(from, to NodeID) {
	s.links[int(from)*len(s.nodes)+int(to)] |= linkClogged
	s.traceNote("clog", fmt.Sprintf("%d->%d", from, to))
}

// Unclog reopens a clogged link; held messages are delivered now, in order.
func (s *Sim) Unclog(from, to NodeID) {
	s.links[int(from)*len(s.nodes)+int(to)] &^= linkClogged
	s.traceNote("unclog", fmt.Sprintf("%d->%d", from, to))
	s.releaseClogged()
}

// Heal restores every link: no cuts, no clogs.
func (s *Sim) Heal() {
	clear(s.links)
	s.traceNote("heal", "")
	s.releaseClogged()
}

func (s *Sim) releaseClogged() {
	keep := s.clogHeld[:0]
	for _, it := range s.clogHeld {
		if s.links[int(it.from)*len(s.nodes)+int(it.node)]&linkClogged != 0 {
			keep = append(keep, it)
			continue
		}
		*s.push(s.now, it.msg) = it.itemBody
	}
	clear(s.clogHeld[len(keep):])
	s.clogHeld = keep
}

// HealAll ends every fault: links restored, crashed nodes restarted, paused
// nodes resumed, and the network calmed (no loss, duplication, reordering
// or long tail). Scheduled faults still pending are cancelled.
func (s *Sim) HealAll() {
	s.cfg.Faults = nil
	s.q.filter(func(it *item) bool { return it.kind != itemFault })
	s.Heal()
	s.SetNetwork(s.net.Calm())
	for i := range s.nodes {
		s.Resume(NodeID(i))
		s.Restart(NodeID(i))
	}
}

// Result summarises a run.
type Result struct {
	Seed    uint64
	Steps   uint64
	Virtual time.Duration
	Hash    uint64
	Stats   Stats
	Err     error // nil, or a *Failure
}

// Run runs the whole scenario of the config: the fault schedule for
// Duration, then, if Liveness is set, heals every fault and requires the
// condition within Liveness.Within; then the End checkers.
func (s *Sim) Run() Result {
	for i, f := range s.cfg.Faults {
		b := s.push(f.At, nil)
		b.kind, b.slot = itemFault, int32(i)
	}
	s.RunFor(s.cfg.Duration - s.now)
	if l := s.cfg.Liveness; l != nil && s.failure == nil {
		s.HealAll()
		if err := s.RunUntil(l.Cond, l.Within); err != nil && s.failure == nil {
			s.fail("liveness "+l.Name, fmt.Errorf("not reached within %v of healing: %w", l.Within, err))
		}
	}
	if s.failure == nil {
		for _, c := range s.cfg.Checkers {
			if c.End == nil {
				continue
			}
			if err := c.End(s); err != nil {
				s.fail(c.Name, err)
				break
			}
		}
	}
	if err := s.Flush(); err != nil && s.failure == nil {
		s.fail("trace", err)
	}
	return s.Result()
}

// Result reports the run so far.
func (s *Sim) Result() Result {
	return Result{Seed: s.cfg.Seed, Steps: s.steps, Virtual: s.now, Hash: s.hash, Stats: s.stats, Err: s.Err()}
}
