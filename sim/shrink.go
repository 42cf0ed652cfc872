package sim

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Schedule is the part of a run a shrinker may change: the fault schedule
// and the fault model, the run's length and its size. The seed stays fixed,
// so a smaller schedule replays the same random choices wherever the
// removed faults did not change the course of the run.
//
// Systems with clients number them after the other nodes: the simulation
// has Nodes+Clients nodes, ids 0..Nodes-1 are the system's nodes and
// Nodes..Nodes+Clients-1 its clients. Fault and drift entries name
// simulation node ids, and the shrinker renumbers them when it cuts nodes
// or clients.
type Schedule struct {
	Seed  uint64
	Nodes int
	// Clients is the number of clients of systems that have that knob
	// (zero for those that do not).
	Clients     int
	Duration    time.Duration
	Network     Network
	DriftPPM    []int32
	SyncLatency time.Duration
	Faults      []Fault
}

// ScheduleOf returns the schedule of cfg, with Nodes = cfg.Nodes and
// Clients zero. For a system with clients, set Nodes and Clients so that
// they add up to cfg.Nodes.
func ScheduleOf(cfg Config) Schedule {
	return Schedule{
		Seed: cfg.Seed, Nodes: cfg.Nodes, Duration: cfg.Duration, Network: cfg.Network,
		DriftPPM: slices.Clone(cfg.DriftPPM), SyncLatency: cfg.SyncLatency, Faults: slices.Clone(cfg.Faults),
	}
}

// Apply sets cfg's seed, fault model, fault schedule and duration from sc.
// Builders call it after building a system's config for sc.Nodes nodes and
// sc.Clients clients.
func (sc Schedule) Apply(cfg *Config) {
	cfg.Seed = sc.Seed
	cfg.Duration = sc.Duration
	cfg.Network = sc.Network
	cfg.DriftPPM = slices.Clone(sc.DriftPPM)
	cfg.SyncLatency = sc.SyncLatency
	cfg.Faults = slices.Clone(sc.Faults)
}

// Size is a rough measure of how much a schedule does, for reports:
// faults, plus one per network fault and for drift and sync latency.
func (sc Schedule) Size() int {
	n := len(sc.Faults)
	for _, on := range []bool{sc.Network.Loss > 0, sc.Network.Duplicate > 0, sc.Network.Reorder > 0,
		sc.Network.TailProb > 0, len(sc.DriftPPM) > 0, sc.SyncLatency > 0} {
		if on {
			n++
		}
	}
	return n
}

// resize returns sc for a system of nodes nodes and clients clients:
// faults that name a node or client that no longer exists are dropped,
// clients are renumbered to follow the nodes, partitions are cut down to
// the nodes that remain (and dropped if that leaves one side empty), and
// drift is kept for the nodes that remain.
func (sc Schedule) resize(nodes, clients int) Schedule {
	id := func(i int) int {
		switch {
		case i < sc.Nodes && i < nodes:
			return i
		case i >= sc.Nodes && i-sc.Nodes < clients:
			return nodes + i - sc.Nodes
		}
		return -1
	}
	total := nodes + clients
	out := sc
	out.Nodes, out.Clients = nodes, clients
	if sc.DriftPPM != nil {
		out.DriftPPM = make([]int32, min(total, len(sc.DriftPPM)))
		for i, d := range sc.DriftPPM {
			if j := id(i); j >= 0 && j < len(out.DriftPPM) {
				out.DriftPPM[j] = d
			}
		}
	}
	out.Faults = nil
	all := uint64(1)<<total - 1
	for _, f := range sc.Faults {
		switch f.Kind {
		case FaultPartition:
			side := uint64(0)
			for i := range 64 {
				if j := id(i); f.Side&(1<<i) != 0 && j >= 0 {
					side |= 1 << j
				}
			}
			if side == 0 || side == all {
				continue
			}
			f.Side = side
		case FaultHeal:
		case FaultBlock, FaultClog:
			a, b := id(int(f.Node)), id(int(f.Peer))
			if a < 0 || b < 0 {
				continue
			}
			f.Node, f.Peer = NodeID(a), NodeID(b)
		default:
			a := id(int(f.Node))
			if a < 0 {
				continue
			}
			f.Node = NodeID(a)
		}
		out.Faults = append(out.Faults, f)
	}
	return out
}

// withDuration returns sc cut to d: faults at or after d are dropped.
func (sc Schedule) withDuration(d time.Duration) Schedule {
	out := sc
	out.Duration = d
	out.Faults = nil
	for _, f := range sc.Faults {
		if f.At < d {
			out.Faults = append(out.Faults, f)
		}
	}
	return out
}

