package runtime

import (
	"fmt"

	"github.com/flotilla-sim/flotilla/sim"
)

// How events reach the machine. Messages and timer firings wait in the
// inbox, a FIFO channel, and are taken out only by whoever holds h.mu, so
// that the messages of one sender are handled in the order they were
// delivered. Two kinds of goroutine step the machine:
//
//   - the loop goroutine, woken through h.kick whenever an item has been
//     queued, drains the inbox in batches;
//   - with a transport that opts in (inlineDeliverer: TCPServer, TCPPeers,
//     and Combine passes it on to those of its parts), the transport's
//     goroutine that has messages to deliver steps the machine itself when
//     nobody else is: it handles whatever was queued before, then its own
//     messages, and closes the batch (sync, then sends) before it returns.
//     A request then needs no goroutine hand-off between its arrival and
//     its reply. When the host is busy the messages are queued like any
//     other.

// inlineDeliverer is implemented by transports that can step the machine
// on their own goroutines: before Run, the host hands them deliverAll
// (see host.deliverAll), which they call with no lock held, and which may
// call their Send and Flush before it returns. They need not use it.
type inlineDeliverer interface {
	deliverInline(deliverAll func(from sim.NodeID, msgs []sim.Message) bool)
}

// loop boots the machine (h.mu is held on entry and released after boot)
// and then runs it until ctx ends, an effect fails or the transport stops;
// in the last case it puts the transport's result back into terr for Run
// to collect.
func (h *host) loop(boot *sim.Boot, terr chan error) error {
	err := h.handle(sim.Event{Kind: sim.EventStart, Boot: boot})
	if err == nil {
		err = h.finishBatch()
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	for {
		select {
		case <-h.ctx.Done():
			return nil
		case e := <-terr:
			terr <- e // let Run collect it
			if e != nil {
				return fmt.Errorf("runtime: transport: %w", e)
			}
			return nil
		case <-h.kick:
		}
		h.mu.Lock()
		err := h.fatal
		if err == nil {
			err = h.drain(-1, 0, nil)
		}
		h.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// drain handles up to n items from the inbox (n < 0: until it is empty),
// then msgs from from, closing a batch every MaxBatch events and at the
// end. h.mu must be held.
func (h *host) drain(n int, from sim.NodeID, msgs []sim.Message) error {
	batch := 0
	step := func(it item) error {
		if err := h.handleItem(it); err != nil {
			return err
		}
		if batch++; batch == h.cfg.MaxBatch {
			batch = 0
			return h.finishBatch()
		}
		return nil
	}
	for n != 0 {
		var it item
		select {
		case it = <-h.inbox:
		default:
			n = 0 // empty
			continue
		}
		n--
		if err := step(it); err != nil {
			return err
		}
	}
	for _, m := range msgs {
		if err := step(item{from: from, msg: m}); err != nil {
			return err
		}
	}
	if batch > 0 {
		return h.finishBatch()
	}
	return nil
}

// enqueue queues it for the loop goroutine, blocking while the inbox is
// full (back-pressure). It returns false once the host is stopping.
func (h *host) enqueue(it item) bool {
	select {
	case h.inbox <- it:
	case <-h.ctx.Done():
		return false
	}
	select {
	case h.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
	return true
}

// deliver is handed to transports: it queues the message.
func (h *host) deliver(from sim.NodeID, msg sim.Message) bool {
	return h.enqueue(item{from: from, msg: msg})
}

// deliverAll is handed to an inlineDeliverer: it delivers msgs, all from
// one sender and in order. If nobody is stepping the machine it handles
// the items queued so far and then msgs on the caller's goroutine, as one
// batch closed (journal synced, sends flushed) before it returns;
// otherwise it queues them. With no msgs it waits for whoever is stepping
// the machine and then handles everything queued so far: when it returns,
// every message the caller delivered before has been handled and its
// replies handed to the transport. It returns false once the host is
// stopping.
func (h *host) deliverAll(from sim.NodeID, msgs []sim.Message) bool {
	if len(msgs) == 0 {
		h.mu.Lock()
	} else if !h.mu.TryLock() {
		for _, m := range msgs {
			if !h.deliver(from, m) {
				return false
			}
		}
		return true
	}
	defer h.mu.Unlock()
	if h.stopped || h.ctx.Err() != nil {
		return false
	}
	// Only what is queued now: items queued meanwhile have woken the loop.
	if err := h.drain(len(h.inbox), from, msgs); err != nil {
		h.fatal, h.stopped = err, true
		select {
		case h.kick <- struct{}{}:
		default:
		}
		return false
	}
	return true
}
