// Package runtime runs any sim.Machine for real: over real sockets, real
// timers and an fsync'd write-ahead journal, with exactly the machine code the
// simulator runs.
//
// # The host
//
// Run owns one machine and steps it from one goroutine at a time, under a
// lock. A loop goroutine drains an inbox fed by the transport's readers and
// by timers, and hands the machine one event at a time. With TCPServer and
// TCPPeers (alone or combined), a connection's reader steps the machine
// itself when nobody else is (first the events queued before its messages,
// then every message of that read, then the end of the batch below), so a
// message is handled without a goroutine hand-off; when the machine is busy
// the messages wait in the inbox like any others.
// Events are taken in batches (everything already waiting, up to
// Config.MaxBatch). After a batch the host executes the effects in the order
// the durability rule needs:
//
//  1. the sends the machine marked early (sim.Effects.SendEarly) are handed
//     to the transport at once;
//  2. journal records appended by the batch were written to the journal as
//     each event was handled; if any event of the batch sent a message or
//     asked for a sync, the journal is fsync'd once (group commit);
//  3. then the batch's other sends are handed to the transport, which may
//     coalesce them per peer (see Flusher);
//  4. last, the machine gets an EventSynced for each sim.Effects.NotifySynced
//     of the batch, in order; these events form the next batch.
//
// A Raft leader thus sends its new entries to the followers while its own
// fsync runs, so a write waits for about one fsync rather than two in a row.
//
// Timers are set and cancelled as each event is handled. Observations go to
// Config.OnObserve and to the logger at debug level.
//
// Time: Event.Now is the monotonic time since Run started, multiplied by
// Config.Speed (default 1). Timers are scaled the same way, so with Speed 10
// a 30 s timer fires after 3 s of real time and Now has advanced by 30 s.
// Boot.Rand is seeded from the operating system.
//
// # Transports
//
// A Transport sends messages to node ids and delivers inbound messages to the
// host. Two are provided: UDP (one datagram per message, for devices) and TCP
// (length-prefixed frames, see WriteFrame, for clients of a server). Both
// encode messages with a sim.Codec; input that does not decode is dropped
// and never reaches the machine.
//
// # The journal
//
// Journal is a write-ahead log of CRC32C-checksummed, length-prefixed
// records plus an atomically replaced snapshot file; see OpenJournal for the
// file format and the recovery rules (a torn tail is truncated, corruption
// before the tail refuses to start).
package runtime
