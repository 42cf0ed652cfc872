// Package raft implements the Raft consensus protocol as a pure state
// machine (sim.Machine): it reads time only from events, randomness only
// from the Boot stream, and performs no I/O — the host (the simulator or the
// runtime) carries out its effects.
//
// A Node is one member. It implements leader election with randomized
// timeouts, PreVote and CheckQuorum; log replication with batching,
// pipelining bounded per follower in messages and bytes, and fast
// backtracking by conflict term; commitment only through entries of the
// leader's own term; linearizable reads by ReadIndex (no log write);
// leadership transfer; and log compaction with application snapshots and
// InstallSnapshot for lagging followers.
//
// # Durability
//
// Term, vote and log entries are journaled (Effects.Append) in the same
// event that changes them, and every such event asks for a sync, so by the
// host's durability rule nothing that depends on them — a vote, an
// acknowledgement — leaves before they are durable. The one exception is
// the leader's replication: it sends new entries to the followers with
// Effects.SendEarly while its own write is still syncing, and asks for an
// EventSynced (Effects.NotifySynced) after which it counts its own copy
// toward a quorum. A leader's write and its followers' thus overlap, and a
// one-member cluster still commits nothing before it is durable. A
// restarted node replays its journal (see the record format in
// journal.go); a compaction saves a journal snapshot holding the whole
// durable state, so it can replace every record before it.
//
// # Using it
//
// Standalone, a Node is the machine: clients send Propose, Read and
// TransferLeader messages and get ProposeReply / ReadReply back. Embedded,
// another machine (a replicated key-value store, say) owns the Node, hands
// it every raft message (IsMessage), every timer named with TimerPrefix and
// every EventSynced (the notifications are the Node's),
// calls Propose, ReadIndex and TransferLeadership itself, and receives
// committed entries through its Application (Apply, Snapshot, Restore, and
// optionally ReadReady).
//
// Checker returns a sim.Checker verifying Raft's safety properties after
// every simulation event; the inspection methods (Term, Role, Commit,
// Entry, ...) exist for it and for tests.
package raft
