package raft

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// recorder is shared by every node's test application of one run: it
// checks that no two nodes ever apply different data at the same index.
type recorder struct {
	applied map[uint64]string
	index   map[string]uint64
	err     error
	count   int
}

func newRecorder() *recorder {
	return &recorder{applied: map[uint64]string{}, index: map[string]uint64{}}
}

func (r *recorder) checker() sim.Checker {
	return sim.Checker{Name: "apply", Step: func(*sim.Sim) error { return r.err }}
}

// testApp is an Application that folds applied data into a hash, so a
// snapshot is small but still pins the exact sequence applied.
type testApp struct {
	id   sim.NodeID
	rec  *recorder
	last uint64
	n    uint64
	hash uint64
}

func (a *testApp) Apply(index uint64, data []byte) {
	if index <= a.last && a.rec.err == nil {
		a.rec.err = fmt.Errorf("node %d applied index %d after %d", a.id, index, a.last)
	}
	if old, ok := a.rec.applied[index]; ok && old != string(data) && a.rec.err == nil {
		a.rec.err = fmt.Errorf("node %d applied %q at index %d, another node applied %q", a.id, data, index, old)
	} else if !ok {
		a.rec.applied[index] = string(data)
		a.rec.index[string(data)] = index
	}
	a.rec.count++
	a.last = index
	a.n++
	for _, c := range data {
		a.hash = (a.hash ^ uint64(c)) * 1099511628211
	}
	a.hash = (a.hash ^ index) * 1099511628211
}

func (a *testApp) Snapshot() []byte {
	b := binary.AppendUvarint(nil, a.last)
	b = binary.AppendUvarint(b, a.n)
	return binary.AppendUvarint(b, a.hash)
}

func (a *testApp) Restore(data []byte) {
	r := reader{b: data}
	a.last, a.n, a.hash = r.uvarint(), r.uvarint(), r.uvarint()
	if r.err != nil && a.rec.err == nil {
		a.rec.err = fmt.Errorf("node %d: bad snapshot", a.id)
	}
}

// ReadReady makes testApp a ReadHandler, so that nodes serve reads.
func (a *testApp) ReadReady(uint64, bool) {}

func peers(n int) []sim.NodeID {
	p := make([]sim.NodeID, n)
	for i := range p {
		p[i] = sim.NodeID(i)
	}
	return p
}

// testConfig is the standard configuration of the scenario tests.
func testConfig(n int) Config {
	return Config{
		Peers:              peers(n),
		HeartbeatInterval:  50 * time.Millisecond,
		ElectionTimeoutMin: 150 * time.Millisecond,
		ElectionTimeoutMax: 300 * time.Millisecond,
		PreVote:            true,
		CheckQuorum:        true,
	}
}

type cluster struct {
	s      *sim.Sim
	rec    *recorder
	n      int
	nextID uint64
}

type clusterOpt func(*sim.Config, *Config)

func newCluster(seed uint64, n int, opts ...clusterOpt) *cluster {
	c := &cluster{rec: newRecorder(), n: n}
	rc := testConfig(n)
	sc := sim.Config{
		Seed:    seed,
		Nodes:   n,
		Network: sim.Network{Delay: time.Millisecond, Jitter: time.Millisecond},
		Codec:   Codec{},
	}
	for _, o := range opts {
		o(&sc, &rc)
	}
	sc.New = func(id sim.NodeID) sim.Machine {
		cfg := rc
		cfg.NewApp = func() Application { return &testApp{id: id, rec: c.rec} }
		return New(id, cfg)
	}
	sc.Checkers = append(sc.Checkers, Checker(nil), c.rec.checker())
	c.s = sim.New(sc)
	return c
}

func (c *cluster) node(id sim.NodeID) *Node {
	if !c.s.Up(id) {
		return nil
	}
	r, _ := c.s.Machine(id).(*Node)
	return r
}

// leader returns the leader with the highest term among live nodes, or None.
func (c *cluster) leader() sim.NodeID {
	best, bt := None, uint64(0)
	for i := range c.n {
		r := c.node(sim.NodeID(i))
		if r != nil && !c.s.Paused(sim.NodeID(i)) && r.Role() == Leader && r.Term() >= bt {
			best, bt = sim.NodeID(i), r.Term()
		}
	}
	return best
}

func (c *cluster) waitLeader(limit time.Duration) (sim.NodeID, error) {
	err := c.s.RunUntil(func(*sim.Sim) bool { return c.leader() != None }, limit)
	if err != nil {
		return None, fmt.Errorf("no leader: %w", err)
	}
	return c.leader(), nil
}

// commitOn proposes data (at whichever node leads, retrying across leader
// changes) and waits until it is applied on every node in ids (every live
// node if none given). It returns the entry's index.
func (c *cluster) commitOn(data string, limit time.Duration, ids ...sim.NodeID) (uint64, error) {
	end := c.s.Now() + limit
	for c.s.Now() < end {
		l, err := c.waitLeader(end - c.s.Now())
		if err != nil {
			return 0, err
		}
		c.nextID++
		c.s.Inject(l, Propose{ID: c.nextID, Data: []byte(data)})
		err = c.s.RunUntil(func(*sim.Sim) bool {
			idx, ok := c.rec.index[data]
			if !ok {
				return false
			}
			targets := ids
			if len(targets) == 0 {
				for i := range c.n {
					if c.node(sim.NodeID(i)) != nil {
						targets = append(targets, sim.NodeID(i))
					}
				}
			}
			for _, id := range targets {
				r := c.node(id)
				if r == nil || r.Applied() < idx {
					return false
				}
			}
			return true
		}, min(time.Second, end-c.s.Now()))
		if err == nil {
			return c.rec.index[data], nil
		}
		if c.s.Err() != nil {
			return 0, c.s.Err()
		}
	}
	return 0, fmt.Errorf("%q not committed within %v", data, limit)
}

func (c *cluster) appOf(id sim.NodeID) *testApp { return c.node(id).app.(*testApp) }

// msgName names a message's type without the package path's pointer
// mark: a Node sends *AppendEntries where a decoded message is an
// AppendEntries, and counts should not tell them apart.
func msgName(m sim.Message) string {
	return strings.TrimPrefix(fmt.Sprintf("%T", m), "*")
}

// as returns m as a T, whether it was sent as a T or as a *T (a node sends
// AppendEntries and their replies as pointers).
func as[T any](m sim.Message) (T, bool) {
	switch m := m.(type) {
	case T:
		return m, true
	case *T:
		if m != nil {
			return *m, true
		}
	}
	var zero T
	return zero, false
}