// ShrinkOptions says how to rebuild a system for a smaller schedule.
type ShrinkOptions struct {
	// Build returns a fresh config (machines, checkers and their state all
	// new) for the system with sc.Nodes nodes and sc.Clients clients, with
	// sc applied (see Schedule.Apply).
	Build func(sc Schedule) Config
	// MinNodes and MinClients bound how far the shrinker cuts the system
	// down. Nodes are not cut below MinNodes (at least 1); clients are
	// not cut when the schedule has none.
	MinNodes, MinClients int
	// MaxRuns bounds the number of simulations (500 if zero).
	MaxRuns int
	// Progress, if set, is told of each smaller schedule found.
	Progress func(sc Schedule, f *Failure)
}

// ShrinkResult is the smallest failing schedule found.
type ShrinkResult struct {
	Schedule Schedule
	// Failure is how Schedule fails: the same checker as the original.
	Failure *Failure
	// Original is the schedule shrinking started from.
	Original Schedule
	// Runs is the number of simulations run, and Exhausted whether the
	// search stopped because it ran out of them.
	Runs      int
	Exhausted bool
}

// ErrNoFailure is returned by Shrink when the starting schedule does not
// fail with a checker failure.
var ErrNoFailure = errors.New("the schedule does not fail")

type shrinker struct {
	opts    ShrinkOptions
	checker string
	best    Schedule
	fail    *Failure
	runs    int
	max     int
}

// fails runs sc and reports whether it fails with the same checker; if so
// it becomes the best schedule so far.
func (k *shrinker) fails(sc Schedule) bool {
	if k.runs >= k.max {
		return false
	}
	k.runs++
	cfg := k.opts.Build(sc)
	sc.Apply(&cfg)
	cfg.Trace = nil
	res := New(cfg).Run()
	var f *Failure
	if !errors.As(res.Err, &f) || f.Checker != k.checker {
		return false
	}
	k.best, k.fail = sc, f
	if k.opts.Progress != nil {
		k.opts.Progress(sc, f)
	}
	return true
}

// Shrink searches for a smaller schedule that still fails with the same
// checker as sc: fewer faults (delta debugging over the fault list), a
// calmer network, no drift or sync latency, a shorter run, fewer nodes and
// fewer clients, repeated until nothing more can be cut or MaxRuns
// simulations have run. The seed never changes, and the search runs one
// simulation at a time in a fixed order, so the same input always shrinks
// to the same result.
func Shrink(sc Schedule, opts ShrinkOptions) (ShrinkResult, error) {
	if opts.Build == nil {
		return ShrinkResult{}, errors.New("sim: ShrinkOptions needs Build")
	}
	k := &shrinker{opts: opts, max: opts.MaxRuns}
	if k.max <= 0 {
		k.max = 500
	}
	// The original run names the checker every smaller schedule must trip.
	k.runs++
	cfg := opts.Build(sc)
	sc.Apply(&cfg)
	cfg.Trace = nil
	res := New(cfg).Run()
	var f *Failure
	if !errors.As(res.Err, &f) {
		if res.Err != nil {
			return ShrinkResult{}, fmt.Errorf("%w with a checker failure: %v", ErrNoFailure, res.Err)
		}
		return ShrinkResult{}, ErrNoFailure
	}
	k.checker, k.best, k.fail = f.Checker, sc, f
	// Run queues faults in list order at their times, so a stable sort by
	// time changes nothing and lets the passes below reason about order.
	k.best.Faults = slices.Clone(sc.Faults)
	slices.SortStableFunc(k.best.Faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })

	for round := 0; round < 4; round++ {
		before := k.best.Size() + int(k.best.Duration/time.Millisecond) + k.best.Nodes + k.best.Clients
		k.cutDuration()
		k.cutFaults()
		k.pullEarlier()
		k.cutDuration()
		k.calm()
		k.cutNodes()
		k.cutClients()
		after := k.best.Size() + int(k.best.Duration/time.Millisecond) + k.best.Nodes + k.best.Clients
		if after >= before || k.runs >= k.max {
			break
		}
	}
	return ShrinkResult{Schedule: k.best, Failure: k.fail, Original: sc, Runs: k.runs, Exhausted: k.runs >= k.max}, nil
}

