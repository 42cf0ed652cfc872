package kvsm

import (
	"github.com/flotilla-sim/flotilla/sim"
)

// ServerConfig configures a single-node KV server machine.
type ServerConfig struct {
	// SnapshotEvery is how many journaled writes trigger a snapshot that
	// replaces them; 0 means 100000, negative means never.
	SnapshotEvery int
}

// Server is the standalone (single-node) key-value server as a machine.
// Clients are nodes that send it Requests; it answers each with a Response
// to the sender. Every write is appended to the journal as its encoded
// request before the reply is sent, so the host makes it durable before the
// client hears "ok"; at start the store is rebuilt from the journal's
// snapshot and records.
type Server struct {
	cfg   ServerConfig
	store *Store
	next  uint64 // absolute index of the next journal record
	since int    // writes journaled since the last snapshot
}

// NewServer returns a server machine; it is ready once started.
func NewServer(cfg ServerConfig) *Server {
	if cfg.SnapshotEvery == 0 {
		cfg.SnapshotEvery = 100000
	}
	return &Server{cfg: cfg, store: NewStore()}
}

// Store is the server's state, for tests and observers.
func (s *Server) Store() *Store { return s.store }

// Step implements sim.Machine.
func (s *Server) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		s.boot(ev.Boot.Journal, out)
	case sim.EventMessage:
		req, ok := asRequest(ev.Msg)
		if !ok {
			return // not for us (a stray response); nothing to answer
		}
		s.handle(ev.From, req, out)
	}
}

func asRequest(m sim.Message) (Request, bool) {
	switch m := m.(type) {
	case Request:
		return m, true
	case *Request:
		return *m, true
	}
	return Request{}, false
}

func (s *Server) boot(j sim.Journal, out *sim.Effects) {
	s.store = NewStore()
	if j.Snapshot != nil {
		if err := s.store.Restore(j.Snapshot); err != nil {
			// The journal checksums every byte, so this is a bug, not
			// damage; carry on with what the records say and report it.
			out.Observe(Observation{Kind: "restore-error", Err: err.Error()})
		}
	}
	for _, rec := range j.Records {
		req, err := DecodeRequest(rec)
		if err != nil {
			out.Observe(Observation{Kind: "replay-error", Err: err.Error()})
			continue
		}
		s.store.Apply(req)
	}
	s.next = j.Next()
	s.since = len(j.Records)
}

// Observation is what the server reports to checkers and logs.
type Observation struct {
	Kind string
	Err  string
}

func (s *Server) handle(from sim.NodeID, req Request, out *sim.Effects) {
	if req.Op < OpGet || req.Op > OpDelete {
		msg := "unknown op"
		if req.Op == OpOpen {
			msg = "sessions need a replicated server"
		}
		out.Send(from, Response{ID: req.ID, Status: StatusBadRequest, Value: []byte(msg)})
		return
	}
	if req.Op.IsWrite() {
		// Journal first: a request the codec cannot write is refused
		// without touching the store.
		rec, err := AppendRequest(nil, &Request{Op: req.Op, Key: req.Key, Value: req.Value})
		if err != nil {
			out.Send(from, Response{ID: req.ID, Status: StatusBadRequest, Value: []byte(err.Error())})
			return
		}
		out.Append(rec)
		s.next++
		s.since++
	}
	resp := s.store.Apply(req)
	if req.Op.IsWrite() && s.cfg.SnapshotEvery > 0 && s.since >= s.cfg.SnapshotEvery {
		out.SaveSnapshot(s.store.Snapshot(), s.next)
		s.since = 0
	}
	out.Send(from, resp)
}
