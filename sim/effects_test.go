package sim

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// busy emits effects of every kind at random and notes every event whose
// effects it was handed not empty.
type busy struct {
	id, n   NodeID
	rng     *rand.Rand
	records uint64
	dirty   *[]string
}

func (m *busy) Step(ev Event, out *Effects) {
	if left := leftOver(out); left != "" {
		*m.dirty = append(*m.dirty, fmt.Sprintf("node %d, %v event: %s left over", m.id, ev.Kind, left))
	}
	if ev.Kind == EventStart {
		m.rng, m.records = ev.Boot.Rand, ev.Boot.Journal.Next()
	}
	if m.rng == nil {
		return
	}
	r := m.rng
	if ev.Kind == EventStart || ev.Kind == EventTimer {
		out.SetTimer("t", time.Duration(r.IntN(5)+1)*time.Millisecond)
		if to := NodeID(r.IntN(int(m.n))); r.IntN(2) == 0 {
			out.Send(to, hello{m.id})
		} else {
			out.SendEarly(to, hello{m.id})
		}
	}
	for range r.IntN(3) {
		out.Append([]byte("x"))
		m.records++
	}
	if r.IntN(6) == 0 {
		out.SaveSnapshot([]byte("s"), m.records)
	}
	if r.IntN(4) == 0 {
		out.Sync()
	}
	if ev.Kind != EventSynced && r.IntN(4) == 0 {
		out.NotifySynced(uint64(r.IntN(100) + 1))
	}
	if r.IntN(3) == 0 {
		out.Observe(m.id)
	}
}

// leftOver names an effect e still holds, if any.
func leftOver(e *Effects) string {
	switch {
	case len(e.Sends) > 0:
		return "sends"
	case len(e.Timers) > 0:
		return "timers"
	case len(e.Appends) > 0:
		return "appends"
	case e.Snapshot != nil:
		return "a snapshot"
	case e.SyncRequest:
		return "a sync request"
	case len(e.Observations) > 0:
		return "observations"
	case e.Notify || e.NotifyToken != 0:
		return "a notification"
	}
	return ""
}

// TestMachineGetsEmptyEffects: every event hands the machine empty effects,
// whatever the previous event asked for and whatever happened meanwhile
// (the simulator empties them as it carries them out, not with Reset).
func TestMachineGetsEmptyEffects(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(2, 4).Draw(t, "nodes")
		d := 300 * time.Millisecond
		faults := drawFaults(t, n, d, 10)
		var dirty []string
		cfg := Config{
			Seed:        rapid.Uint64().Draw(t, "seed"),
			Nodes:       n,
			New:         func(id NodeID) Machine { return &busy{id: id, n: NodeID(n), dirty: &dirty} },
			Network:     Network{Delay: time.Millisecond, Duplicate: 0.1, Loss: 0.1},
			SyncLatency: time.Duration(rapid.Int64Range(0, int64(3*time.Millisecond)).Draw(t, "syncLatency")),
			Faults:      faults,
			Duration:    d,
		}
		if res := New(cfg).Run(); res.Err != nil {
			t.Fatal(res.Err)
		}
		if len(dirty) > 0 {
			t.Fatalf("%d events were handed effects not empty; the first: %s", len(dirty), dirty[0])
		}
	})
}
