package traceview_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
	"github.com/flotilla-sim/flotilla/sim/traceview"
)

// role is an observation that announces a node's state.
type role string

func (r role) TraceState() string { return string(r) }

// flipper pings its neighbour every 100ms; it announces itself "leader" on
// even pings and "follower" on odd ones, with a plain observation too.
type flipper struct {
	id, n sim.NodeID
	count int
}

func (f *flipper) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		out.SetTimer("tick", 100*time.Millisecond)
	case sim.EventTimer:
		f.count++
		out.Send((f.id+1)%f.n, pingpong.Ping{Seq: uint64(f.count)})
		out.Observe(fmt.Sprintf("tick %d", f.count))
		if f.count%2 == 0 {
			out.Observe(role("leader"))
		} else {
			out.Observe(role("follower"))
		}
		out.SetTimer("tick", 100*time.Millisecond)
	}
}

// flipperTrace runs 3 flippers for a second with node 1 crashed from 250ms
// to 450ms and a partition from 600ms to 700ms.
func flipperTrace(t testing.TB) []byte {
	t.Helper()
	var buf bytes.Buffer
	s := sim.New(sim.Config{Seed: 1, Nodes: 3, Trace: &buf,
		Network: sim.Network{Delay: 5 * time.Millisecond},
		New:     func(id sim.NodeID) sim.Machine { return &flipper{id: id, n: 3} }})
	s.Schedule([]sim.Fault{
		{At: 250 * time.Millisecond, Kind: sim.FaultCrash, Node: 1},
		{At: 450 * time.Millisecond, Kind: sim.FaultRestart, Node: 1},
		{At: 600 * time.Millisecond, Kind: sim.FaultPartition, Side: 1},
		{At: 700 * time.Millisecond, Kind: sim.FaultHeal},
	})
	if err := s.RunFor(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// moody is a pingpong node that announces a new mood every third timer.
type moody struct {
	*pingpong.Node
	timers int
}

var moods = []role{"calm", "eager", "grumpy"}

func (m *moody) Step(ev sim.Event, out *sim.Effects) {
	m.Node.Step(ev, out)
	if ev.Kind == sim.EventTimer {
		m.timers++
		if m.timers%3 == 0 {
			out.Observe(moods[m.timers/3%len(moods)])
		}
	}
}

// pingpongTrace is a run of moody pingpong nodes under every fault, with
// at least one crash and restart.
func pingpongTrace(t testing.TB, seed uint64, d time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	cfg := pingpong.Scenario(seed, 4, sim.AllFaults(pingpong.BaseNetwork, 4), d)
	newNode := cfg.New
	cfg.New = func(id sim.NodeID) sim.Machine { return &moody{Node: newNode(id).(*pingpong.Node)} }
	cfg.Liveness = nil // its condition looks for *pingpong.Node
	cfg.Trace = &buf
	cfg.Faults = append(cfg.Faults, sim.Fault{At: d / 3, Kind: sim.FaultCrash, Node: 1}, sim.Fault{At: d / 2, Kind: sim.FaultRestart, Node: 1})
	if res := sim.New(cfg).Run(); res.Err != nil {
		t.Fatal(res.Err)
	}
	return buf.Bytes()
}

func count(tr *traceview.Trace, kinds ...string) int {
	n := 0
	for _, e := range tr.Events {
		for _, k := range kinds {
			if e.Kind == k {
				n++
			}
		}
	}
	return n
}

func TestReadKeepsEveryField(t *testing.T) {
	raw := flipperTrace(t)
	tr, err := traceview.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Nodes != 3 || tr.End < 900*time.Millisecond || tr.End > time.Second {
		t.Errorf("nodes %d end %v", tr.Nodes, tr.End)
	}
	if got := strings.Count(string(raw), "\n"); got != len(tr.Events) {
		t.Errorf("%d events from %d lines", len(tr.Events), got)
	}
	var timer *traceview.Event
	for i := range tr.Events {
		if tr.Events[i].Kind == "timer" {
			timer = &tr.Events[i]
			break
		}
	}
	if timer == nil {
		t.Fatal("no timer event")
	}
	want := traceview.Event{Line: timer.Line, Step: timer.Step, T: 100 * time.Millisecond, Node: timer.Node, Kind: "timer",
		From: sim.External, Timer: "tick", Observe: []string{"tick 1", "follower"}, State: "follower", Sends: 1}
	if diff := cmp.Diff(want, *timer); diff != "" {
		t.Errorf("first timer event (-want +got):\n%s", diff)
	}
	if n := count(tr, "crash"); n != 1 {
		t.Errorf("%d crash notes; want 1", n)
	}
	for _, e := range tr.Events {
		if e.Kind == "recv" && (e.From < 0 || e.T-e.Sent != 5*time.Millisecond) {
			t.Errorf("recv line %d: from %d sent %v at %v", e.Line, e.From, e.Sent, e.T)
		}
	}
}

func TestReadErrorsNameTheLine(t *testing.T) {
	good := `{"step":1,"t":0,"node":0,"kind":"start","records":0,"base":0}` + "\n"
	for _, tc := range []struct{ text, want string }{
		{good + good + "{oops\n", "line 3: "},
		{good + `{"step":2,"t":5,"node":0}` + "\n", `line 2: missing field "kind"`},
		{good + `{"step":2,"t":"5","node":0,"kind":"timer"}` + "\n", `line 2: field "t": want a number`},
		{`{"step":2,"t":50,"node":0,"kind":"timer"}` + "\n" + good, "line 2: time 0s goes back from 50ns"},
		{good + `{"step":2,"t":5,"node":1,"kind":"recv","id":1,"sent":1}` + "\n", "line 2: recv line without from"},
		{good + `{"step":2,"t":5,"node":1,"kind":"recv","from":0,"id":1,"sent":9}` + "\n", "line 2: message sent at 9"},
		{good + `{"step":2,"t":5,"node":99999,"kind":"timer"}` + "\n", "line 2: node 99999 out of range"},
		{good + `[1,2]` + "\n", "line 2: not a JSON object"},
		{good + `{"step":2,"t":5,"node":0,"kind":"timer"} {}` + "\n", "line 2: "},
		{"", "empty trace"},
	} {
		_, err := traceview.Read(strings.NewReader(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Read(%q) = %v; want an error containing %q", tc.text, err, tc.want)
		}
	}
}

type chromeFile struct {
	TraceEvents []struct {
		Name string         `json:"name"`
		Cat  string         `json:"cat"`
		Ph   string         `json:"ph"`
		Ts   float64        `json:"ts"`
		Dur  float64        `json:"dur"`
		Pid  int            `json:"pid"`
		Tid  int            `json:"tid"`
		ID   uint64         `json:"id"`
		S    string         `json:"s"`
		Args map[string]any `json:"args"`
	} `json:"traceEvents"`
}

func TestChromeExport(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
	}{{"flipper", flipperTrace(t)}, {"pingpong", pingpongTrace(t, 5, 3*time.Second)}} {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := traceview.Read(bytes.NewReader(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := traceview.WriteChrome(&out, tr); err != nil {
				t.Fatal(err)
			}
			var cf chromeFile
			if err := json.Unmarshal(out.Bytes(), &cf); err != nil {
				t.Fatalf("output is not JSON: %v", err)
			}
			procs := map[int]string{}
			type key struct{ pid, tid int }
			slices := map[key][][2]float64{}
			starts, finishes := map[uint64]int{}, map[uint64]int{}
			var flowStarts []key
			var flowTs []float64
			instants := 0
			for _, e := range cf.TraceEvents {
				switch e.Ph {
				case "M":
					if e.Name == "process_name" {
						procs[e.Pid] = e.Args["name"].(string)
					}
				case "X":
					if e.Dur < 0 {
						t.Errorf("negative duration: %+v", e)
					}
					if e.Tid == 1 {
						slices[key{e.Pid, e.Tid}] = append(slices[key{e.Pid, e.Tid}], [2]float64{e.Ts, e.Ts + e.Dur})
					}
				case "s":
					starts[e.ID]++
					flowStarts = append(flowStarts, key{e.Pid, e.Tid})
					flowTs = append(flowTs, e.Ts)
				case "f":
					finishes[e.ID]++
				case "i":
					instants++
				}
			}
			for n := range tr.Nodes {
				if procs[n+2] != fmt.Sprintf("node %d", n) {
					t.Errorf("process %d is %q; want node %d", n+2, procs[n+2], n)
				}
			}
			// Every message that came from a node is one flow, from a
			// slice of the sender to a slice of the receiver.
			msgs := 0
			for _, e := range tr.Events {
				if e.IsMessage() && e.From >= 0 {
					msgs++
				}
			}
			if len(starts) != msgs || len(finishes) != msgs {
				t.Errorf("%d flow starts and %d ends for %d messages", len(starts), len(finishes), msgs)
			}
			for id, n := range starts {
				if n != 1 || finishes[id] != 1 {
					t.Errorf("flow %d: %d starts, %d ends", id, n, finishes[id])
				}
			}
			// Slices have a duration, so that flows can bind to them.
			for k, ss := range slices {
				for _, s := range ss {
					if s[1] <= s[0] {
						t.Errorf("pid %d: empty slice at %v", k.pid, s[0])
					}
				}
			}
			for i, k := range flowStarts {
				enclosed := false
				for _, s := range slices[k] {
					enclosed = enclosed || s[0] <= flowTs[i] && flowTs[i] <= s[1]
				}
				if !enclosed {
					t.Errorf("flow start at %v on pid %d has no slice to bind to", flowTs[i], k.pid)
				}
			}
			// Slices of one node's events never overlap, except that
			// those of events at the same time have the same bounds.
			for k, ss := range slices {
				for i := 1; i < len(ss); i++ {
					if ss[i][0] < ss[i-1][1] && ss[i] != ss[i-1] {
						t.Errorf("pid %d: slice at %v overlaps the one before, ending %v", k.pid, ss[i][0], ss[i-1][1])
					}
				}
			}
			notes := len(tr.Events) - count(tr, "start", "recv", "timer", "drop")
			if instants != notes {
				t.Errorf("%d instant events for %d notes", instants, notes)
			}
		})
	}
}

func TestChromeStatesAreSpans(t *testing.T) {
	tr, err := traceview.Read(bytes.NewReader(flipperTrace(t)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := traceview.WriteChrome(&out, tr); err != nil {
		t.Fatal(err)
	}
	var cf chromeFile
	if err := json.Unmarshal(out.Bytes(), &cf); err != nil {
		t.Fatal(err)
	}
	// Node 1's state track: follower, leader, then down from the crash at
	// 250ms to the restart at 450ms, then its new incarnation's states.
	var got []string
	for _, e := range cf.TraceEvents {
		if e.Pid == 3 && e.Tid == 2 && e.Ph == "X" {
			got = append(got, fmt.Sprintf("%s@%gms+%gms", e.Name, e.Ts/1000, e.Dur/1000))
		}
	}
	want := []string{"follower@100ms+100ms", "leader@200ms+50ms", "down@250ms+200ms",
		"follower@550ms+100ms", "leader@650ms+100ms", "follower@750ms+100ms", "leader@850ms+100ms", "follower@950ms+50ms"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("node 1 state spans (-want +got):\n%s", diff)
	}
}

func TestHTMLIsSelfContained(t *testing.T) {
	tr, err := traceview.Read(bytes.NewReader(flipperTrace(t)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := traceview.WriteHTML(&out, tr, traceview.HTMLOptions{Title: "a <b> & c"}); err != nil {
		t.Fatal(err)
	}
	page := out.String()
	for _, bad := range []string{"<script src", "<link", "@import", "url(http", "{{TITLE}}", "{{DATA}}", "<b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if !strings.Contains(page, "<title>a &lt;b&gt; &amp; c</title>") {
		t.Error("title not escaped into the page")
	}
	// The only URL is the SVG namespace, which is a name, not a fetch.
	if n, m := strings.Count(page, "http"), strings.Count(page, "http://www.w3.org/2000/svg"); n != m {
		t.Errorf("page mentions http %d times, the SVG namespace only %d", n, m)
	}
}

func TestHTMLEscapesScriptEnd(t *testing.T) {
	line := `{"step":1,"t":0,"node":0,"kind":"start","records":0,"base":0}` + "\n" +
		`{"step":2,"t":5,"node":0,"kind":"recv","from":-1,"id":1,"sent":5,"msg":"x</script><script>alert(1)</script>"}` + "\n"
	tr, err := traceview.Read(strings.NewReader(line))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := traceview.WriteHTML(&out, tr, traceview.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), "</script>") != 2 {
		t.Error("a message closed the data script element early")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(flipperTrace(f))
	f.Add([]byte(`{"step":1,"t":0,"node":0,"kind":"start"}` + "\n" + `{"step":2,"t":1,"node":1,"kind":"drop","from":0,"id":3,"sent":0,"why":"lost"}`))
	f.Add([]byte("{\"step\":1,\"t\":0,\"node\":-1,\"kind\":\"heal\",\"detail\":\"\\u003c\"}\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := traceview.Read(bytes.NewReader(b))
		if err != nil {
			return
		}
		// Whatever reads must export.
		if err := traceview.WriteChrome(&bytes.Buffer{}, tr); err != nil {
			t.Fatal(err)
		}
		if err := traceview.WriteHTML(&bytes.Buffer{}, tr, traceview.HTMLOptions{}); err != nil {
			t.Fatal(err)
		}
	})
}

// pageData pulls the data the page draws out of an HTML export.
func pageData(t *testing.T, page string) map[string]any {
	t.Helper()
	_, rest, ok := strings.Cut(page, `<script type="application/json" id="data">`)
	js, _, ok2 := strings.Cut(rest, "</script>")
	if !ok || !ok2 {
		t.Fatal("no data in the page")
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(js), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestHTMLCapsHugeTraces(t *testing.T) {
	tr, err := traceview.Read(bytes.NewReader(pingpongTrace(t, 5, 3*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	var whole, capped bytes.Buffer
	if err := traceview.WriteHTML(&whole, tr, traceview.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := traceview.WriteHTML(&capped, tr, traceview.HTMLOptions{MaxMessages: 10}); err != nil {
		t.Fatal(err)
	}
	w, c := pageData(t, whole.String()), pageData(t, capped.String())
	total := float64(count(tr, "recv", "drop"))
	if len(w["msgs"].([]any)) != int(total) || w["cut"] != false {
		t.Errorf("uncapped page draws %d of %v messages, cut %v", len(w["msgs"].([]any)), total, w["cut"])
	}
	if len(c["msgs"].([]any)) != 10 || c["cut"] != true || c["total"].([]any)[0] != total {
		t.Errorf("capped page draws %d messages of %v, cut %v", len(c["msgs"].([]any)), c["total"], c["cut"])
	}
	// Nothing drawn lies past the cut.
	end := c["end"].(float64)
	for _, m := range c["marks"].([]any) {
		if at := m.([]any)[1].(float64); at > end {
			t.Errorf("mark at %v past the end %v", at, end)
		}
	}
	if end >= w["end"].(float64) {
		t.Errorf("capped page ends at %v, the whole one at %v", end, w["end"])
	}
}