// cutFaults is delta debugging (ddmin) over the fault list.
func (k *shrinker) cutFaults() {
	faults := k.best.Faults
	try := func(fs []Fault) bool {
		sc := k.best
		sc.Faults = fs
		return k.fails(sc)
	}
	if len(faults) == 0 {
		return
	}
	if try(nil) {
		return
	}
	n := 2
	for len(k.best.Faults) >= 2 && k.runs < k.max {
		faults = k.best.Faults
		n = min(n, len(faults))
		chunks := split(faults, n)
		reduced := false
		for _, c := range chunks {
			if try(c) {
				n, reduced = 2, true
				break
			}
		}
		if !reduced && n > 2 {
			for i := range chunks {
				if try(complement(chunks, i)) {
					n, reduced = max(n-1, 2), true
					break
				}
			}
		}
		if !reduced {
			if n >= len(faults) {
				return
			}
			n = min(2*n, len(faults))
		}
	}
	if len(k.best.Faults) == 1 {
		try(nil)
	}
}

func split(fs []Fault, n int) [][]Fault {
	out := make([][]Fault, 0, n)
	for i := range n {
		lo, hi := i*len(fs)/n, (i+1)*len(fs)/n
		out = append(out, slices.Clone(fs[lo:hi]))
	}
	return out
}

func complement(chunks [][]Fault, skip int) []Fault {
	var out []Fault
	for i, c := range chunks {
		if i != skip {
			out = append(out, c...)
		}
	}
	return out
}

// cutDuration shortens the fault phase: straight to just after the
// failure if it came during the fault phase, then by bisection.
func (k *shrinker) cutDuration() {
	if at := k.fail.At.Truncate(time.Millisecond) + time.Millisecond; at < k.best.Duration {
		k.fails(k.best.withDuration(at))
	}
	lo, hi := time.Duration(0), k.best.Duration
	for hi-lo > max(time.Millisecond, hi/64) && k.runs < k.max {
		mid := (lo + (hi-lo)/2).Truncate(time.Millisecond)
		if mid <= lo {
			break
		}
		if k.fails(k.best.withDuration(mid)) {
			hi = k.best.Duration
		} else {
			lo = mid
		}
	}
}

// pullEarlier moves faults earlier so the run can be cut shorter: first
// the whole schedule, so that it starts at time zero, then each fault
// towards the one before it (to it, or halfway), taking later faults along.
func (k *shrinker) pullEarlier() {
	shift := func(from int, by time.Duration) Schedule {
		sc := k.best
		sc.Faults = slices.Clone(sc.Faults)
		for i := from; i < len(sc.Faults); i++ {
			sc.Faults[i].At -= by
		}
		sc.Duration -= by
		return sc
	}
	if len(k.best.Faults) > 0 && k.best.Faults[0].At > 0 {
		k.fails(shift(0, k.best.Faults[0].At))
	}
	for i := 1; i < len(k.best.Faults) && k.runs < k.max; i++ {
		gap := k.best.Faults[i].At - k.best.Faults[i-1].At
		if gap > 0 && !k.fails(shift(i, gap)) && gap/2 > 0 {
			k.fails(shift(i, gap/2))
		}
	}
}

// calm turns network faults, clock drift and sync latency off one at a
// time.
func (k *shrinker) calm() {
	steps := []func(*Schedule) bool{
		func(sc *Schedule) bool { ok := sc.Network.Loss > 0; sc.Network.Loss = 0; return ok },
		func(sc *Schedule) bool { ok := sc.Network.Duplicate > 0; sc.Network.Duplicate = 0; return ok },
		func(sc *Schedule) bool { ok := sc.Network.Reorder > 0; sc.Network.Reorder = 0; return ok },
		func(sc *Schedule) bool {
			ok := sc.Network.TailProb > 0
			sc.Network.TailProb, sc.Network.TailDelay = 0, 0
			return ok
		},
		func(sc *Schedule) bool { ok := len(sc.DriftPPM) > 0; sc.DriftPPM = nil; return ok },
		func(sc *Schedule) bool { ok := sc.SyncLatency > 0; sc.SyncLatency = 0; return ok },
	}
	for _, step := range steps {
		sc := k.best
		sc.DriftPPM = slices.Clone(sc.DriftPPM)
		if step(&sc) {
			k.fails(sc)
		}
	}
}

// cutNodes tries the smallest node counts first.
func (k *shrinker) cutNodes() {
	for n := max(k.opts.MinNodes, 1); n < k.best.Nodes; n++ {
		if k.fails(k.best.resize(n, k.best.Clients)) {
			return
		}
	}
}

// cutClients tries the smallest client counts first.
func (k *shrinker) cutClients() {
	if k.best.Clients == 0 {
		return
	}
	for c := max(k.opts.MinClients, 0); c < k.best.Clients; c++ {
		if k.fails(k.best.resize(k.best.Nodes, c)) {
			return
		}
	}
}

