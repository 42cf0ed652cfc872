// Package kvsm is the key-value state machine: get, set and delete on
// byte-string keys and values, snapshots, the binary wire codec for requests
// and responses, and the standalone KV server as a sim.Machine.
//
// The replicated KV is Replica (Raft plus State: the Store and exactly-once
// client sessions) and Client (the KV client as a machine: leader discovery,
// redirects, timeouts, retries with backoff); see docs/kv-replicated.md.
//
// The pure state (Store: a map and Apply, Snapshot, Restore) is kept apart
// from the machine (Server) so that a replicated server can apply committed
// requests to the same Store.
//
// Wire format (see Codec): every integer is an unsigned varint, every byte
// string a varint length followed by the bytes.
//
//	Request:  'Q' | op byte | flags byte | id | [client | seq  if flags&1] | key | [value  if op == set]
//	Response: 'R' | status byte | flags byte | id | [value  if flags&2] | [leader+1  if flags&4] | [session  if flags&8]
//
// Ops: 1 get, 2 set, 3 delete, 4 open (a session, replicated KV only; no
// key, client or seq; the response carries the session id). Statuses: 0 ok, 1 not found, 2 bad request,
// 3 error (the value carries a message for these two), 4 not leader (with
// the leader hint, flag 4), 5 session expired; the last two come only from
// the replicated KV (see Replica). The id is the
// client's, echoed in the response, so requests can be pipelined. Client and
// seq identify a write within an exactly-once session. Keys are limited to MaxKey
// bytes, values to MaxValue; unknown ops, statuses or flag bits, over-limit
// or overlong lengths and trailing bytes are rejected.
package kvsm
