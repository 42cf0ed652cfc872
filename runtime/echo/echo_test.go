package echo_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/runtime/echo"
)

func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- echo.Serve(ctx, ln, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestEchoRoundTripsEverySize(t *testing.T) {
	addr := serve(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := echo.Check(ctx, addr, echo.DefaultSizes)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(echo.DefaultSizes) {
		t.Fatalf("%d round trips, want %d", len(res), len(echo.DefaultSizes))
	}
	// Zero-length messages are messages too.
	if _, err := echo.Check(ctx, addr, []int{0, 0, 5}); err != nil {
		t.Fatal(err)
	}
}

func TestEchoSurvivesBadClient(t *testing.T) {
	addr := serve(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// An oversized length prefix: the server drops this connection.
	c.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := runtime.ReadFrame(c, nil, 0); err != io.EOF {
		t.Fatalf("bad client read %v, want io.EOF (connection closed)", err)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := echo.Check(ctx, addr, []int{1, 1000}); err != nil {
		t.Fatalf("server stopped serving after a bad client: %v", err)
	}
}
