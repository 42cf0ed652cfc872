package sim

import (
	"errors"
	"fmt"
	"strings"
)

// This file is the exhaustive explorer: a breadth-first search over every
// state a system can reach, for systems small enough to enumerate (a traffic
// light controller with time in whole seconds, a toy lock protocol). Where the
// simulator samples executions by seed, the explorer visits all of them.
//
// The caller supplies the state as a comparable value (the state itself when
// its fields are comparable, or a key the caller derives from it, such as an
// encoding or a hash) and a function listing the transitions out of a state.
// Because the search is breadth-first and invariants are checked as states are
// discovered, a reported counterexample is a shortest path from the initial
// state.

// Transition is one edge of a state graph: the event that happens in a state
// and the state it leads to.
type Transition[S comparable] struct {
	// Event names what happened ("tick", "press", "p1 enters"); it is what a
	// counterexample path prints.
	Event string
	// To is the state after the event.
	To S
}

// Invariant is a property every reachable state must have. Check returns nil
// when the state satisfies it and an error saying why not otherwise.
type Invariant[S comparable] struct {
	Name  string
	Check func(S) error
}

// EdgeInvariant is a property every reachable transition must have, for rules
// that speak of change ("north-south stays green at least 30 s before it
// turns yellow"). Check returns nil when the step from from along t is
// allowed.
type EdgeInvariant[S comparable] struct {
	Name  string
	Check func(from S, t Transition[S]) error
}

// DefaultMaxStates bounds an exploration whose Explorer sets no MaxStates.
const DefaultMaxStates = 1 << 22

// ErrStateLimit is wrapped by the error Explore returns when the state space
// is larger than the explorer's MaxStates.
var ErrStateLimit = errors.New("sim: state limit reached")

// Explorer is a breadth-first search over every state reachable from an
// initial state. The zero value is not usable: Next is required.
type Explorer[S comparable] struct {
	// Next lists the transitions enabled in a state, in a deterministic
	// order. An empty list is a deadlock unless AllowDeadlock is set.
	Next func(S) []Transition[S]
	// Invariants are checked in every reachable state, as it is discovered.
	Invariants []Invariant[S]
	// EdgeInvariants are checked on every reachable transition.
	EdgeInvariants []EdgeInvariant[S]
	// AllowDeadlock accepts states without successors (terminating systems).
	AllowDeadlock bool
	// MaxStates stops the search with ErrStateLimit once this many states
	// are known; 0 means DefaultMaxStates.
	MaxStates int
}

// Violation is the error an exploration reports: which property failed, in
// which state, and the shortest sequence of events leading there from the
// initial state.
type Violation struct {
	// Kind is "invariant", "edge invariant", "deadlock" or "reachability".
	Kind string
	// Name is the name of the failed property ("" for a deadlock).
	Name string
	// Path is the events from the initial state to the offending state (for
	// an edge invariant, the last event is the offending step).
	Path []string
	// States are the states along Path: States[0] is the initial state and
	// States[i] the state after Path[i-1].
	States []any
	// State is the offending state (for an edge invariant, the state the
	// offending step leads to); it is the last of States.
	State any
	// Err is what the property's check returned, if anything.
	Err error
}

// Error prints the failed property and the counterexample path, one event a
// line.
func (v *Violation) Error() string {
	var b strings.Builder
	b.WriteString("sim: ")
	b.WriteString(v.Kind)
	if v.Name != "" {
		fmt.Fprintf(&b, " %q", v.Name)
	}
	switch v.Kind {
	case "deadlock":
		b.WriteString(": state has no successor")
	case "reachability":
		b.WriteString(": state cannot reach the goal")
	default:
		b.WriteString(" violated")
	}
	if v.Err != nil {
		b.WriteString(": ")
		b.WriteString(v.Err.Error())
	}
	fmt.Fprintf(&b, "\ncounterexample (%d events from the initial state):", len(v.Path))
	if len(v.States) == len(v.Path)+1 {
		fmt.Fprintf(&b, "\n  0. initial state: %+v", v.States[0])
		for i, e := range v.Path {
			fmt.Fprintf(&b, "\n  %d. %s -> %+v", i+1, e, v.States[i+1])
		}
		return b.String()
	}
	for i, e := range v.Path {
		fmt.Fprintf(&b, "\n  %d. %s", i+1, e)
	}
	fmt.Fprintf(&b, "\nstate: %+v", v.State)
	return b.String()
}

