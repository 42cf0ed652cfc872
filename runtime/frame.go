package runtime

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
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

// AppendFrameWith appends a frame whose payload enc appends in place
// (no copy of the payload). If enc fails, dst comes back as it was.
func AppendFrameWith(dst []byte, enc func(dst []byte) ([]byte, error)) ([]byte, error) {
	start := len(dst)
	b, err := enc(append(dst, 0, 0, 0, 0))
	if err != nil {
		return dst, err
	}
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-FrameHeaderSize))
	return b, nil
}

// WriteFrame writes p as one frame. Into a *bufio.Writer it copies without
// allocating. Into anything else a small frame goes out in one write, and a
// large one as the header and the payload in one vectored write, without
// copying p.
func WriteFrame(w io.Writer, p []byte) error {
	if uint64(len(p)) > 1<<32-1 {
		return fmt.Errorf("runtime: %w: %d bytes", ErrFrameTooLarge, len(p))
	}
	if bw, ok := w.(*bufio.Writer); ok {
		if bw.Available() < FrameHeaderSize {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if _, err := bw.Write(binary.BigEndian.AppendUint32(bw.AvailableBuffer(), uint32(len(p)))); err != nil {
			return err
		}
		_, err := bw.Write(p)
		return err
	}
	if len(p) <= smallFrame {
		bp := smallPool.Get().(*[]byte)
		*bp = AppendFrame((*bp)[:0], p)
		_, err := w.Write(*bp)
		smallPool.Put(bp)
		return err
	}
	h := binary.BigEndian.AppendUint32(make([]byte, 0, FrameHeaderSize), uint32(len(p)))
	bufs := net.Buffers{h, p}
	_, err := bufs.WriteTo(w)
	return err
}

const smallFrame = 16 << 10

var smallPool = sync.Pool{New: func() any { b := make([]byte, 0, FrameHeaderSize+smallFrame); return &b }}

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
	n, err := readHeader(r)
	if err != nil {
		return nil, err
	}
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

// readHeader reads a frame's length prefix, without allocating from a
// *bufio.Reader.
func readHeader(r io.Reader) (uint32, error) {
	var h []byte
	if br, ok := r.(*bufio.Reader); ok {
		var err error
		h, err = br.Peek(FrameHeaderSize)
		if err != nil {
			if len(h) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, fmt.Errorf("runtime: frame header: %w", err)
			}
			return 0, err // io.EOF or a read error
		}
		n := binary.BigEndian.Uint32(h)
		br.Discard(FrameHeaderSize)
		return n, nil
	}
	h = make([]byte, FrameHeaderSize)
	if _, err := io.ReadFull(r, h); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, fmt.Errorf("runtime: frame header: %w", err)
		}
		return 0, err // io.EOF or a read error
	}
	return binary.BigEndian.Uint32(h), nil
}

// FrameWriter writes frames to a stream with its own buffer: small frames
// collect in the buffer until Flush or until it fills; a large frame goes
// out together with whatever is buffered in one vectored write (writev on a
// TCP connection), without being copied. It is not safe for concurrent use.
type FrameWriter struct {
	w    io.Writer
	buf  []byte
	size int
	bufs net.Buffers
}

// NewFrameWriter returns a FrameWriter on w with a buffer of size bytes
// (64 KiB if size <= 0).
func NewFrameWriter(w io.Writer, size int) *FrameWriter {
	if size <= 0 {
		size = 64 << 10
	}
	return &FrameWriter{w: w, buf: make([]byte, 0, size), size: size}
}

// WriteFrame writes p as one frame (see AppendFrame). The frame may stay
// buffered until Flush.
func (fw *FrameWriter) WriteFrame(p []byte) error {
	if uint64(len(p)) > 1<<32-1 {
		return fmt.Errorf("runtime: %w: %d bytes", ErrFrameTooLarge, len(p))
	}
	if len(fw.buf)+FrameHeaderSize+len(p) <= fw.size {
		fw.buf = AppendFrame(fw.buf, p)
		return nil
	}
	if len(p) < fw.size/2 {
		if err := fw.Flush(); err != nil {
			return err
		}
		fw.buf = AppendFrame(fw.buf, p)
		return nil
	}
	fw.buf = binary.BigEndian.AppendUint32(fw.buf, uint32(len(p)))
	fw.bufs = append(fw.bufs[:0], fw.buf, p)
	_, err := fw.bufs.WriteTo(fw.w)
	fw.buf = fw.buf[:0]
	return err
}

// Flush writes whatever is buffered.
func (fw *FrameWriter) Flush() error {
	if len(fw.buf) == 0 {
		return nil
	}
	_, err := fw.w.Write(fw.buf)
	fw.buf = fw.buf[:0]
	return err
}

// Buffered is the number of bytes waiting for Flush.
func (fw *FrameWriter) Buffered() int { return len(fw.buf) }
