package traceview

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Chrome trace-event layout: the simulator (notes about the whole system
// and messages injected from outside) is process 1; node n is process n+2,
// with its machine events on thread 1 and its states on thread 2.
const (
	simPID      = 1
	eventsTID   = 1
	statesTID   = 2
	eventsCat   = "event"
	minSliceDur = 1 * time.Microsecond
	// flowsPerMessage spaces flow ids so that each copy of a message has
	// its own.
	flowsPerMessage = 4
)

func pid(n sim.NodeID) int { return int(n) + 2 }

// chromeEvent is one trace event. Ts and Dur are microseconds.
type chromeEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	Ts    float64        `json:"ts"`
	Dur   *float64       `json:"dur,omitempty"`
	Pid   int            `json:"pid"`
	Tid   int            `json:"tid"`
	ID    uint64         `json:"id,omitempty"`
	Bp    string         `json:"bp,omitempty"`
	Scope string         `json:"s,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// WriteChrome writes tr as Chrome/Perfetto trace-event JSON.
func WriteChrome(w io.Writer, tr *Trace) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	first := true
	var err error
	emit := func(e chromeEvent) {
		if err != nil {
			return
		}
		if !first {
			_, err = bw.WriteString(",")
		}
		first = false
		if err == nil {
			err = enc.Encode(e) // Encode ends the event with a newline
		}
	}
	if _, err := bw.WriteString(`{"displayTimeUnit":"ms","otherData":{"producer":"flotilla"},"traceEvents":[` + "\n"); err != nil {
		return err
	}

	meta := func(p, t int, name string, v any) {
		emit(chromeEvent{Name: name, Ph: "M", Pid: p, Tid: t, Args: map[string]any{"name": v}})
	}
	meta(simPID, 0, "process_name", "simulator")
	emit(chromeEvent{Name: "process_sort_index", Ph: "M", Pid: simPID, Args: map[string]any{"sort_index": 0}})
	meta(simPID, eventsTID, "thread_name", "faults and network")
	for n := range tr.Nodes {
		p := pid(sim.NodeID(n))
		meta(p, 0, "process_name", fmt.Sprintf("node %d", n))
		emit(chromeEvent{Name: "process_sort_index", Ph: "M", Pid: p, Args: map[string]any{"sort_index": n + 1}})
		meta(p, eventsTID, "thread_name", "events")
		meta(p, statesTID, "thread_name", "state")
	}

	// A machine event is a slice lasting until the node's next event at a
	// later time, at most minSliceDur: slices of events at different times
	// never overlap, and those at the same time have the same bounds, so
	// they nest.
	nextAt := make([]time.Duration, len(tr.Events))
	type later struct{ at, next time.Duration }
	seen := make([]later, tr.Nodes+1)
	for i := range seen {
		seen[i] = later{-1, -1}
	}
	for i := len(tr.Events) - 1; i >= 0; i-- {
		e := &tr.Events[i]
		if !e.IsMachine() && e.Kind != "drop" {
			continue
		}
		l := &seen[e.Node+1]
		if l.at != e.T {
			l.next, l.at = l.at, e.T
		}
		nextAt[i] = l.next
	}

	type span struct {
		name  string
		start time.Duration
		open  bool
	}
	states := make([]span, tr.Nodes)
	closeSpan := func(n sim.NodeID, at time.Duration) {
		s := &states[n]
		if !s.open {
			return
		}
		d := micros(at - s.start)
		emit(chromeEvent{Name: s.name, Cat: "state", Ph: "X", Ts: micros(s.start), Dur: &d, Pid: pid(n), Tid: statesTID})
		s.open = false
	}
	openSpan := func(n sim.NodeID, name string, at time.Duration) {
		closeSpan(n, at)
		states[n] = span{name: name, start: at, open: true}
	}
	copies := map[uint64]int{}

	for i := range tr.Events {
		e := &tr.Events[i]
		ts := micros(e.T)
		switch {
		case e.IsMachine() || e.Kind == "drop":
			dur := minSliceDur
			if nextAt[i] > e.T {
				dur = min(dur, nextAt[i]-e.T)
			}
			d := micros(dur)
			args := map[string]any{"step": e.Step}
			name := e.label()
			switch e.Kind {
			case "recv", "drop":
				args["msg"], args["from"], args["id"], args["sent"] = e.Msg, int(e.From), e.ID, micros(e.Sent)
				if e.Kind == "drop" {
					name = "drop " + name
					args["why"] = e.Why
				}
			case "start":
				args["records"], args["base"] = e.Records, e.Base
			}
			if len(e.Observe) > 0 {
				args["observe"] = e.Observe
			}
			if e.Sends > 0 {
				args["sends"] = e.Sends
			}
			if e.Appends > 0 {
				args["appends"] = e.Appends
			}
			emit(chromeEvent{Name: name, Cat: eventsCat, Ph: "X", Ts: ts, Dur: &d, Pid: pid(e.Node), Tid: eventsTID, Args: args})
			if e.IsMessage() && e.From >= 0 {
				// One flow per copy of a message: the network makes at
				// most one duplicate.
				copies[e.ID]++
				id := e.ID*flowsPerMessage + uint64(copies[e.ID]%flowsPerMessage)
				emit(chromeEvent{Name: "msg", Cat: eventsCat, Ph: "s", Ts: micros(e.Sent), Pid: pid(e.From), Tid: eventsTID, ID: id, Bp: "e"})
				emit(chromeEvent{Name: "msg", Cat: eventsCat, Ph: "f", Ts: ts, Pid: pid(e.Node), Tid: eventsTID, ID: id, Bp: "e"})
			}
			if e.State != "" {
				openSpan(e.Node, e.State, e.T)
			}
		default: // a note
			name := e.Kind
			if e.Detail != "" {
				name += " " + e.Detail
			}
			args := map[string]any{"step": e.Step}
			if e.Node < 0 {
				emit(chromeEvent{Name: name, Cat: "fault", Ph: "i", Ts: ts, Pid: simPID, Tid: eventsTID, Scope: "g", Args: args})
				continue
			}
			emit(chromeEvent{Name: name, Cat: "fault", Ph: "i", Ts: ts, Pid: pid(e.Node), Tid: eventsTID, Scope: "p", Args: args})
			switch e.Kind {
			case "crash":
				openSpan(e.Node, "down", e.T)
			case "restart":
				closeSpan(e.Node, e.T)
			}
		}
	}
	for n := range states {
		closeSpan(sim.NodeID(n), tr.End)
	}
	if err != nil {
		return err
	}
	if _, err := bw.WriteString("]}\n"); err != nil {
		return err
	}
	return bw.Flush()
}
