// Package traceview reads the simulator's JSON-lines traces (see the
// package sim documentation of Config.Trace) and turns them into views
// people already know how to use:
//
//   - WriteChrome writes Chrome/Perfetto trace events: one process per node,
//     the node's machine events as slices, its states (observations that
//     implement sim.TraceStater) as spans on a second track, messages as
//     flow arrows from the sending event to the receiving one, and faults
//     as instant events. Open the file in https://ui.perfetto.dev or
//     chrome://tracing.
//   - WriteHTML writes a self-contained HTML space-time diagram: nodes as
//     columns, time flowing down, messages as arrows (lost ones dashed and
//     crossed out), crashes, pauses and network faults marked, with zoom,
//     scroll and hover details. It needs no network access to open.
//
// The command line is `flotilla trace FILE -o OUT.json|OUT.html`.
package traceview

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Event is one line of a trace.
type Event struct {
	// Line is the line number in the trace, from 1.
	Line int
	Step uint64
	T    time.Duration
	// Node is the node the event happened to; sim.External for notes
	// about the whole system (partitions, network changes, failures).
	Node sim.NodeID
	// Kind is start, recv, timer, synced, drop, or a note: crash, restart, pause,
	// resume, partition, block, clog, unclog, heal, network, failure.
	Kind string
	// From, ID and Sent name the message of a recv or drop line.
	From sim.NodeID
	ID   uint64
	Sent time.Duration
	Msg  string
	// Timer is the timer that fired; Why why a message was dropped;
	// Detail the detail of a note.
	Timer, Why, Detail string
	// Observe holds the event's observations, in order; State the state
	// announced by the last one that implements sim.TraceStater.
	Observe []string
	State   string
	// Sends and Appends count the event's effects; Records and Base
	// describe the journal a start event booted with.
	Sends, Appends, Records, Base int64
}

// IsMessage reports whether e is the arrival or the loss of a message.
func (e *Event) IsMessage() bool { return e.Kind == "recv" || e.Kind == "drop" }

// IsMachine reports whether e is an event a machine handled.
func (e *Event) IsMachine() bool {
	return e.Kind == "start" || e.Kind == "recv" || e.Kind == "timer" || e.Kind == "synced"
}

// Trace is a whole trace.
type Trace struct {
	Events []Event
	// Nodes is one more than the largest node id in the trace.
	Nodes int
	// Start and End are the times of the first and last events.
	Start, End time.Duration
}

// MaxLine bounds the length of one trace line.
const MaxLine = 1 << 22

// Read parses a trace. Errors name the offending line.
func Read(r io.Reader) (*Trace, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLine)
	tr := &Trace{}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := parseLine(b)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		ev.Line = line
		if len(tr.Events) == 0 {
			tr.Start = ev.T
		}
		if len(tr.Events) > 0 && ev.T < tr.Events[len(tr.Events)-1].T {
			return nil, fmt.Errorf("line %d: time %v goes back from %v", line, ev.T, tr.Events[len(tr.Events)-1].T)
		}
		tr.End = ev.T
		tr.Nodes = max(tr.Nodes, int(ev.Node)+1, int(ev.From)+1)
		tr.Events = append(tr.Events, ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, MaxLine)
		}
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(tr.Events) == 0 {
		return nil, errors.New("empty trace")
	}
	return tr, nil
}

// lineJSON is a trace line with at most one observation.
type lineJSON struct {
	Step    *uint64 `json:"step"`
	T       *int64  `json:"t"`
	Node    *int64  `json:"node"`
	Kind    *string `json:"kind"`
	From    *int64  `json:"from"`
	ID      uint64  `json:"id"`
	Sent    int64   `json:"sent"`
	Msg     string  `json:"msg"`
	Timer   string  `json:"timer"`
	Why     string  `json:"why"`
	Detail  string  `json:"detail"`
	Observe *string `json:"observe"`
	State   string  `json:"state"`
	Sends   int64   `json:"sends"`
	Appends int64   `json:"appends"`
	Records int64   `json:"records"`
	Base    int64   `json:"base"`
}

var observeKey = []byte(`"observe":`)

// parseLine parses one line. Most lines have at most one observation and
// go through json.Unmarshal; the others, and every line Unmarshal refuses,
// go through parseTokens, which keeps repeated keys and explains errors.
func parseLine(b []byte) (Event, error) {
	if bytes.Count(b, observeKey) > 1 {
		return parseTokens(b)
	}
	var j lineJSON
	if err := json.Unmarshal(b, &j); err != nil || j.Step == nil || j.T == nil || j.Node == nil || j.Kind == nil {
		return parseTokens(b)
	}
	ev := Event{Step: *j.Step, T: time.Duration(*j.T), Node: sim.NodeID(*j.Node), Kind: *j.Kind, From: sim.External,
		ID: j.ID, Sent: time.Duration(j.Sent), Msg: j.Msg, Timer: j.Timer, Why: j.Why, Detail: j.Detail, State: j.State,
		Sends: j.Sends, Appends: j.Appends, Records: j.Records, Base: j.Base}
	if *j.Node < -1 || *j.Node >= maxNodes {
		return parseTokens(b)
	}
	if j.From != nil {
		if *j.From < -1 || *j.From >= maxNodes {
			return parseTokens(b)
		}
		ev.From = sim.NodeID(*j.From)
	}
	if j.Observe != nil {
		ev.Observe = []string{*j.Observe}
	}
	return ev, validate(&ev, j.From != nil)
}

