package runtime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// strCodec carries string messages as raw bytes; it rejects bytes starting
// with '!' so tests can send undecodable datagrams.
type strCodec struct{}

func (strCodec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	s, ok := m.(string)
	if !ok {
		return nil, fmt.Errorf("not a string: %T", m)
	}
	return append(dst, s...), nil
}

func (strCodec) Decode(b []byte) (sim.Message, error) {
	if len(b) > 0 && b[0] == '!' {
		return nil, errors.New("bad datagram")
	}
	return string(b), nil
}

// pinger sends "ping i" to its peer for i < n, one at a time, and observes
// each answer; ponger answers every "ping i" with "pong i", journaling it.
type pinger struct {
	peer sim.NodeID
	n, i int
}

func (p *pinger) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		out.Send(p.peer, "ping 0")
		out.SetTimer("retry", 200*time.Millisecond)
	case sim.EventTimer:
		out.Send(p.peer, fmt.Sprintf("ping %d", p.i))
		out.SetTimer("retry", 200*time.Millisecond)
	case sim.EventMessage:
		if ev.Msg != fmt.Sprintf("pong %d", p.i) {
			return
		}
		out.Observe(ev.Msg)
		p.i++
		if p.i == p.n {
			out.CancelTimer("retry")
			return
		}
		out.Send(p.peer, fmt.Sprintf("ping %d", p.i))
		out.SetTimer("retry", 200*time.Millisecond)
	}
}

type ponger struct{ boot sim.Journal }