// Unwrap returns the property's own error.
func (v *Violation) Unwrap() error { return v.Err }

// Explore searches every state reachable from init with next, checking the
// invariants in each and reporting deadlocks. It is shorthand for an
// Explorer with those fields set.
func Explore[S comparable](init S, next func(S) []Transition[S], invariants ...Invariant[S]) (*StateSpace[S], error) {
	x := Explorer[S]{Next: next, Invariants: invariants}
	return x.Explore(init)
}

// StateSpace is the graph an exploration built: every state reached, in the
// order they were discovered (breadth-first, so by distance from the
// initial state), and the transitions between them. When Explore stops at a
// violation, the space holds what was found until then.
type StateSpace[S comparable] struct {
	states []S
	index  map[S]int32
	parent []int32  // BFS tree: the state each was discovered from (-1 for init)
	via    []string // the event on the BFS tree edge into each state
	depth  []int32
	succ   [][]int32
	events [][]string
	edges  int
}

// Explore runs the search from init. It returns the state space and nil when
// every property holds, or the space found so far and a *Violation (or an
// error wrapping ErrStateLimit) otherwise.
func (x *Explorer[S]) Explore(init S) (*StateSpace[S], error) {
	if x.Next == nil {
		return nil, errors.New("sim: Explorer.Next is nil")
	}
	limit := x.MaxStates
	if limit <= 0 {
		limit = DefaultMaxStates
	}
	sp := &StateSpace[S]{index: make(map[S]int32)}
	sp.add(init, -1, "")
	if err := x.checkState(sp, 0); err != nil {
		return sp, err
	}
	for cur := 0; cur < len(sp.states); cur++ {
		from := sp.states[cur]
		ts := x.Next(from)
		if len(ts) == 0 && !x.AllowDeadlock {
			return sp, sp.violation("deadlock", "", cur, nil)
		}
		succ := make([]int32, 0, len(ts))
		evs := make([]string, 0, len(ts))
		for _, t := range ts {
			for _, inv := range x.EdgeInvariants {
				if err := inv.Check(from, t); err != nil {
					v := sp.violation("edge invariant", inv.Name, cur, err)
					v.Path = append(v.Path, t.Event)
					v.States = append(v.States, t.To)
					v.State = t.To
					return sp, v
				}
			}
			id, seen := sp.index[t.To]
			if !seen {
				if len(sp.states) >= limit {
					return sp, fmt.Errorf("explore: %d states known, depth %d: %w", len(sp.states), sp.depth[cur]+1, ErrStateLimit)
				}
				id = sp.add(t.To, int32(cur), t.Event)
				if err := x.checkState(sp, int(id)); err != nil {
					return sp, err
				}
			}
			succ = append(succ, id)
			evs = append(evs, t.Event)
		}
		sp.succ[cur] = succ
		sp.events[cur] = evs
		sp.edges += len(succ)
	}
	return sp, nil
}

func (x *Explorer[S]) checkState(sp *StateSpace[S], i int) error {
	s := sp.states[i]
	for _, inv := range x.Invariants {
		if err := inv.Check(s); err != nil {
			return sp.violation("invariant", inv.Name, i, err)
		}
	}
	return nil
}

