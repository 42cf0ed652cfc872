// Package sim defines the machine contract and the deterministic simulator
// that runs machines under a virtual clock and a fault-injecting network.
//
// A Machine reacts to one Event at a time (start, message, timer, synced)
// and answers with Effects (sends, timers, journal writes, observations).
// Hosts — the simulator here, the runtime package for real sockets —
// execute the effects and enforce the durability rule: journal writes made
// while handling an event are durable before any message sent while handling
// it leaves. A machine may opt one message out (Effects.SendEarly) when the
// receiver does not rely on the sender's unsynced writes, and ask to be told
// when they are durable (Effects.NotifySynced, answered by EventSynced); a
// Raft leader uses the pair to write its log while its followers write
// theirs.
//
// The simulator is driven by one root seed. Every random choice — message
// delays, losses, duplicates, fault schedules, each node's own random
// stream — is derived from it, and the event queue breaks ties by insertion
// order, so the same seed and code give a byte-identical trace.
//
// The pieces, by file:
//   - machine.go: the contract (Machine, Event, Effects, Journal, Codec);
//   - sim.go, control.go: the engine (New, Step, RunFor, RunUntil, Run) and
//     the faults a test can apply by hand (Crash, Partition, Pause, ...);
//   - network.go, faults.go, plan.go: the fault models, generated schedules
//     and swarm plans (SwarmPlan, AllFaults, ParsePlan);
//   - trace.go, tracestate.go, determinism.go: JSON-lines traces, the running
//     hash and CheckDeterminism;
//   - explore.go: exhaustive breadth-first exploration of a machine's states;
//   - shrink.go: shrinking a failing schedule to a minimal reproduction.
//
// Package sim/simtest adds the -seed and -seeds flags to test binaries.
package sim
