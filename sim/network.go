package sim

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Network is the message fault model. The zero value delivers every message
// instantly, once, in order.
type Network struct {
	// Delay is the base one-way latency; each message adds a uniform extra
	// in [0, Jitter).
	Delay, Jitter time.Duration
	// TailProb is the chance a message takes the long tail: an extra delay
	// drawn from an exponential with mean TailDelay, capped at 10×TailDelay.
	TailProb  float64
	TailDelay time.Duration
	// Loss is the chance a message is dropped.
	Loss float64
	// Duplicate is the chance a message is delivered a second time, with
	// its own delay.
	Duplicate float64
	// Reorder is the chance a message is held back by up to
	// 10×(Delay+Jitter) extra, so that later messages overtake it.
	Reorder float64
}

// MaxDelay bounds the delay of any message under n, excluding clogged links
// and paused receivers.
func (n Network) MaxDelay() time.Duration {
	d := n.Delay + n.Jitter
	if n.TailProb > 0 {
		d += 10 * n.TailDelay
	}
	if n.Reorder > 0 {
		d += n.reorderWindow()
	}
	return d
}

func (n Network) reorderWindow() time.Duration {
	w := 10 * (n.Delay + n.Jitter)
	if w == 0 {
		w = time.Millisecond
	}
	return w
}

// Calm returns n without loss, duplication, reordering or tail: the network
// of the liveness phase, which keeps the ordinary delay.
func (n Network) Calm() Network {
	return Network{Delay: n.Delay, Jitter: n.Jitter}
}

// sample draws one message's delay from the stream that p generates and r
// wraps (see pcgFloat64).
func (n *Network) sample(p *rand.PCG, r *rand.Rand) time.Duration {
	d := n.Delay
	if n.Jitter > 0 {
		d += time.Duration(pcgInt64N(p, int64(n.Jitter)))
	}
	if n.TailProb > 0 && pcgFloat64(p) < n.TailProb {
		t := time.Duration(r.ExpFloat64() * float64(n.TailDelay))
		d += min(t, 10*n.TailDelay)
	}
	if n.Reorder > 0 && pcgFloat64(p) < n.Reorder {
		d += time.Duration(pcgInt64N(p, int64(n.reorderWindow())))
	}
	return d
}

// plainNetwork reports whether n's delay is the most common kind, which
// send draws itself: Delay plus a jitter that is not a power of two (those
// take pcgInt64N's other branch), with no tail, reordering or duplication
// (loss is drawn apart and may be anything).
func plainNetwork(n Network) bool {
	u := uint64(n.Jitter)
	return n.Jitter > 0 && u&(u-1) != 0 && !(n.TailProb > 0) && !(n.Reorder > 0) && !(n.Duplicate > 0)
}

func (n Network) String() string {
	return fmt.Sprintf("delay=%v+%v tail=%.3g×%v loss=%.3g dup=%.3g reorder=%.3g",
		n.Delay, n.Jitter, n.TailProb, n.TailDelay, n.Loss, n.Duplicate, n.Reorder)
}

// Stats counts messages. At any moment
// Sent + Duplicated == Delivered + Dropped + InFlight.
type Stats struct {
	Sent       uint64 // messages machines and Inject sent
	Duplicated uint64 // extra copies the network made
	Delivered  uint64 // copies handed to a machine, or to the outside world
	Dropped    uint64 // copies lost: loss, partitions, crashed senders or receivers
	InFlight   uint64 // copies queued, held by a clogged link or a paused node
	Events     uint64 // events handled by machines
}
