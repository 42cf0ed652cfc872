package runtime_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	goruntime "runtime"
	"testing"

	"github.com/flotilla-sim/flotilla/runtime"
)

func TestFrameRoundTrip(t *testing.T) {
	var w bytes.Buffer
	msgs := [][]byte{{}, []byte("a"), bytes.Repeat([]byte("xy"), 3000), make([]byte, 1<<20)}
	for _, m := range msgs {
		if err := runtime.WriteFrame(&w, m); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&w)
	for i, m := range msgs {
		got, err := runtime.ReadFrame(r, nil, 0)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, m) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(m))
		}
	}
	if _, err := runtime.ReadFrame(r, nil, 0); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	full := runtime.AppendFrame(nil, []byte("hello"))
	for cut := 1; cut < len(full); cut++ {
		_, err := runtime.ReadFrame(bytes.NewReader(full[:cut]), nil, 0)
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("cut at %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
	// A huge length prefix is refused before allocating: the reader holds
	// only the header, so reading the payload would fail differently.
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := runtime.ReadFrame(bytes.NewReader(huge), nil, 0); !errors.Is(err, runtime.ErrFrameTooLarge) {
		t.Fatalf("huge prefix: %v, want ErrFrameTooLarge", err)
	}
	if _, err := runtime.ReadFrame(bytes.NewReader(full), nil, 4); !errors.Is(err, runtime.ErrFrameTooLarge) {
		t.Fatalf("5-byte frame with limit 4: %v", err)
	}
	var before, after goruntime.MemStats
	goruntime.ReadMemStats(&before)
	for range 100 {
		runtime.ReadFrame(bytes.NewReader(huge), nil, 0)
	}
	goruntime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("refusing 100 huge frames allocated %d bytes", n)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{}, 16)
	f.Add(runtime.AppendFrame(nil, []byte("hello")), 16)
	f.Add(append(runtime.AppendFrame(nil, []byte("a")), runtime.AppendFrame(nil, nil)...), 16)
	f.Add([]byte{0, 0, 0, 9, 1, 2}, 16)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1}, 1<<20)
	f.Add([]byte{0, 0}, 4)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		if max <= 0 || max > 1<<20 {
			max = 1 << 10
		}
		r := bytes.NewReader(data)
		var rebuilt []byte
		for {
			p, err := runtime.ReadFrame(r, nil, max)
			if err != nil {
				consumed := data[:len(rebuilt)]
				if !bytes.Equal(consumed, rebuilt) {
					t.Fatal("frames read do not re-encode to the input they came from")
				}
				rest := len(data) - len(rebuilt)
				switch {
				case err == io.EOF:
					if rest != 0 {
						t.Fatalf("io.EOF with %d bytes unread", rest)
					}
				case errors.Is(err, runtime.ErrFrameTooLarge):
				case errors.Is(err, io.ErrUnexpectedEOF):
					if rest == 0 {
						t.Fatal("unexpected EOF at a frame boundary")
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(p) > max {
				t.Fatalf("frame of %d bytes above limit %d", len(p), max)
			}
			rebuilt = runtime.AppendFrame(rebuilt, p)
		}
	})
}

func TestFrameWriter(t *testing.T) {
	var out bytes.Buffer
	fw := runtime.NewFrameWriter(&out, 64)
	msgs := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte("b"), 40), bytes.Repeat([]byte("c"), 20), bytes.Repeat([]byte("d"), 1000), []byte("e")}
	for _, m := range msgs {
		if err := fw.WriteFrame(m); err != nil {
			t.Fatal(err)
		}
	}
	if fw.Buffered() == 0 {
		t.Fatal("the last small frame should still be buffered")
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	var want []byte
	for _, m := range msgs {
		want = runtime.AppendFrame(want, m)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("FrameWriter wrote %q\nwant %q", out.Bytes(), want)
	}
}

func TestAppendFrameWith(t *testing.T) {
	dst := runtime.AppendFrame(nil, []byte("one"))
	dst, err := runtime.AppendFrameWith(dst, func(b []byte) ([]byte, error) { return append(b, "two!"...), nil })
	if err != nil {
		t.Fatal(err)
	}
	before := len(dst)
	dst, err = runtime.AppendFrameWith(dst, func(b []byte) ([]byte, error) { return nil, errors.New("no") })
	if err == nil || len(dst) != before {
		t.Fatalf("failed encode: err %v, len %d, want an error and len %d", err, len(dst), before)
	}
	r := bytes.NewReader(dst)
	for _, want := range []string{"one", "two!"} {
		p, err := runtime.ReadFrame(r, nil, 0)
		if err != nil || string(p) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", p, err, want)
		}
	}
	if r.Len() != 0 {
		t.Fatalf("%d bytes left over", r.Len())
	}
}
