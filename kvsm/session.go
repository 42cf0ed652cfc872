package kvsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Defaults of SessionConfig.
const (
	DefaultSessionTTL  = time.Minute
	DefaultMaxSessions = 100_000
)

// SessionConfig bounds the session table. Every replica of a cluster must
// use the same values (they decide which sessions the replicated state
// keeps).
type SessionConfig struct {
	// TTL is how long, on the log's logical clock, a session may stay idle
	// before it expires (0: DefaultSessionTTL).
	TTL time.Duration
	// MaxSessions bounds the table; opening one more session evicts the
	// least recently active one (0: DefaultMaxSessions).
	MaxSessions int
}

func (c *SessionConfig) fill() {
	if c.TTL <= 0 {
		c.TTL = DefaultSessionTTL
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
}

type session struct {
	seq    uint64
	status Status
	value  []byte
	active time.Duration // logical clock of the last write applied
}

// State is the replicated KV state: the Store plus the session table and
// the logical clock. Like Store it is deterministic: the same commands in
// the same order give the same state and the same snapshot bytes.
//
// Sessions give the replicated KV exactly-once writes. A client first opens
// a session (an OpOpen request, which goes through the log like a write):
// the state gives it the next id of a counter that is part of the
// replicated state, so every replica agrees on it and no two sessions ever
// share an id. The client numbers its writes 1, 2, 3, … within the
// session; the state keeps, per session, the highest number applied and its
// response. A write whose number was already applied is not applied again:
// the latest one gets its original response, an older one an error (the
// client has moved on and no longer waits for it).
//
// Sessions are part of the replicated state, so they are in every snapshot
// and survive restarts, and they expire deterministically: each command
// entry carries the proposing leader's clock reading, the state's logical
// clock is the highest reading applied so far, and a session idle for more
// than the TTL of that logical clock is dropped when the state next sweeps.
// Every replica applies the same entries, so every replica expires the same
// sessions at the same log index, whatever its own clock says.
//
// A write whose session is gone (expired, evicted, or never opened) is
// answered StatusSessionExpired and not applied: an earlier attempt may or
// may not have taken effect, and the client must open a new session. As ids
// are never reused, a retried write can never land in a session other than
// its own, however late it arrives. A retried OpOpen may open a spare
// session that nobody uses; it expires.
type State struct {
	cfg       SessionConfig
	store     *Store
	sessions  map[uint64]*session
	clock     time.Duration
	nextSweep time.Duration
	applied   uint64 // commands applied, for observers
	expired   uint64 // sessions expired or evicted, for observers
	nextID    uint64 // the id the next session gets
}

// NewState returns an empty replicated state.
func NewState(cfg SessionConfig) *State {
	cfg.fill()
	return &State{cfg: cfg, store: NewStore(), sessions: make(map[uint64]*session), nextID: 1}
}

// Store is the key-value part of the state. It must not be changed except
// through ApplyCommand.
func (s *State) Store() *Store { return s.store }

// Clock is the logical clock: the highest leader clock reading applied.
func (s *State) Clock() time.Duration { return s.clock }

// Sessions is the number of open sessions.
func (s *State) Sessions() int { return len(s.sessions) }

// Expired counts sessions expired or evicted by this state since it was
// built or restored.
func (s *State) Expired() uint64 { return s.expired }

// LastSeq is the highest sequence number applied in session client, and whether
// the client has a session.
func (s *State) LastSeq(client uint64) (uint64, bool) {
	if ss := s.sessions[client]; ss != nil {
		return ss.seq, true
	}
	return 0, false
}

// Duplicate answers a write the state has already applied (its sequence
// number is at most the session's), without changing anything; ok is false
// if the write is new (or has no session).
func (s *State) Duplicate(req Request) (Response, bool) {
	if req.Client == 0 || !req.Op.IsWrite() {
		return Response{}, false
	}
	ss := s.sessions[req.Client]
	if ss == nil || req.Seq > ss.seq {
		return Response{}, false
	}
	return s.cached(ss, req), true
}

func (s *State) cached(ss *session, req Request) Response {
	if req.Seq == ss.seq {
		return Response{ID: req.ID, Status: ss.status, Value: ss.value}
	}
	return Response{ID: req.ID, Status: StatusError, Value: []byte(fmt.Sprintf("write %d superseded by %d", req.Seq, ss.seq))}
}

// ApplyCommand applies one committed command stamped with the proposing
// leader's clock and returns its response. OpOpen opens a session; writes
// with a client id go through that session (see State); requests without
// one are applied as they are.
func (s *State) ApplyCommand(req Request, stamp time.Duration) Response {
	s.applied++
	s.advance(stamp)
	if req.Op == OpOpen {
		return s.open(req)
	}
	if req.Client == 0 || !req.Op.IsWrite() {
		return s.store.Apply(req)
	}
	ss := s.sessions[req.Client]
	if ss == nil {
		return Response{ID: req.ID, Status: StatusSessionExpired}
	}
	if req.Seq <= ss.seq {
		ss.active = s.clock
		return s.cached(ss, req)
	}
	resp := s.store.Apply(req)
	ss.seq, ss.status, ss.value, ss.active = req.Seq, resp.Status, resp.Value, s.clock
	return resp
}

// applyEntry applies a command decoded from a log entry of the given
// version (see AppendCommand).
func (s *State) applyEntry(req Request, stamp time.Duration, version byte) Response {
	if version == 1 && req.Client != 0 && req.Op.IsWrite() && req.Seq == 1 && s.sessions[req.Client] == nil {
		// The implicit open of version 1, after the clock moved (and
		// swept) as ApplyCommand would, so the new session is not swept
		// at once.
		s.advance(stamp)
		s.add(req.Client)
	}
	return s.ApplyCommand(req, stamp)
}

// open opens a session with the next id not in use (ids restored from a
// version 1 snapshot were drawn at random).
func (s *State) open(req Request) Response {
	for s.nextID == 0 || s.sessions[s.nextID] != nil {
		s.nextID++
	}
	id := s.nextID
	s.nextID++
	s.add(id)
	return Response{ID: req.ID, Status: StatusOK, Session: id}
}

// add opens session id, evicting the least recently active one if the
// table is full.
func (s *State) add(id uint64) {
	if len(s.sessions) >= s.cfg.MaxSessions {
		s.evictOldest()
	}
	s.sessions[id] = &session{active: s.clock}
}

// advance moves the logical clock to stamp (it never goes back) and expires
// idle sessions when a sweep is due. Deleting every expired session does
// not depend on the map's iteration order.
func (s *State) advance(stamp time.Duration) {
	if stamp > s.clock {
		s.clock = stamp
	}
	if s.clock < s.nextSweep {
		return
	}
	for c, ss := range s.sessions {
		if s.clock-ss.active > s.cfg.TTL {
			delete(s.sessions, c)
			s.expired++
		}
	}
	s.nextSweep = s.clock + max(s.cfg.TTL/4, 1)
}

// evictOldest drops the least recently active session (the lowest client
// id among equals), so the choice is the same on every replica.
func (s *State) evictOldest() {
	var victim uint64
	var oldest *session
	for c, ss := range s.sessions {
		if oldest == nil || ss.active < oldest.active || ss.active == oldest.active && c < victim {
			victim, oldest = c, ss
		}
	}
	if oldest != nil {
		delete(s.sessions, victim)
		s.expired++
	}
}

// Snapshot format: 'K' | version 2 | clock | nextSweep | applied | next id | count |
// count × (client | seq | status u8 | active | value) in ascending client
// order | store snapshot (the rest). Integers are uvarints; the value is a
// uvarint length+1 (0: nil) and the bytes. Version 1, from before sessions
// were opened explicitly, has no next id; Restore reads it too.
const stateSnapVersion = 2

// Snapshot serializes the state; equal states give equal bytes.
func (s *State) Snapshot() []byte {
	clients := make([]uint64, 0, len(s.sessions))
	for c := range s.sessions {
		clients = append(clients, c)
	}
	slices.Sort(clients)
	b := []byte{'K', stateSnapVersion}
	b = binary.AppendUvarint(b, uint64(s.clock))
	b = binary.AppendUvarint(b, uint64(s.nextSweep))
	b = binary.AppendUvarint(b, s.applied)
	b = binary.AppendUvarint(b, s.nextID)
	b = binary.AppendUvarint(b, uint64(len(clients)))
	for _, c := range clients {
		ss := s.sessions[c]
		b = binary.AppendUvarint(b, c)
		b = binary.AppendUvarint(b, ss.seq)
		b = append(b, byte(ss.status))
		b = binary.AppendUvarint(b, uint64(ss.active))
		if ss.value == nil {
			b = append(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(ss.value))+1)
			b = append(b, ss.value...)
		}
	}
	return append(b, s.store.Snapshot()...)
}

