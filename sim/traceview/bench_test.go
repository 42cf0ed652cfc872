package traceview_test

import (
	"bytes"
	"io"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
	"github.com/flotilla-sim/flotilla/sim/traceview"
)

// bigTrace is about 100k trace lines: 8 pingpong nodes under every fault.
func bigTrace(b *testing.B) ([]byte, *traceview.Trace) {
	b.Helper()
	var buf bytes.Buffer
	cfg := pingpong.Scenario(4, 8, sim.AllFaults(pingpong.BaseNetwork, 8), 450*time.Second)
	cfg.Trace = &buf
	sim.New(cfg).Run()
	tr, err := traceview.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	return buf.Bytes(), tr
}

func BenchmarkRead(b *testing.B) {
	raw, tr := bigTrace(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := traceview.Read(bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tr.Events))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkWriteChrome(b *testing.B) {
	_, tr := bigTrace(b)
	for b.Loop() {
		if err := traceview.WriteChrome(io.Discard, tr); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tr.Events))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkWriteHTML(b *testing.B) {
	_, tr := bigTrace(b)
	var out bytes.Buffer
	for b.Loop() {
		out.Reset()
		if err := traceview.WriteHTML(&out, tr, traceview.HTMLOptions{MaxMessages: 1 << 30, MaxMarks: 1 << 30}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tr.Events))*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(out.Len()), "page-bytes")
}
