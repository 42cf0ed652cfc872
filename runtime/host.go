package runtime

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	goruntime "runtime"
	"sync"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
)

// Transport carries a node's messages over a real network.
//
// The host calls Run once, in its own goroutine, and calls Send (and Flush,
// if implemented) only while it steps the machine, never concurrently with
// itself or each other.
type Transport interface {
	// Run receives messages until ctx is done, passing each decoded message
	// to deliver. deliver blocks while the host's inbox is full
	// (back-pressure) and returns false once the host is stopping. Run
	// releases the transport's sockets before it returns. It returns nil
	// when ctx ends and an error only for a failure that must stop the node.
	Run(ctx context.Context, deliver func(from sim.NodeID, msg sim.Message) bool) error
	// Send queues msg for node to. An error means the message was dropped;
	// the host logs it and carries on (machines are written for lossy
	// networks).
	Send(to sim.NodeID, msg sim.Message) error
}

// Flusher is implemented by transports that buffer sends: the host calls
// Flush after handing over all sends of a batch.
type Flusher interface {
	Flush()
}

// Config configures Run.
type Config struct {
	// ID is the node's own id, passed to the machine in Boot.
	ID sim.NodeID
	// Machine is the machine to run. Required.
	Machine sim.Machine
	// Transport carries messages. Required.
	Transport Transport
	// Journal is the node's durable journal; nil runs the node volatile:
	// appends and snapshots are discarded and every boot is a first boot.
	Journal *Journal
	// Speed scales the machine's clock: Event.Now advances Speed times as
	// fast as real time and timers fire Speed times sooner. 0 means 1.
	Speed float64
	// Logger receives the host's logs; nil means slog.Default().
	Logger *slog.Logger
	// OnObserve, if set, is called with every observation the machine
	// emits, by the goroutine stepping the machine, in order.
	OnObserve func(any)
	// InboxSize is the capacity of the inbox; 0 means 4096.
	InboxSize int
	// MaxBatch bounds the events handled between two journal syncs; 0 means
	// 1024.
	MaxBatch int
}

// item is one inbox entry: a message or a timer firing.
type item struct {
	timer bool
	from  sim.NodeID
	msg   sim.Message
	name  string
	gen   uint64
}

type timerEntry struct {
	t   *time.Timer
	gen uint64
}

type host struct {
	// mu is held while the machine is stepped and its effects executed:
	// by the loop goroutine, or by a transport goroutine delivering inline
	// (see inbox.go). Everything below except the channels is under it.
	mu      sync.Mutex
	kick    chan struct{} // the inbox has items: wakes the loop goroutine
	stopped bool          // the loop has ended: nobody steps the machine
	fatal   error         // an inline step failed: the loop returns it

	cfg    Config
	log    *slog.Logger
	speed  float64
	start  time.Time
	ctx    context.Context
	inbox  chan item
	timers map[string]*timerEntry
	gen    uint64
	out    sim.Effects
	early  []sim.Send // sends that need not wait for the batch's sync
	sends  []sim.Send
	notify []uint64 // tokens of EventSynced due after the batch's sync
	spare  []uint64
	sync   bool
}