func (sp *StateSpace[S]) add(s S, parent int32, via string) int32 {
	id := int32(len(sp.states))
	d := int32(0)
	if parent >= 0 {
		d = sp.depth[parent] + 1
	}
	sp.states = append(sp.states, s)
	sp.index[s] = id
	sp.parent = append(sp.parent, parent)
	sp.via = append(sp.via, via)
	sp.depth = append(sp.depth, d)
	sp.succ = append(sp.succ, nil)
	sp.events = append(sp.events, nil)
	return id
}

// Len is the number of distinct states reached.
func (sp *StateSpace[S]) Len() int { return len(sp.states) }

// Transitions is the number of transitions explored (edges of the graph,
// counting each event out of each state once).
func (sp *StateSpace[S]) Transitions() int { return sp.edges }

// Depth is the largest distance, in events, from the initial state to any
// state reached.
func (sp *StateSpace[S]) Depth() int {
	m := int32(0)
	for _, d := range sp.depth {
		m = max(m, d)
	}
	return int(m)
}

// State returns the i-th state in discovery order; state 0 is the initial
// state.
func (sp *StateSpace[S]) State(i int) S { return sp.states[i] }

// Index returns the discovery index of s and whether s was reached.
func (sp *StateSpace[S]) Index(s S) (int, bool) {
	i, ok := sp.index[s]
	return int(i), ok
}

// Path returns a shortest sequence of events leading from the initial state
// to the i-th state.
func (sp *StateSpace[S]) Path(i int) []string {
	n := sp.depth[i]
	path := make([]string, n)
	for j := int32(i); sp.parent[j] >= 0; j = sp.parent[j] {
		n--
		path[n] = sp.via[j]
	}
	return path
}

// violation describes a failed property in the i-th state.
func (sp *StateSpace[S]) violation(kind, name string, i int, err error) *Violation {
	n := int(sp.depth[i])
	states := make([]any, n+1)
	for j := int32(i); j >= 0; j = sp.parent[j] {
		states[n] = sp.states[j]
		n--
	}
	return &Violation{Kind: kind, Name: name, Path: sp.Path(i), States: states, State: sp.states[i], Err: err}
}

// Successors returns the events enabled in the i-th state and the indices of
// the states they lead to. It is empty for states the search had not
// expanded when it stopped.
func (sp *StateSpace[S]) Successors(i int) (events []string, to []int) {
	to = make([]int, len(sp.succ[i]))
	for k, j := range sp.succ[i] {
		to[k] = int(j)
	}
	return sp.events[i], to
}

// AlwaysCanReach checks a liveness-style property over the explored graph:
// from every reachable state, some sequence of events leads to a state where
// goal holds. It searches backwards from the goal states over the reversed
// graph. On failure it returns a *Violation naming the shortest-path state
// that cannot reach the goal. Call it on a space from a search that
// succeeded; on a partial space the answer is meaningless.
func (sp *StateSpace[S]) AlwaysCanReach(name string, goal func(S) bool) error {
	n := len(sp.states)
	// Reverse adjacency in compressed form: preds of j are rev[start[j]:start[j+1]].
	start := make([]int32, n+1)
	for _, succ := range sp.succ {
		for _, j := range succ {
			start[j+1]++
		}
	}
	for j := 0; j < n; j++ {
		start[j+1] += start[j]
	}
	rev := make([]int32, start[n])
	fill := make([]int32, n)
	copy(fill, start[:n])
	for i, succ := range sp.succ {
		for _, j := range succ {
			rev[fill[j]] = int32(i)
			fill[j]++
		}
	}
	reach := make([]bool, n)
	queue := make([]int32, 0, n)
	for i, s := range sp.states {
		if goal(s) {
			reach[i] = true
			queue = append(queue, int32(i))
		}
	}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		for _, i := range rev[start[j]:start[j+1]] {
			if !reach[i] {
				reach[i] = true
				queue = append(queue, i)
			}
		}
	}
	for i := range n { // discovery order: the first miss has a shortest path
		if !reach[i] {
			return sp.violation("reachability", name, i, nil)
		}
	}
	return nil
}
