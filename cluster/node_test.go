package cluster

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

func TestStatusCodec(t *testing.T) {
	for _, m := range []sim.Message{
		StatusRequest{ID: 7},
		Status{ID: 1, Node: 2, Role: raft.Leader, Term: 9, Leader: 2, Commit: 100, Applied: 99, LastIndex: 101, Snapshot: 50, Sessions: 3, Keys: 12},
		Status{ID: 2, Node: 0, Role: raft.Follower, Leader: -1},
		kvsm.Request{ID: 3, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("v"), Client: 5, Seq: 1},
		kvsm.Response{ID: 3, Status: kvsm.StatusNotLeader, Leader: 1},
	} {
		b, err := Codec{}.Encode(nil, m)
		if err != nil {
			t.Fatalf("encode %#v: %v", m, err)
		}
		back, err := Codec{}.Decode(b)
		if err != nil {
			t.Fatalf("decode %#v: %v", m, err)
		}
		if d := cmp.Diff(m, back); d != "" {
			t.Fatalf("round trip (-want +got):\n%s", d)
		}
	}
	for _, b := range [][]byte{{}, {'S'}, {'S', 1, 2}, {'T', 1}, {'T', 0x80}} {
		if _, err := (Codec{}).Decode(b); err == nil {
			t.Fatalf("Decode(%q) accepted", b)
		}
	}
}

// The node answers a status request from its Raft state and passes every
// other message to the replica.
func TestNodeMachineStatus(t *testing.T) {
	c := Default(1)
	n := c.NewNode(0, NodeConfig{})
	var changes []Status
	n.OnChange = func(s Status) { changes = append(changes, s) }
	var out sim.Effects
	n.Step(sim.Event{Kind: sim.EventStart, Boot: &sim.Boot{Rand: rand.New(rand.NewPCG(1, 2))}}, &out)
	// Fire the latest timer set, again and again, with the clock at its
	// deadline: the election timer makes a one-node cluster elect itself.
	now := time.Duration(0)
	pending := map[string]time.Duration{}
	for i := 0; i < 50 && !n.IsLeader(); i++ {
		for _, op := range out.Timers {
			if op.Cancel {
				delete(pending, op.Name)
			} else {
				pending[op.Name] = now + op.After
			}
		}
		name, at := "", time.Duration(-1)
		for nm, t := range pending {
			if at < 0 || t < at || (t == at && nm < name) {
				name, at = nm, t
			}
		}
		if name == "" {
			break
		}
		delete(pending, name)
		now = at
		out.Reset()
		n.Step(sim.Event{Kind: sim.EventTimer, Timer: name, Now: now}, &out)
	}
	if !n.IsLeader() {
		t.Fatal("a one-node cluster did not elect itself")
	}
	out.Reset()
	n.Step(sim.Event{Kind: sim.EventMessage, From: 1 << 20, Msg: StatusRequest{ID: 42}}, &out)
	if len(out.Sends) != 1 {
		t.Fatalf("sends: %+v", out.Sends)
	}
	st, ok := out.Sends[0].Msg.(Status)
	if !ok || st.ID != 42 || st.Role != raft.Leader || st.Leader != 0 || st.Term == 0 || out.Sends[0].To != 1<<20 {
		t.Fatalf("status answer: %+v", out.Sends[0])
	}
	if len(changes) == 0 || changes[len(changes)-1].Role != raft.Leader {
		t.Fatalf("OnChange calls: %+v", changes)
	}
}

func FuzzCodecDecode(f *testing.F) {
	for _, m := range []sim.Message{
		StatusRequest{ID: 7},
		Status{ID: 1, Node: 2, Role: raft.Leader, Term: 9, Leader: 2, Commit: 100, Applied: 99, LastIndex: 101},
		kvsm.Request{ID: 3, Op: kvsm.OpGet, Key: []byte("k")},
	} {
		b, _ := Codec{}.Encode(nil, m)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Codec{}.Decode(b)
		if err != nil {
			return
		}
		switch m.(type) {
		case StatusRequest, Status:
			again, err := Codec{}.Encode(nil, m)
			if err != nil {
				t.Fatalf("re-encode %#v: %v", m, err)
			}
			back, err := Codec{}.Decode(again)
			if err != nil || !cmp.Equal(m, back) {
				t.Fatalf("re-decode %#v: %#v, %v", m, back, err)
			}
		}
	})
}