// Repro is a replayable reproduction: a system name, a schedule, and the
// failure it is expected to produce. WriteRepro and ReadRepro store it as
// JSON, with durations written as Go duration strings and faults by name:
//
//	{
//	  "system": "raft", "seed": 42, "nodes": 3, "duration": "1.2s",
//	  "network": {"delay": "1ms", "jitter": "1ms"},
//	  "faults": [{"at": "300ms", "kind": "partition", "side": [0]},
//	             {"at": "800ms", "kind": "crash", "node": 2}],
//	  "checker": "raft-safety", "error": "..."
//	}
type Repro struct {
	System   string
	Schedule Schedule
	// Checker and Error describe the failure the schedule produced.
	Checker, Error string
}

// reproJSON is the file format; reproOut is the same with the faults
// left for WriteRepro to write one a line.
type reproJSON struct {
	reproHead
	Faults []faultJSON `json:"faults"`
	reproTail
}

type reproOut struct {
	reproHead
	Faults string `json:"faults"`
	reproTail
}

type reproHead struct {
	System      string      `json:"system"`
	Seed        uint64      `json:"seed"`
	Nodes       int         `json:"nodes"`
	Clients     int         `json:"clients,omitempty"`
	Duration    string      `json:"duration"`
	Network     networkJSON `json:"network"`
	DriftPPM    []int32     `json:"drift_ppm,omitempty"`
	SyncLatency string      `json:"sync_latency,omitempty"`
}

type reproTail struct {
	Checker string `json:"checker,omitempty"`
	Error   string `json:"error,omitempty"`
}

const faultsSlot = "\x00faults"

