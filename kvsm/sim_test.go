package kvsm_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/simtest"
)

// writer is a test client machine: it sets its own key to 1, 2, 3, … one
// request at a time, resending the current one until it is answered, and
// observes every acknowledgement.
type writer struct {
	key  []byte
	next int
}

type acked struct {
	key   string
	value int
}

func (w *writer) send(out *sim.Effects) {
	out.Send(0, kvsm.Request{ID: uint64(w.next), Op: kvsm.OpSet, Key: w.key, Value: []byte(strconv.Itoa(w.next))})
	out.SetTimer("retry", 50*time.Millisecond)
}

func (w *writer) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		w.key = []byte(fmt.Sprint("w", ev.Boot.ID))
		w.next = 1
		w.send(out)
	case sim.EventTimer:
		w.send(out)
	case sim.EventMessage:
		r, ok := ev.Msg.(kvsm.Response)
		if !ok || r.ID != uint64(w.next) || r.Status != kvsm.StatusOK {
			return
		}
		out.Observe(acked{string(w.key), w.next})
		w.next++
		w.send(out)
	}
}

// TestSimServerKeepsAcknowledgedWrites runs the server machine in the
// simulator with lossy links and repeated crashes (some tearing the journal
// tail) and checks, after every event, that whenever the server is up each
// key holds at least the last value acknowledged for it: an acknowledged
// write survives any crash.
func TestSimServerKeepsAcknowledgedWrites(t *testing.T) {
	simtest.Sweep(t, 20, func(seed uint64) error {
		const clients = 3
		s := sim.New(sim.Config{
			Seed:  seed,
			Nodes: 1 + clients,
			New: func(id sim.NodeID) sim.Machine {
				if id == 0 {
					return kvsm.NewServer(kvsm.ServerConfig{SnapshotEvery: 7})
				}
				return &writer{}
			},
			// Constant delay keeps each link FIFO, so a resent request
			// never overtakes a newer one (this server has no sessions).
			Network:     sim.Network{Delay: time.Millisecond, Loss: 0.1},
			SyncLatency: 2 * time.Millisecond,
			Codec:       kvsm.Codec{},
			Checkers: []sim.Checker{{
				Name: "acknowledged writes survive",
				Step: func(s *sim.Sim) error {
					m, ok := s.Machine(0).(*kvsm.Server)
					if !ok || !s.Up(0) {
						return nil
					}
					last := map[string]int{}
					for _, o := range s.Observations() {
						if a, ok := o.Value.(acked); ok {
							last[a.key] = a.value
						}
					}
					for k, want := range last {
						v, _ := m.Store().Get([]byte(k))
						if got, _ := strconv.Atoi(string(v)); got < want {
							return fmt.Errorf("%s = %q but %d was acknowledged", k, v, want)
						}
					}
					return nil
				},
			}},
		})
		rng := s.Rand()
		for range 10 {
			if err := s.RunFor(time.Duration(20+rng.IntN(80)) * time.Millisecond); err != nil {
				return err
			}
			if rng.IntN(2) == 0 {
				s.CrashTorn(0)
			} else {
				s.Crash(0)
			}
			if err := s.RunFor(time.Duration(rng.IntN(20)) * time.Millisecond); err != nil {
				return err
			}
			s.Restart(0)
		}
		if err := s.RunFor(200 * time.Millisecond); err != nil {
			return err
		}
		n := 0
		for _, o := range s.Observations() {
			if _, ok := o.Value.(acked); ok {
				n++
			}
		}
		if n < 20 {
			return fmt.Errorf("only %d writes acknowledged: the run proves little", n)
		}
		return nil
	})
}