// Restore replaces the state with a snapshot. On error the state is
// unchanged.
func (s *State) Restore(b []byte) error {
	r := reader{b: b}
	tag, version := r.byte(), r.byte()
	if tag != 'K' || version < 1 || version > stateSnapVersion {
		return errors.New("kvsm: not a replicated-state snapshot of version 1 or 2")
	}
	clock, next, applied := r.uvarint(), r.uvarint(), r.uvarint()
	var nextID uint64
	if version >= 2 {
		nextID = r.uvarint()
		if r.err == nil && nextID == 0 {
			r.fail("snapshot next session id 0")
		}
	}
	n := r.uvarint()
	if r.err == nil && (clock > 1<<62 || next > 1<<62) {
		r.fail("snapshot clock out of range")
	}
	if r.err == nil && n > uint64(len(r.b))/4 {
		r.fail("snapshot claims %d sessions in %d bytes", n, len(r.b))
	}
	if r.err != nil {
		return r.err
	}
	sessions := make(map[uint64]*session, n)
	var prev uint64
	for i := uint64(0); i < n && r.err == nil; i++ {
		c := r.uvarint()
		ss := &session{seq: r.uvarint(), status: Status(r.byte())}
		active := r.uvarint()
		vl := r.uvarint()
		if r.err != nil {
			break
		}
		switch {
		case c == 0 || i > 0 && c <= prev:
			r.fail("snapshot sessions out of order at %d", i)
		case ss.status > maxStatus:
			r.fail("snapshot session status %d", ss.status)
		case active > 1<<62:
			r.fail("snapshot session clock out of range")
		case vl > MaxValue+1 || vl > uint64(len(r.b))+1:
			r.fail("snapshot session value of %d bytes", vl)
		}
		if r.err != nil {
			break
		}
		if vl > 0 {
			ss.value = slices.Clone(r.b[:vl-1])
			if ss.value == nil {
				ss.value = []byte{}
			}
			r.b = r.b[vl-1:]
		}
		ss.active = time.Duration(active)
		sessions[c] = ss
		prev = c
	}
	if r.err != nil {
		return r.err
	}
	store := NewStore()
	if err := store.Restore(r.b); err != nil {
		return err
	}
	if version == 1 { // ids were drawn at random: count on from the highest
		nextID = prev + 1 // 0 after the largest id: open skips 0 and ids in use
	}
	s.store, s.sessions, s.nextID = store, sessions, nextID
	s.clock, s.nextSweep, s.applied = time.Duration(clock), time.Duration(next), applied
	return nil
}

