package traceview

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"strings"
	"time"
)

// HTMLOptions tune WriteHTML.
type HTMLOptions struct {
	// Title heads the page (default "flotilla trace").
	Title string
	// MaxMessages caps the arrows drawn (default 20000); MaxMarks caps the
	// marks of other node events (default 50000). Past a cap the page
	// draws the trace up to the time the cap is reached, and says so.
	MaxMessages, MaxMarks int
}

// DefaultMaxMessages is the default cap on arrows in the HTML view.
const DefaultMaxMessages = 20000

//go:embed view.html
var viewTemplate string

// htmlData is what the page's script draws. Times are nanoseconds;
// labels are indices into Strings.
type htmlData struct {
	Title   string     `json:"title"`
	Nodes   int        `json:"nodes"`
	Ext     bool       `json:"ext"`
	Start   int64      `json:"start"`
	End     int64      `json:"end"`
	Strings []string   `json:"strings"`
	Msgs    [][7]int64 `json:"msgs"`  // from, sent, to, t, dropped, label, detail
	Marks   [][4]int64 `json:"marks"` // node, t, kind, detail
	Spans   [][5]int64 `json:"spans"` // node, from, to, kind, label
	Notes   [][3]int64 `json:"notes"` // t, kind, detail: system-wide
	Total   [2]int     `json:"total"` // messages and node events in the whole trace
	Cut     bool       `json:"cut"`   // drawn only up to End: a cap was reached
}

// Mark kinds, as the page's script knows them.
const (
	markStart = iota
	markTimer
	markCrash
	markRestart
	markPause
	markResume
	markFailure
	markOther
)

// Span kinds.
const (
	spanState = iota
	spanDown
	spanPaused
)

type interner struct {
	idx  map[string]int64
	list []string
}

func (in *interner) id(s string) int64 {
	if i, ok := in.idx[s]; ok {
		return i
	}
	if in.idx == nil {
		in.idx = map[string]int64{}
	}
	in.idx[s] = int64(len(in.list))
	in.list = append(in.list, s)
	return in.idx[s]
}

