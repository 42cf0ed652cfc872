package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// DefaultMaxFrame is the largest frame ReadFrame accepts unless told
// otherwise: 16 MiB, room for a 10 MB message and headroom.
const DefaultMaxFrame = 16 << 20

// FrameHeaderSize is the size of a frame's length prefix.
const FrameHeaderSize = 4

// ErrFrameTooLarge is returned (wrapped) by ReadFrame for a length prefix
// above the limit, before anything is allocated. The stream is then out of
// step and the caller should drop the connection.
var ErrFrameTooLarge = errors.New("frame too large")

// Frames carry messages over byte streams (TCP). The wire format of one
// frame is
//
//	length uint32, big-endian | payload (length bytes)
//
// A message is an arbitrary byte slice, possibly empty, and arrives whole.

// AppendFrame appends the frame for p to dst, for callers that batch several
// frames into one write.
func AppendFrame(dst, p []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(p)))
	return append(dst, p...)
}

// WriteFrame writes p as one frame. Small payloads go out in one write;
// large ones as the header and the payload in one vectored write, without
// copying p.
func WriteFrame(w io.Writer, p []byte) error {
	if uint64(len(p)) > 1<<32-1 {
		return fmt.Errorf("runtime: %w: %d bytes", ErrFrameTooLarge, len(p))
	}
	if len(p) <= 4096 {
		var small [FrameHeaderSize + 4096]byte
		_, err := w.Write(AppendFrame(small[:0], p))
		return err
	}
	var h [FrameHeaderSize]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(p)))
	bufs := net.Buffers{h[:], p}
	_, err := bufs.WriteTo(w)
	return err
}

// ReadFrame reads one frame from r and returns its payload, stored in buf
// if it fits (pass nil to get a fresh slice). A frame longer than max
// (DefaultMaxFrame if max <= 0) is refused with ErrFrameTooLarge before the
// payload is read or allocated. At a clean end of stream, before any byte of
// a frame, it returns io.EOF; a stream that ends inside a frame gives an
// error wrapping io.ErrUnexpectedEOF.
//
// Wrap r in a bufio.Reader when frames are small: ReadFrame makes two reads
// per frame.
func ReadFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	var h [FrameHeaderSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("runtime: frame header: %w", err)
		}
		return nil, err // io.EOF or a read error
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("runtime: %w: length prefix %d exceeds limit %d", ErrFrameTooLarge, n, max)
	}
	if cap(buf) >= int(n) {
		buf = buf[:n]
	} else {
		buf = make([]byte, n)
	}
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("runtime: frame of %d bytes: %w", n, err)
	}
	return buf, nil
}
