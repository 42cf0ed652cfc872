// Package sim defines the machine contract and the deterministic simulator
// that runs machines under a virtual clock and a fault-injecting network.
//
// A Machine reacts to one Event at a time (start, message, timer) and answers
// with Effects (sends, timers, journal writes, observations). Hosts — the
// simulator here, the runtime package for real sockets — execute the effects
// and enforce the durability rule: journal writes made while handling an
// event are durable before any message sent while handling it leaves.
//
// The simulator is driven by one root seed. Every random choice — message
// delays, losses, duplicates, fault schedules, each node's own random
// stream — is derived from it, and the event queue breaks ties by insertion
// order, so the same seed and code give a byte-identical trace.
package sim