// Command entries, the data of the replicated log: 'C' | version | stamp
// uvarint (the proposing leader's clock, in nanoseconds) | an encoded
// Request (see AppendRequest). Version 2 entries follow today's session
// rules; version 1 entries, written before sessions were opened through
// the log, are applied by the rules of their time (a write numbered 1
// opened its session under the client's own id), so a log written by an
// older release replays to the same state.
const commandVersion = 2

// AppendCommand appends the log entry for req, stamped with the leader's
// clock reading.
func AppendCommand(dst []byte, req *Request, stamp time.Duration) ([]byte, error) {
	dst = append(dst, 'C', commandVersion)
	dst = binary.AppendUvarint(dst, uint64(max(stamp, 0)))
	return AppendRequest(dst, req)
}

// DecodeCommand decodes a log entry written by AppendCommand (of this
// release or an earlier one). It never panics and copies what it keeps.
func DecodeCommand(b []byte) (Request, time.Duration, error) {
	req, stamp, _, err := decodeCommand(b)
	return req, stamp, err
}

func decodeCommand(b []byte) (Request, time.Duration, byte, error) {
	r := reader{b: b}
	tag, version := r.byte(), r.byte()
	if r.err == nil && (tag != 'C' || version < 1 || version > commandVersion) {
		r.fail("not a command of version 1 or 2")
	}
	stamp := r.uvarint()
	if r.err == nil && stamp > 1<<62 {
		r.fail("command stamp out of range")
	}
	if r.err != nil {
		return Request{}, 0, 0, r.err
	}
	req, err := DecodeRequest(r.b)
	if err != nil {
		return Request{}, 0, 0, err
	}
	return req, time.Duration(stamp), version, nil
}
