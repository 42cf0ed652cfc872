package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Traces. With Config.Trace set, the simulator writes one JSON object per
// line per event:
//
//	{"step":12,"t":1500000,"node":2,"kind":"recv","from":0,"id":7,"sent":400000,"msg":"pingpong.Ping{Seq:3}","sends":1,"appends":1}
//
// t is global virtual time in nanoseconds. A recv or drop line names the
// message by id (shared by the copies the network duplicates) and gives the
// time it was sent, so viewers can draw it as an arrow from (from, sent) to
// (node, t). Observations appear as "observe" fields of the event that made
// them, in order; if any implements TraceStater, a "state" field follows
// with the state the last of them announces. Kinds are start, recv, timer,
// synced (machine events; synced carries its token), drop (a message lost
// on the way, with why), and notes:
// crash, restart, pause, resume, partition, block, clog, unclog, heal,
// network, failure. Messages are printed with %T%+v, so message types
// should hold no pointers for traces to be byte-identical across runs (a
// message sent as a pointer to such a struct is fine: %+v prints what it
// points to, as *pkg.T&{...}).
//
// The running hash (Sim.Hash) is kept whether or not tracing is on, so it
// costs no formatting: it covers each event's time, node, kind, sender and
// the number of sends, journal writes and timer operations it produced.

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// Hash kinds beyond the EventKind values.
const (
	kindDrop = 16 + iota
	kindNote
)

func (s *Sim) mix(x uint64) {
	s.hash = (s.hash ^ x) * fnvPrime
}

func (s *Sim) hashEvent(kind uint64, node, from NodeID) {
	s.mix(uint64(s.now))
	s.mix(kind<<40 | uint64(uint32(node))<<20 | uint64(uint32(from))&0xfffff)
}

func (s *Sim) hashCounts(sends, appends, timers int) {
	s.mix(uint64(sends)<<40 | uint64(appends)<<20 | uint64(timers))
}

type tracer struct {
	w   *bufio.Writer
	buf []byte
	err error
}

func newTracer(w io.Writer) *tracer { return &tracer{w: bufio.NewWriter(w)} }

func (t *tracer) begin(s *Sim, node NodeID, kind string) {
	t.buf = append(t.buf[:0], `{"step":`...)
	t.buf = strconv.AppendUint(t.buf, s.steps, 10)
	t.buf = append(t.buf, `,"t":`...)
	t.buf = strconv.AppendInt(t.buf, int64(s.now), 10)
	t.buf = append(t.buf, `,"node":`...)
	t.buf = strconv.AppendInt(t.buf, int64(node), 10)
	t.buf = append(t.buf, `,"kind":"`...)
	t.buf = append(t.buf, kind...)
	t.buf = append(t.buf, '"')
}

func (t *tracer) str(key, v string) {
	t.buf = append(t.buf, `,"`...)
	t.buf = append(t.buf, key...)
	t.buf = append(t.buf, `":`...)
	q, _ := json.Marshal(v)
	t.buf = append(t.buf, q...)
}

func (t *tracer) num(key string, v int64) {
	t.buf = append(t.buf, `,"`...)
	t.buf = append(t.buf, key...)
	t.buf = append(t.buf, `":`...)
	t.buf = strconv.AppendInt(t.buf, v, 10)
}

func (t *tracer) end() {
	t.buf = append(t.buf, "}\n"...)
	if _, err := t.w.Write(t.buf); err != nil && t.err == nil {
		t.err = err
	}
}

func (t *tracer) event(s *Sim, n *node, ev *Event) {
	t.begin(s, n.id, ev.Kind.String())
	switch ev.Kind {
	case EventMessage:
		t.num("from", int64(ev.From))
		if s.deliveringID != 0 {
			t.num("id", int64(s.deliveringID))
			t.num("sent", int64(s.deliveringSent))
		}
		t.str("msg", fmt.Sprintf("%T%+v", ev.Msg, ev.Msg))
	case EventTimer:
		t.str("timer", ev.Timer)
	case EventSynced:
		t.num("token", int64(ev.Token))
	case EventStart:
		j := &ev.Boot.Journal
		t.num("records", int64(len(j.Records)))
		t.num("base", int64(j.Base))
	}
	e := &n.out
	if len(e.Sends) > 0 {
		t.num("sends", int64(len(e.Sends)))
	}
	if len(e.Appends) > 0 {
		t.num("appends", int64(len(e.Appends)))
	}
	for _, o := range e.Observations {
		t.str("observe", fmt.Sprintf("%+v", o))
	}
	if st, ok := traceState(e.Observations); ok {
		t.str("state", st)
	}
	t.end()
}

func (t *tracer) drop(s *Sim, it *item, why string) {
	t.begin(s, it.node, "drop")
	t.num("from", int64(it.from))
	t.num("id", int64(it.msgID))
	t.num("sent", int64(it.sentAt))
	t.str("msg", fmt.Sprintf("%T%+v", it.msg, it.msg))
	t.str("why", why)
	t.end()
}

// traceNote records a simulator action that is not a machine event.
func (s *Sim) traceNote(kind, detail string) { s.noteNode(External, kind, detail) }

func (s *Sim) noteNode(node NodeID, kind, detail string) {
	s.mix(uint64(len(kind))<<8 | uint64(kind[0]))
	s.hashEvent(kindNote, node, 0)
	if s.tracer == nil {
		return
	}
	s.tracer.begin(s, node, kind)
	if detail != "" {
		s.tracer.str("detail", detail)
	}
	s.tracer.end()
}

// Flush writes buffered trace lines to the trace writer.
func (s *Sim) Flush() error {
	if s.tracer == nil {
		return nil
	}
	if err := s.tracer.w.Flush(); err != nil {
		return err
	}
	return s.tracer.err
}
