package runtime_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/flotilla-sim/flotilla/runtime"
)

// loopback returns the two ends of a TCP connection over 127.0.0.1.
func loopback(b *testing.B) (client, server net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			acc <- nil
			return
		}
		acc <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	server = <-acc
	if server == nil {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

var benchSizes = []int{100, 4 << 10, 1 << 20}

// BenchmarkFrames sends b.N messages over loopback TCP, framed with a
// FrameWriter and read with ReadFrame; BenchmarkRawTCP sends the same
// payload bytes unframed through a bufio.Writer, read back with
// io.ReadFull. All buffers are 64 KiB.
func BenchmarkFrames(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchStream(b, n, true) })
	}
}

// BenchmarkRawTCP is the baseline for BenchmarkFrames.
func BenchmarkRawTCP(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) { benchStream(b, n, false) })
	}
}

func benchStream(b *testing.B, n int, framed bool) {
	cw, sr := loopback(b)
	msg := make([]byte, n)
	for i := range msg {
		msg[i] = byte(i)
	}
	done := make(chan error, 1)
	b.SetBytes(int64(n))
	b.ResetTimer()
	go func() {
		r := bufio.NewReaderSize(sr, 64<<10)
		buf := make([]byte, n)
		for range b.N {
			var err error
			if framed {
				buf, err = runtime.ReadFrame(r, buf, 0)
			} else {
				_, err = io.ReadFull(r, buf)
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	if framed {
		w := runtime.NewFrameWriter(cw, 64<<10)
		for range b.N {
			if err := w.WriteFrame(msg); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	} else {
		w := bufio.NewWriterSize(cw, 64<<10)
		for range b.N {
			if _, err := w.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
