//go:build unix

package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/flotilla-sim/flotilla/internal/sysio"
	"github.com/flotilla-sim/flotilla/sim"
)

// readConn reads c's frames until the connection fails or deliver refuses,
// delivering each decoded message; it returns why it stopped.
//
// It reads the socket directly inside one syscall.RawConn.Read, the whole
// connection long. That spares a system call per request: a net.Conn read
// loop reads until it gets EAGAIN before it waits, so a client with one
// request in flight costs two reads per request. Here, on Linux, each
// read also asks the kernel (TCP_INQ) whether anything is left — data, or
// the peer's FIN, which only a further read would report — and when
// nothing is, the goroutine waits for readability at once. That is sound
// because Go's poller is edge-triggered and, within one RawConn.Read,
// remembers an edge that came while the goroutine was busy: whatever
// arrives after the read wakes the wait. Without TCP_INQ it reads until
// EAGAIN like net.Conn.
func (s *TCPServer) readConn(c *tcpConn, deliverOne func(sim.NodeID, sim.Message) bool) (why string, err error) {
	if c.raw == nil {
		return s.readBuffered(c, deliverOne)
	}
	deliver := s.deliverAll
	if deliver == nil {
		deliver = func(from sim.NodeID, msgs []sim.Message) bool {
			return deliverEach(deliverOne, from, msgs)
		}
	}
	var msgs []sim.Message
	buf := make([]byte, 64<<10)
	start, end := 0, 0 // buf[start:end] is read and not yet consumed
	inq := false
	c.raw.Control(func(fd uintptr) { inq = enableInq(int(fd)) })
	oob := make([]byte, inqSpace)
	f := func(fd uintptr) bool {
		for {
			if end == len(buf) {
				buf, start, end = makeRoom(buf, start, end, s.max)
			}
			var (
				n    int
				more = true
				e    error
			)
			if inq {
				n, more, e = sysReadInq(int(fd), buf[end:], oob)
			} else {
				n, e = sysio.Read(int(fd), buf[end:])
			}
			switch {
			case errors.Is(e, syscall.EINTR):
				continue
			case errors.Is(e, syscall.EAGAIN):
				return false
			case e != nil:
				why, err = "read", e
				return true
			case n == 0:
				why, err = "read", io.EOF
				if end > start {
					err = fmt.Errorf("runtime: connection closed inside a frame: %w", io.ErrUnexpectedEOF)
				}
				return true
			}
			end += n
			msgs = msgs[:0]
			for end-start >= FrameHeaderSize {
				l := binary.BigEndian.Uint32(buf[start:])
				if uint64(l) > uint64(s.max) {
					why, err = "read", fmt.Errorf("runtime: %w: length prefix %d exceeds limit %d", ErrFrameTooLarge, l, s.max)
					break
				}
				if uint64(end-start-FrameHeaderSize) < uint64(l) {
					break
				}
				p := buf[start+FrameHeaderSize : start+FrameHeaderSize+int(l)]
				start += FrameHeaderSize + int(l)
				if !s.inPlace {
					p = append([]byte(nil), p...) // the codec may keep it
				}
				msg, e := s.codec.Decode(p)
				if e != nil {
					why, err = "undecodable frame", e
					break
				}
				msgs = append(msgs, msg)
			}
			// Everything this read completed goes to the machine as one
			// batch: with requests pipelined, their replies share a write.
			if len(msgs) > 0 && !deliver(c.id, msgs) {
				why = "shutdown"
			}
			clear(msgs)
			if why != "" {
				return true
			}
			select {
			case <-c.done: // dropped, maybe while delivering
				why = "dropped"
				return true
			default:
			}
			if start == end {
				start, end = 0, 0
				if len(buf) > 64<<10 {
					buf = make([]byte, 64<<10) // done with a large frame
				}
			}
			if !more {
				return false // the socket is empty: wait for more
			}
		}
	}
	if e := c.raw.Read(f); e != nil && why == "" {
		why, err = "read", e
	}
	return why, err
}

// makeRoom makes space after buf[start:end], which fills buf to the end:
// it moves the unread bytes to the front, or, if they are the start of a
// frame larger than buf, grows buf to fit that frame (its length is
// checked against max before anything is allocated).
func makeRoom(buf []byte, start, end, limit int) ([]byte, int, int) {
	need := len(buf)
	if end-start >= FrameHeaderSize {
		if l := int(binary.BigEndian.Uint32(buf[start:])); l <= limit {
			need = max(need, FrameHeaderSize+l)
		}
	}
	if start == 0 && need == len(buf) {
		need = 2 * len(buf) // cannot happen for a valid frame; be safe
	}
	nb := buf
	if need > len(buf) {
		nb = make([]byte, need)
	}
	n := copy(nb, buf[start:end])
	return nb, 0, n
}