// Run runs cfg.Machine until ctx is done or a fatal error occurs (a journal
// write or sync fails, or the transport fails). It first starts the machine
// with the journal's recovered contents, then handles messages and timers as
// described in the package documentation. It returns nil after a clean
// shutdown through ctx; on the way out it stops all timers, waits for the
// transport to release its sockets and syncs the journal.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Machine == nil {
		return errors.New("runtime: Config.Machine is nil")
	}
	if cfg.Transport == nil {
		return errors.New("runtime: Config.Transport is nil")
	}
	if cfg.Speed < 0 {
		return fmt.Errorf("runtime: negative Speed %v", cfg.Speed)
	}
	h := &host{cfg: cfg, log: cfg.Logger, speed: cfg.Speed, timers: make(map[string]*timerEntry)}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.speed == 0 {
		h.speed = 1
	}
	if h.cfg.InboxSize <= 0 {
		h.cfg.InboxSize = 4096
	}
	if h.cfg.MaxBatch <= 0 {
		h.cfg.MaxBatch = 1024
	}
	h.inbox = make(chan item, h.cfg.InboxSize)
	h.kick = make(chan struct{}, 1)

	var seed [16]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return fmt.Errorf("runtime: seeding Boot.Rand: %w", err)
	}
	boot := &sim.Boot{
		ID:   cfg.ID,
		Rand: rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))),
	}
	if cfg.Journal != nil {
		boot.Journal = cfg.Journal.Recovered()
	}

	ctx, cancel := context.WithCancel(ctx)
	h.ctx = ctx
	h.start = time.Now()
	terr := make(chan error, 1)
	if t, ok := cfg.Transport.(inlineDeliverer); ok {
		t.deliverInline(h.deliverAll)
	}
	h.mu.Lock() // until the machine has booted
	go func() { terr <- cfg.Transport.Run(ctx, h.deliver) }()

	err := h.loop(boot, terr)
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	cancel()
	h.stopTimers()
	if e := <-terr; e != nil && err == nil { // the transport has stopped
		err = fmt.Errorf("runtime: transport: %w", e)
	}
	if cfg.Journal != nil {
		if e := cfg.Journal.Sync(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

func (h *host) now() time.Duration {
	return time.Duration(float64(time.Since(h.start)) * h.speed)
}

func (h *host) handleItem(it item) error {
	if it.timer {
		e, ok := h.timers[it.name]
		if !ok || e.gen != it.gen {
			return nil // cancelled or replaced after it fired
		}
		delete(h.timers, it.name)
		return h.handle(sim.Event{Kind: sim.EventTimer, Timer: it.name})
	}
	return h.handle(sim.Event{Kind: sim.EventMessage, From: it.from, Msg: it.msg})
}

// handle steps the machine once and executes every effect except the sync
// and the sends, which wait for the end of the batch.
func (h *host) handle(ev sim.Event) error {
	ev.Now = h.now()
	out := &h.out
	out.Reset()
	h.cfg.Machine.Step(ev, out)

	for _, o := range out.Observations {
		if h.cfg.OnObserve != nil {
			h.cfg.OnObserve(o)
		}
		h.log.Debug("observe", "node", h.cfg.ID, "value", o)
	}
	for _, op := range out.Timers {
		h.timerOp(op)
	}
	if j := h.cfg.Journal; j != nil {
		for _, rec := range out.Appends {
			if err := j.Append(rec); err != nil {
				return err
			}
		}
		if s := out.Snapshot; s != nil {
			if err := j.SaveSnapshot(s.Data, s.UpTo); err != nil {
				return err
			}
		}
	}
	if out.Syncs() {
		h.sync = true
	}
	for _, snd := range out.Sends {
		if snd.Early {
			h.early = append(h.early, snd)
		} else {
			h.sends = append(h.sends, snd)
		}
	}
	if out.Notify {
		h.notify = append(h.notify, out.NotifyToken)
	}
	return nil
}

func (h *host) timerOp(op sim.TimerOp) {
	if e, ok := h.timers[op.Name]; ok {
		e.t.Stop()
		delete(h.timers, op.Name)
	}
	if op.Cancel {
		return
	}
	h.gen++
	gen, name := h.gen, op.Name
	real := time.Duration(float64(op.After) / h.speed)
	h.timers[name] = &timerEntry{gen: gen, t: time.AfterFunc(real, func() {
		h.enqueue(item{timer: true, name: name, gen: gen})
	})}
}

func (h *host) stopTimers() {
	for _, e := range h.timers {
		e.t.Stop()
	}
	clear(h.timers)
}

// finishBatch ends a batch: it hands over the early sends, makes the
// batch's journal writes durable if any event needs it, releases the other
// sends, and then tells the machine of its completed syncs. Those
// EventSynced events form the next batch, finished the same way.
func (h *host) finishBatch() error {
	for {
		early := len(h.early) > 0
		h.release(h.early)
		h.early = h.early[:0]
		if h.sync && h.cfg.Journal != nil {
			if early {
				// The transport's writers were just woken on this
				// processor; let them put the early sends on the wire
				// before this goroutine blocks in fsync, still holding
				// the processor.
				goruntime.Gosched()
			}
			if err := h.cfg.Journal.Sync(); err != nil {
				return err
			}
		}
		h.sync = false
		h.release(h.sends)
		h.sends = h.sends[:0]
		if len(h.notify) == 0 {
			return nil
		}
		tokens := h.notify
		h.notify, h.spare = h.spare[:0], tokens
		for _, tok := range tokens {
			if err := h.handle(sim.Event{Kind: sim.EventSynced, Token: tok}); err != nil {
				return err
			}
		}
	}
}

// release hands sends to the transport and flushes it, clearing sends.
func (h *host) release(sends []sim.Send) {
	if len(sends) == 0 {
		return
	}
	for i, s := range sends {
		if err := h.cfg.Transport.Send(s.To, s.Msg); err != nil {
			h.log.Debug("send dropped", "node", h.cfg.ID, "to", s.To, "err", err)
		}
		sends[i] = sim.Send{}
	}
	if f, ok := h.cfg.Transport.(Flusher); ok {
		f.Flush()
	}
}