// parseTokens reads one JSON object token by token, so that repeated keys
// (one "observe" per observation) are all kept.
func parseTokens(b []byte) (Event, error) {
	ev := Event{From: sim.External}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return ev, fmt.Errorf("not JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return ev, errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ev, fmt.Errorf("bad JSON: %w", err)
		}
		key, _ := tok.(string)
		tok, err = dec.Token()
		if err != nil {
			return ev, fmt.Errorf("bad JSON: %w", err)
		}
		if d, ok := tok.(json.Delim); ok {
			return ev, fmt.Errorf("field %q: unexpected %v", key, d)
		}
		seen[key] = true
		str := func() (string, error) {
			s, ok := tok.(string)
			if !ok {
				return "", fmt.Errorf("field %q: want a string, got %v", key, tok)
			}
			return s, nil
		}
		num := func() (int64, error) {
			n, ok := tok.(json.Number)
			if !ok {
				return 0, fmt.Errorf("field %q: want a number, got %v", key, tok)
			}
			v, err := strconv.ParseInt(string(n), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("field %q: want an integer, got %s", key, n)
			}
			return v, nil
		}
		var n int64
		var s string
		switch key {
		case "step", "t", "node", "from", "id", "sent", "sends", "appends", "records", "base":
			if n, err = num(); err != nil {
				return ev, err
			}
		case "kind", "msg", "timer", "why", "detail", "observe", "state":
			if s, err = str(); err != nil {
				return ev, err
			}
		}
		switch key {
		case "step":
			ev.Step = uint64(n)
		case "t":
			ev.T = time.Duration(n)
		case "node":
			ev.Node = sim.NodeID(n)
		case "from":
			ev.From = sim.NodeID(n)
		case "id":
			ev.ID = uint64(n)
		case "sent":
			ev.Sent = time.Duration(n)
		case "sends":
			ev.Sends = n
		case "appends":
			ev.Appends = n
		case "records":
			ev.Records = n
		case "base":
			ev.Base = n
		case "kind":
			ev.Kind = s
		case "msg":
			ev.Msg = s
		case "timer":
			ev.Timer = s
		case "why":
			ev.Why = s
		case "detail":
			ev.Detail = s
		case "observe":
			ev.Observe = append(ev.Observe, s)
		case "state":
			ev.State = s
		}
	}
	if _, err := dec.Token(); err != nil {
		return ev, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return ev, errors.New("more than one JSON value on the line")
	}
	if _, err := dec.Token(); err != io.EOF {
		return ev, errors.New("trailing data after the JSON object")
	}
	for _, k := range []string{"step", "t", "node", "kind"} {
		if !seen[k] {
			return ev, fmt.Errorf("missing field %q", k)
		}
	}
	return ev, validate(&ev, seen["from"])
}

func validate(ev *Event, hasFrom bool) error {
	switch {
	case ev.T < 0:
		return fmt.Errorf("negative time %d", ev.T)
	case ev.Node < sim.External || ev.Node >= maxNodes:
		return fmt.Errorf("node %d out of range", ev.Node)
	case ev.From < sim.External || ev.From >= maxNodes:
		return fmt.Errorf("from %d out of range", ev.From)
	case ev.Kind == "":
		return errors.New("empty kind")
	case ev.IsMessage() && !hasFrom:
		return fmt.Errorf("%s line without from", ev.Kind)
	case ev.IsMachine() && ev.Node < 0:
		return fmt.Errorf("%s event on node %d", ev.Kind, ev.Node)
	case ev.IsMessage() && (ev.Sent < 0 || ev.Sent > ev.T):
		return fmt.Errorf("message sent at %d, after it arrived at %d", ev.Sent, ev.T)
	}
	return nil
}

// maxNodes bounds node ids so that views stay a sane size.
const maxNodes = 1024

// Window returns the events with from <= T <= to (to zero: no end).
func (tr *Trace) Window(from, to time.Duration) *Trace {
	out := &Trace{Nodes: tr.Nodes}
	for _, e := range tr.Events {
		if e.T < from || (to > 0 && e.T > to) {
			continue
		}
		if len(out.Events) == 0 {
			out.Start = e.T
		}
		out.End = e.T
		out.Events = append(out.Events, e)
	}
	if len(out.Events) == 0 {
		out.Start, out.End = from, from
	}
	return out
}

// label is a short name for an event: the message type, the timer, the
// note.
func (e *Event) label() string {
	switch e.Kind {
	case "recv", "drop":
		return msgType(e.Msg)
	case "timer":
		return "timer " + e.Timer
	}
	return e.Kind
}

// msgType cuts a message printed as %T%+v down to its type name. A
// pointer to a struct prints as *pkg.T&{...}: its name is *pkg.T.
func msgType(m string) string {
	for i, c := range m {
		if c == '{' || c == '(' || c == '[' || c == ' ' {
			if i > 0 {
				return strings.TrimSuffix(m[:i], "&")
			}
			break
		}
	}
	if len(m) > 40 {
		return m[:40]
	}
	return m
}
