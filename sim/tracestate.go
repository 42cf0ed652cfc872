package sim

// TraceStater is implemented by observations that announce a node's role or
// state (a Raft node becoming leader, a light turning red). When tracing is
// on, the event line that made such an observation carries a "state" field
// with the TraceState of the last one, and trace viewers draw the node's
// states as spans from one announcement to the next. Observations that do
// not implement it cost nothing extra.
type TraceStater interface {
	TraceState() string
}

// traceState returns the state announced by the last observation of an
// event that implements TraceStater, if any.
func traceState(obs []any) (string, bool) {
	for i := len(obs) - 1; i >= 0; i-- {
		if ts, ok := obs[i].(TraceStater); ok {
			return ts.TraceState(), true
		}
	}
	return "", false
}