func buildHTMLData(tr *Trace, opts HTMLOptions) htmlData {
	maxMsgs, maxMarks := opts.MaxMessages, opts.MaxMarks
	if maxMsgs <= 0 {
		maxMsgs = DefaultMaxMessages
	}
	if maxMarks <= 0 {
		maxMarks = 50000
	}
	d := htmlData{Title: opts.Title, Nodes: tr.Nodes, Start: int64(tr.Start), End: int64(tr.End),
		Msgs: [][7]int64{}, Marks: [][4]int64{}, Spans: [][5]int64{}, Notes: [][3]int64{}}
	if d.Title == "" {
		d.Title = "flotilla trace"
	}
	var in interner
	type open struct {
		from  time.Duration
		label string
		on    bool
	}
	state := make([]open, tr.Nodes)
	down := make([]open, tr.Nodes)
	paused := make([]open, tr.Nodes)
	closeSpan := func(o *open, n int, at time.Duration, kind int64) {
		if o.on {
			d.Spans = append(d.Spans, [5]int64{int64(n), int64(o.from), int64(at), kind, in.id(o.label)})
			o.on = false
		}
	}
	mark := func(e *Event, kind int64, detail string) {
		d.Marks = append(d.Marks, [4]int64{int64(e.Node), int64(e.T), kind, in.id(detail)})
	}
	// Past a cap, draw a prefix of the trace in time, whole: everything up
	// to the event that would break it.
	limit, msgs, marks := len(tr.Events), 0, 0
	for i := range tr.Events {
		e := &tr.Events[i]
		switch {
		case e.IsMessage():
			msgs++
		case e.Node >= 0:
			marks++
		}
		if limit == len(tr.Events) && (msgs > maxMsgs || marks > maxMarks) {
			limit = i
		}
	}
	d.Total = [2]int{msgs, marks}
	if limit < len(tr.Events) {
		d.Cut = true
		d.End = int64(tr.Events[max(limit-1, 0)].T)
	}
	for i := range tr.Events[:limit] {
		e := &tr.Events[i]
		n := int(e.Node)
		if e.IsMessage() {
			if e.From < 0 {
				d.Ext = true
			}
			{
				dropped := int64(0)
				detail := fmt.Sprintf("#%d %s\n%s → %s, sent %v, ", e.ID, e.Msg, nodeName(int(e.From)), nodeName(n), e.Sent)
				if e.Kind == "drop" {
					dropped = 1
					detail += fmt.Sprintf("dropped at %v: %s", e.T, e.Why)
				} else {
					detail += fmt.Sprintf("received %v (after %v)", e.T, e.T-e.Sent)
				}
				detail += eventDetail(e)
				d.Msgs = append(d.Msgs, [7]int64{int64(e.From), int64(e.Sent), int64(n), int64(e.T), dropped, in.id(e.label()), in.id(detail)})
			}
		}
		switch e.Kind {
		case "start":
			if k := len(d.Marks) - 1; k >= 0 && d.Marks[k][0] == int64(n) && d.Marks[k][1] == int64(e.T) && d.Marks[k][2] == markRestart {
				// The start right after a restart: one mark says both.
				d.Marks[k][3] = in.id(fmt.Sprintf("node %d restarts at %v with %d journal records (base %d)%s", n, e.T, e.Records, e.Base, eventDetail(e)))
				break
			}
			mark(e, markStart, fmt.Sprintf("node %d starts at %v with %d journal records (base %d)%s", n, e.T, e.Records, e.Base, eventDetail(e)))
		case "timer":
			mark(e, markTimer, fmt.Sprintf("node %d: timer %q fires at %v%s", n, e.Timer, e.T, eventDetail(e)))
		case "synced":
			mark(e, markTimer, fmt.Sprintf("node %d: journal writes durable at %v%s", n, e.T, eventDetail(e)))
		case "recv", "drop":
		default:
			detail := fmt.Sprintf("%v %s", e.T, e.Kind)
			if e.Detail != "" {
				detail += ": " + e.Detail
			}
			if n < 0 {
				d.Notes = append(d.Notes, [3]int64{int64(e.T), in.id(e.Kind), in.id(detail)})
				continue
			}
			kind := int64(markOther)
			switch e.Kind {
			case "crash":
				kind = markCrash
				closeSpan(&state[n], n, e.T, spanState)
				closeSpan(&paused[n], n, e.T, spanPaused)
				down[n] = open{from: e.T, label: "down", on: true}
			case "restart":
				kind = markRestart
				closeSpan(&down[n], n, e.T, spanDown)
			case "pause":
				kind = markPause
				paused[n] = open{from: e.T, label: "paused", on: true}
			case "resume":
				kind = markResume
				closeSpan(&paused[n], n, e.T, spanPaused)
			case "failure":
				kind = markFailure
			}
			mark(e, kind, fmt.Sprintf("node %d: %s", n, detail))
		}
		if e.State != "" && n >= 0 {
			closeSpan(&state[n], n, e.T, spanState)
			state[n] = open{from: e.T, label: e.State, on: true}
		}
	}
	end := time.Duration(d.End)
	for n := range tr.Nodes {
		closeSpan(&state[n], n, end, spanState)
		closeSpan(&down[n], n, end, spanDown)
		closeSpan(&paused[n], n, end, spanPaused)
	}
	d.Strings = in.list
	if d.Strings == nil {
		d.Strings = []string{}
	}
	return d
}

func nodeName(n int) string {
	if n < 0 {
		return "outside"
	}
	return fmt.Sprintf("node %d", n)
}

func eventDetail(e *Event) string {
	var b strings.Builder
	for _, o := range e.Observe {
		b.WriteString("\nobserved ")
		b.WriteString(o)
	}
	if e.State != "" {
		b.WriteString("\nstate ")
		b.WriteString(e.State)
	}
	if e.Sends > 0 || e.Appends > 0 {
		fmt.Fprintf(&b, "\neffects: %d sent, %d appended to the journal", e.Sends, e.Appends)
	}
	fmt.Fprintf(&b, "\nstep %d, trace line %d", e.Step, e.Line)
	return b.String()
}

// WriteHTML writes tr as a self-contained HTML space-time diagram. The page
// needs no network access: its data and script are inline.
func WriteHTML(w io.Writer, tr *Trace, opts HTMLOptions) error {
	data := buildHTMLData(tr, opts)
	js, err := json.Marshal(data)
	if err != nil {
		return err
	}
	// Inside <script>, "</" could end the element early; JSON allows "<\/".
	js = bytes.ReplaceAll(js, []byte("</"), []byte(`<\/`))
	before, after, ok := strings.Cut(viewTemplate, "{{DATA}}")
	if !ok {
		return fmt.Errorf("traceview: template lacks its data slot")
	}
	title := html.EscapeString(data.Title)
	before = strings.ReplaceAll(before, "{{TITLE}}", title)
	after = strings.ReplaceAll(after, "{{TITLE}}", title)
	for _, part := range [][]byte{[]byte(before), js, []byte(after)} {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}
