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
//   - with a transport that opts in (inlineDeliverer), the transport's
//     goroutine that delivers a message steps the machine itself when
//     nobody else is: it handles whatever was queued before, then its own
//     message, and closes the batch (sync, then sends) before deliver
//     returns. A request then needs no goroutine hand-off between its
//     arrival and its reply. When the host is busy the message is queued
//     like any other.

// inlineDeliverer is implemented by transports whose deliver callers
// allow the machine to be stepped on their goroutine, with Send and Flush
// called from inside deliver.
type inlineDeliverer interface {
	inlineDelivery()
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
			err = h.drain(-1, nil)
		}
		h.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// drain handles up to n items from the inbox (n < 0: until it is empty),
// then extra if it is not nil, closing a batch every MaxBatch events and
// at the end. h.mu must be held.
func (h *host) drain(n int, extra *item) error {
	batch := 0
	for {
		var it item
		got := false
		if n != 0 {
			select {
			case it = <-h.inbox:
				got = true
				n--
			default:
			}
		}
		if !got {
			if extra == nil {
				break
			}
			it, extra = *extra, nil
		}
		if err := h.handleItem(it); err != nil {
			return err
		}
		if batch++; batch == h.cfg.MaxBatch {
			if err := h.finishBatch(); err != nil {
				return err
			}
			batch = 0
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

// deliverInline is handed to an inlineDeliverer: if nobody is stepping the
// machine it handles the items queued so far and then msg on the caller's
// goroutine, batch closed (journal synced, sends flushed) before it
// returns; otherwise it queues msg.
func (h *host) deliverInline(from sim.NodeID, msg sim.Message) bool {
	if !h.mu.TryLock() {
		return h.deliver(from, msg)
	}
	defer h.mu.Unlock()
	if h.stopped || h.ctx.Err() != nil {
		return false
	}
	// Only what is queued now: items queued meanwhile have woken the loop.
	it := item{from: from, msg: msg}
	if err := h.drain(len(h.inbox), &it); err != nil {
		h.fatal, h.stopped = err, true
		select {
		case h.kick <- struct{}{}:
		default:
		}
		return false
	}
	return true
}