type networkJSON struct {
	Delay     string  `json:"delay,omitempty"`
	Jitter    string  `json:"jitter,omitempty"`
	TailProb  float64 `json:"tail_prob,omitempty"`
	TailDelay string  `json:"tail_delay,omitempty"`
	Loss      float64 `json:"loss,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Reorder   float64 `json:"reorder,omitempty"`
}

type faultJSON struct {
	At   string `json:"at"`
	Kind string `json:"kind"`
	Node *int   `json:"node,omitempty"`
	Peer *int   `json:"peer,omitempty"`
	Side []int  `json:"side,omitempty"`
}

func durString(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// WriteRepro writes r as indented JSON.
func WriteRepro(w io.Writer, r Repro) error {
	sc := r.Schedule
	j := reproOut{reproHead: reproHead{
		System: r.System, Seed: sc.Seed, Nodes: sc.Nodes, Clients: sc.Clients,
		Duration: sc.Duration.String(), DriftPPM: sc.DriftPPM, SyncLatency: durString(sc.SyncLatency),
		Network: networkJSON{
			Delay: durString(sc.Network.Delay), Jitter: durString(sc.Network.Jitter),
			TailProb: sc.Network.TailProb, TailDelay: durString(sc.Network.TailDelay),
			Loss: sc.Network.Loss, Duplicate: sc.Network.Duplicate, Reorder: sc.Network.Reorder,
		},
	}, Faults: faultsSlot, reproTail: reproTail{Checker: r.Checker, Error: r.Error}}
	var faults []byte
	for _, f := range sc.Faults {
		fj := faultJSON{At: f.At.String(), Kind: f.Kind.String()}
		node, peer := int(f.Node), int(f.Peer)
		switch f.Kind {
		case FaultPartition:
			fj.Side = []int{}
			for i := range 64 {
				if f.Side&(1<<i) != 0 {
					fj.Side = append(fj.Side, i)
				}
			}
		case FaultHeal:
		case FaultBlock, FaultClog:
			fj.Node, fj.Peer = &node, &peer
		default:
			fj.Node = &node
		}
		b, err := json.Marshal(fj)
		if err != nil {
			return err
		}
		if faults == nil {
			faults = append(faults, "[\n    "...)
		} else {
			faults = append(faults, ",\n    "...)
		}
		faults = append(faults, b...)
	}
	if faults == nil {
		faults = []byte("[]")
	} else {
		faults = append(faults, "\n  ]"...)
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	// Only the key itself is followed by the slot with bare quotes.
	slot, _ := json.Marshal(faultsSlot)
	key := append([]byte(`"faults": `), slot...)
	b = bytes.Replace(b, key, append([]byte(`"faults": `), faults...), 1)
	_, err = w.Write(append(b, '\n'))
	return err
}

// maxReproBytes bounds the size of a reproduction file ReadRepro accepts.
const maxReproBytes = 16 << 20

// ReadRepro reads and validates a reproduction written by WriteRepro.
func ReadRepro(r io.Reader) (Repro, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxReproBytes+1))
	if err != nil {
		return Repro{}, err
	}
	if len(b) > maxReproBytes {
		return Repro{}, fmt.Errorf("reproduction larger than %d bytes", maxReproBytes)
	}
	var j reproJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Repro{}, fmt.Errorf("reproduction: %w", err)
	}
	if j.Nodes < 1 || j.Nodes > 64 {
		return Repro{}, fmt.Errorf("reproduction: nodes %d not in 1..64", j.Nodes)
	}
	if j.Clients < 0 || j.Nodes+j.Clients > 64 {
		return Repro{}, fmt.Errorf("reproduction: %d clients: want 0..%d", j.Clients, 64-j.Nodes)
	}
	var errs []error
	dur := func(what, s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s: bad duration %q", what, s))
		}
		return d
	}
	prob := func(what string, p float64) float64 {
		if math.IsNaN(p) || p < 0 || p > 1 {
			errs = append(errs, fmt.Errorf("network %s: %v not a probability", what, p))
		}
		return p
	}
	sc := Schedule{
		Seed: j.Seed, Nodes: j.Nodes, Clients: j.Clients,
		Duration: dur("duration", j.Duration), SyncLatency: dur("sync_latency", j.SyncLatency),
		DriftPPM: j.DriftPPM,
		Network: Network{
			Delay: dur("network delay", j.Network.Delay), Jitter: dur("network jitter", j.Network.Jitter),
			TailProb: prob("tail_prob", j.Network.TailProb), TailDelay: dur("network tail_delay", j.Network.TailDelay),
			Loss: prob("loss", j.Network.Loss), Duplicate: prob("duplicate", j.Network.Duplicate), Reorder: prob("reorder", j.Network.Reorder),
		},
	}
	if len(sc.DriftPPM) == 0 {
		sc.DriftPPM = nil // "drift_ppm": [] is no drift, as is no drift_ppm
	}
	total := sc.Nodes + sc.Clients
	if len(sc.DriftPPM) > total {
		errs = append(errs, fmt.Errorf("drift_ppm has %d entries for %d nodes", len(sc.DriftPPM), total))
	}
	for _, d := range sc.DriftPPM {
		if d < -100_000 || d > 100_000 {
			errs = append(errs, fmt.Errorf("drift_ppm %d not within ±100000", d))
		}
	}
	for i, fj := range j.Faults {
		f, err := fj.fault(total)
		if err != nil {
			errs = append(errs, fmt.Errorf("fault %d: %w", i, err))
			continue
		}
		sc.Faults = append(sc.Faults, f)
	}
	if err := errors.Join(errs...); err != nil {
		return Repro{}, fmt.Errorf("reproduction: %w", err)
	}
	return Repro{System: j.System, Schedule: sc, Checker: j.Checker, Error: j.Error}, nil
}

func (fj faultJSON) fault(nodes int) (Fault, error) {
	at, err := time.ParseDuration(fj.At)
	if err != nil || at < 0 {
		return Fault{}, fmt.Errorf("bad time %q", fj.At)
	}
	kind := FaultKind(0)
	for k, name := range faultNames {
		if name != "" && name == fj.Kind {
			kind = FaultKind(k)
		}
	}
	if kind == 0 {
		return Fault{}, fmt.Errorf("unknown kind %q", fj.Kind)
	}
	f := Fault{At: at, Kind: kind}
	node := func(p *int, what string) (NodeID, error) {
		if p == nil {
			return 0, fmt.Errorf("%s needs %s", fj.Kind, what)
		}
		if *p < 0 || *p >= nodes {
			return 0, fmt.Errorf("%s %d not in 0..%d", what, *p, nodes-1)
		}
		return NodeID(*p), nil
	}
	switch kind {
	case FaultPartition:
		for _, i := range fj.Side {
			if i < 0 || i >= nodes {
				return Fault{}, fmt.Errorf("partition side names node %d of %d", i, nodes)
			}
			f.Side |= 1 << i
		}
	case FaultHeal:
	case FaultBlock, FaultClog:
		if f.Node, err = node(fj.Node, "node"); err != nil {
			return Fault{}, err
		}
		if f.Peer, err = node(fj.Peer, "peer"); err != nil {
			return Fault{}, err
		}
	default:
		if f.Node, err = node(fj.Node, "node"); err != nil {
			return Fault{}, err
		}
	}
	return f, nil
}
