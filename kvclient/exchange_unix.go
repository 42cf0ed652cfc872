//go:build unix

package kvclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/flotilla-sim/flotilla/internal/sysio"
	"github.com/flotilla-sim/flotilla/runtime"
)

const rawExchange = true

// exchangeRaw is exchange on the raw socket, inside one RawConn.Read: it
// writes the request, then waits for the socket to become readable before
// its first read. A read straight after the write would nearly always
// find nothing (EAGAIN) and cost a system call per request; the poller is
// edge-triggered and, within one RawConn.Read (begun before the write),
// remembers an edge that came before the wait, so whatever the server
// sends after the request is never missed. Once reading, it reads until
// the response is complete or EAGAIN.
func (c *serialConn) exchangeRaw(b []byte) ([]byte, error) {
	if len(c.rbuf) < 4<<10 {
		c.rbuf = make([]byte, 4<<10)
	}
	var (
		sent bool
		err  error
		n    int // payload length, once known
	)
	rerr := c.raw.Read(func(fd uintptr) bool {
		if !sent {
			sent = true
			w, e := sysio.Write(int(fd), b)
			for errors.Is(e, syscall.EINTR) {
				w, e = sysio.Write(int(fd), b)
			}
			if e != nil && !errors.Is(e, syscall.EAGAIN) {
				err = e
				return true
			}
			if w < len(b) { // the socket buffer is full: wait for room
				if _, err = c.conn.Write(b[w:]); err != nil {
					return true
				}
			}
			return false // wait for the response
		}
		for {
			m, e := sysio.Read(int(fd), c.rbuf[c.rlen:])
			switch {
			case errors.Is(e, syscall.EINTR):
				continue
			case errors.Is(e, syscall.EAGAIN):
				return false
			case e != nil:
				err = e
				return true
			case m == 0:
				err = io.ErrUnexpectedEOF
				return true
			}
			c.rlen += m
			if c.rlen >= runtime.FrameHeaderSize && n == 0 {
				l := binary.BigEndian.Uint32(c.rbuf)
				if l > runtime.DefaultMaxFrame {
					err = fmt.Errorf("kvclient: %w: response of %d bytes", runtime.ErrFrameTooLarge, l)
					return true
				}
				n = int(l)
				if total := runtime.FrameHeaderSize + n; total > len(c.rbuf) {
					nb := make([]byte, total)
					copy(nb, c.rbuf[:c.rlen])
					c.rbuf = nb
				}
			}
			if c.rlen >= runtime.FrameHeaderSize && c.rlen >= runtime.FrameHeaderSize+n {
				return true
			}
			// Incomplete: read on until EAGAIN. (A short read does not
			// mean that nothing is left: an end of stream that came with
			// the data is reported only by the next read.)
		}
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	end := runtime.FrameHeaderSize + n
	if c.rlen != end {
		// With one request in flight the server has no business sending
		// more than the response.
		return nil, errors.New("kvclient: unsolicited data from server")
	}
	c.rlen = 0
	p := c.rbuf[runtime.FrameHeaderSize:end]
	if len(c.rbuf) > 64<<10 {
		c.rbuf = nil // done with a large response; p stays valid
	}
	return p, nil
}