func (p *ponger) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		p.boot = ev.Boot.Journal
	case sim.EventMessage:
		s, _ := ev.Msg.(string)
		if rest, ok := strings.CutPrefix(s, "ping "); ok {
			out.Append([]byte(rest))
			out.Send(ev.From, "pong "+rest)
		} else {
			out.Observe("external " + s)
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestRunPingPongOverUDP(t *testing.T) {
	ua, err := runtime.ListenUDP(runtime.UDPConfig{Listen: "127.0.0.1:0", Codec: strCodec{}})
	if err != nil {
		t.Fatal(err)
	}
	ub, err := runtime.ListenUDP(runtime.UDPConfig{
		Listen: "127.0.0.1:0", Codec: strCodec{},
		Peers: map[sim.NodeID]string{0: ua.LocalAddr().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	// ua learns ub's address only now that ub is bound.
	ua.Close()
	ua, err = runtime.ListenUDP(runtime.UDPConfig{
		Listen: ua.LocalAddr().String(), Codec: strCodec{},
		Peers: map[sim.NodeID]string{1: ub.LocalAddr().String()},
	})
	if err != nil {
		t.Fatal(err)
	}
	j, err := runtime.OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()

	const n = 50
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan any, n+1)
	extern := make(chan any, 1)
	errs := make(chan error, 2)
	go func() {
		errs <- runtime.Run(ctx, runtime.Config{ID: 1, Machine: &ponger{}, Transport: ub, Journal: j, Logger: quiet(),
			OnObserve: func(o any) { extern <- o }})
	}()
	go func() {
		errs <- runtime.Run(ctx, runtime.Config{ID: 0, Machine: &pinger{peer: 1, n: n}, Transport: ua, Logger: quiet(),
			OnObserve: func(o any) { got <- o }})
	}()
	for i := range n {
		select {
		case o := <-got:
			if want := fmt.Sprintf("pong %d", i); o != want {
				t.Fatalf("observation %d = %v, want %v", i, o, want)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d pongs before timeout", i, n)
		}
	}

	// Undecodable datagrams are dropped; a datagram from an unknown address
	// arrives from sim.External.
	stranger, err := runtime.ListenUDP(runtime.UDPConfig{Listen: "127.0.0.1:0", Codec: strCodec{},
		Peers: map[sim.NodeID]string{1: ub.LocalAddr().String()}})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	// strCodec encodes "!garbage" but the receiver's Decode rejects it, so
	// the first thing the ponger observes must be the hello.
	if err := stranger.Send(1, "!garbage"); err != nil {
		t.Fatal(err)
	}
	if err := stranger.Send(1, "hello"); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-extern:
		if o != "external hello" {
			t.Fatalf("got %v, want the stranger's hello", o)
		}
	case <-ctx.Done():
		t.Fatal("stranger's datagram never arrived")
	}

	cancel()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	// Every ping that was answered was journaled first.
	if next := j.Next(); next < n {
		t.Fatalf("journal holds %d records, want at least %d", next, n)
	}
}

// clock records the Now of each event and sets one timer.
type clock struct {
	after time.Duration
	nows  chan time.Duration
}

func (c *clock) Step(ev sim.Event, out *sim.Effects) {
	c.nows <- ev.Now
	if ev.Kind == sim.EventStart {
		out.SetTimer("t", c.after)
		out.SetTimer("cancelled", c.after/2)
		out.CancelTimer("cancelled")
	}
}

// nopTransport receives nothing and drops every send.
type nopTransport struct{}

func (nopTransport) Run(ctx context.Context, _ func(sim.NodeID, sim.Message) bool) error {
	<-ctx.Done()
	return nil
}
func (nopTransport) Send(sim.NodeID, sim.Message) error { return errors.New("nowhere to send") }

func TestSpeedScalesTimersAndClock(t *testing.T) {
	c := &clock{after: 30 * time.Second, nows: make(chan time.Duration, 4)}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- runtime.Run(ctx, runtime.Config{Machine: c, Transport: nopTransport{}, Speed: 100, Logger: quiet()})
	}()
	<-c.nows // start
	var fired time.Duration
	select {
	case fired = <-c.nows:
	case <-ctx.Done():
		t.Fatal("timer never fired")
	}
	// The cancelled timer was due first; it would have shown up here.
	real := time.Since(start)
	if fired < 30*time.Second {
		t.Fatalf("timer fired at machine time %v, before the 30s it was set for", fired)
	}
	if real > 5*time.Second {
		t.Fatalf("30s timer at speed 100 took %v of real time", real)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// checkingTransport delivers n messages from node 7 and, on every send,
// checks that the journal file already holds the record the machine
// appended for that message: the durability rule.
type checkingTransport struct {
	n    int
	wal  string
	sent chan int64
}

func (c *checkingTransport) Run(ctx context.Context, deliver func(sim.NodeID, sim.Message) bool) error {
	for i := range c.n {
		if !deliver(7, fmt.Sprint(i)) {
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

func (c *checkingTransport) Send(to sim.NodeID, msg sim.Message) error {
	end, err := walEnd(c.wal)
	if err != nil {
		return err
	}
	c.sent <- end
	return nil
}

// walEnd is the size of the wal file at path: where its records end.
func walEnd(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// journaler appends a 10-byte record per message and answers it.
type journaler struct{}

func (journaler) Step(ev sim.Event, out *sim.Effects) {
	if ev.Kind == sim.EventMessage {
		out.Append([]byte(fmt.Sprintf("%10s", ev.Msg)))
		out.Send(ev.From, ev.Msg)
	}
}

func TestJournalWrittenBeforeSends(t *testing.T) {
	dir := t.TempDir()
	j, err := runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	tr := &checkingTransport{n: n, wal: filepath.Join(dir, runtime.WALFile), sent: make(chan int64, n)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runtime.Run(ctx, runtime.Config{Machine: journaler{}, Transport: tr, Journal: j, Logger: quiet()})
	}()
	for i := range n {
		select {
		case size := <-tr.sent:
			// header 16 bytes, each record 8 + 10 bytes
			if min := int64(16 + (i+1)*18); size < min {
				t.Fatalf("reply %d left with the journal at %d bytes, want at least %d", i, size, min)
			}
		case <-ctx.Done():
			t.Fatalf("only %d replies", i)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	j.Close()
	if got := len(recovered(t, dir).Records); got != n {
		t.Fatalf("journal holds %d records, want %d", got, n)
	}
}

// earlyJournaler appends a 10-byte record per message, sends "early N"
// without waiting for it, and sends "synced N" once told it is durable.
type earlyJournaler struct{ from sim.NodeID }

func (m *earlyJournaler) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventMessage:
		m.from = ev.From
		out.Append([]byte(fmt.Sprintf("%10s", ev.Msg)))
		out.SendEarly(ev.From, fmt.Sprint("early ", ev.Msg))
		var i uint64
		fmt.Sscan(ev.Msg.(string), &i)
		out.NotifySynced(i)
	case sim.EventSynced:
		out.Send(m.from, fmt.Sprint("synced ", ev.Token))
	}
}

// recordingTransport delivers n messages from node 7 and records each
// send with the journal file's size at that moment.
type recordingTransport struct {
	checkingTransport
	sends chan string
}

func (r *recordingTransport) Send(to sim.NodeID, msg sim.Message) error {
	end, err := walEnd(r.wal)
	if err != nil {
		return err
	}
	r.sends <- msg.(string)
	r.sent <- end
	return nil
}

func TestEarlySendsLeaveBeforeTheWriteAndSyncedAfter(t *testing.T) {
	dir := t.TempDir()
	j, err := runtime.OpenJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	tr := &recordingTransport{checkingTransport{n: n, wal: filepath.Join(dir, runtime.WALFile), sent: make(chan int64, 2*n)}, make(chan string, 2*n)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- runtime.Run(ctx, runtime.Config{Machine: &earlyJournaler{}, Transport: tr, Journal: j, Logger: quiet()})
	}()
	early, synced := 0, 0
	for early < n || synced < n {
		var msg string
		var size int64
		select {
		case msg = <-tr.sends:
			size = <-tr.sent
		case <-ctx.Done():
			t.Fatalf("only %d early and %d synced sends", early, synced)
		}
		// header 16 bytes, each record 8 + 10 bytes
		switch msg {
		case fmt.Sprint("early ", early):
			if size >= int64(16+(early+1)*18) {
				t.Fatalf("%q left after its record was written (journal at %d bytes)", msg, size)
			}
			early++
		case fmt.Sprint("synced ", synced):
			if synced >= early {
				t.Fatalf("%q before %q", msg, fmt.Sprint("early ", synced))
			}
			if size < int64(16+(synced+1)*18) {
				t.Fatalf("%q left with the journal at %d bytes, before its record", msg, size)
			}
			synced++
		default:
			t.Fatalf("send %q out of order (next early %d, next synced %d)", msg, early, synced)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
