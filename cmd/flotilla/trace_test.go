package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/sim/pingpong"
)

func writeTrace(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pingpong.Scenario(9, 3, sim.AllFaults(pingpong.BaseNetwork, 3), time.Second)
	cfg.Trace = f
	if res := sim.New(cfg).Run(); res.Err != nil {
		t.Fatal(res.Err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func traceRun(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := traceCmd(args, &out, &errOut)
	return code, out.String() + errOut.String()
}

func TestTraceExports(t *testing.T) {
	in := writeTrace(t)
	dir := t.TempDir()
	jsonOut, htmlOut := filepath.Join(dir, "run.json"), filepath.Join(dir, "run.html")
	// Flags before and after the file both work.
	if code, out := traceRun(in, "-o", jsonOut); code != 0 || !strings.Contains(out, "wrote "+jsonOut) {
		t.Fatalf("json: exit %d: %s", code, out)
	}
	if code, out := traceRun("-o", htmlOut, "-title", "seed 9", in); code != 0 {
		t.Fatalf("html: exit %d: %s", code, out)
	}
	b, err := os.ReadFile(jsonOut)
	if err != nil {
		t.Fatal(err)
	}
	var chrome struct {
		TraceEvents []map[string]any `json:"traceEvents"`
	}
	if err := json.Unmarshal(b, &chrome); err != nil || len(chrome.TraceEvents) < 10 {
		t.Errorf("json export: %v, %d events", err, len(chrome.TraceEvents))
	}
	page, err := os.ReadFile(htmlOut)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<title>seed 9</title>")) || !bytes.Contains(page, []byte(`"nodes":3`)) {
		t.Errorf("html export lacks its title or data (%d bytes)", len(page))
	}
	// A window keeps fewer events.
	small := filepath.Join(dir, "window.html")
	if code, out := traceRun(in, "-o", small, "-from", "200ms", "-to", "300ms"); code != 0 {
		t.Fatalf("window: exit %d: %s", code, out)
	}
	if st, _ := os.Stat(small); st == nil || st.Size() >= int64(len(page)) {
		t.Errorf("windowed page is not smaller than the whole one")
	}
}

func TestTraceErrors(t *testing.T) {
	in := writeTrace(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{},
		{in},
		{"-o", filepath.Join(dir, "x.json")},
		{in, in, "-o", filepath.Join(dir, "x.json")},
		{in, "-o", filepath.Join(dir, "x.txt")},
		{in, "-o", filepath.Join(dir, "x.json"), "-format", "svg"},
		{in, "-o", filepath.Join(dir, "x.json"), "-from", "2s", "-to", "1s"},
		{in, "-bogus"},
	} {
		if code, out := traceRun(args...); code != 2 || !strings.Contains(out, "usage: flotilla trace") {
			t.Errorf("flotilla trace %q: exit %d; want 2 with usage:\n%s", args, code, out)
		}
	}
	if code := traceMain([]string{"-h"}); code != 0 {
		t.Errorf("-h: exit %d; want 0", code)
	}

	bad := filepath.Join(dir, "bad.jsonl")
	good, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(good), "\n")
	lines[4] = "{\"step\":5,\"t\":\n"
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := traceRun(bad, "-o", filepath.Join(dir, "bad.html")); code != 1 || !strings.Contains(out, bad+": line 5:") {
		t.Errorf("malformed trace: exit %d; want 1 naming line 5:\n%s", code, out)
	}
	if code, out := traceRun(filepath.Join(dir, "missing.jsonl"), "-o", filepath.Join(dir, "m.html")); code != 1 || !strings.Contains(out, "missing.jsonl") {
		t.Errorf("missing trace: exit %d; want 1:\n%s", code, out)
	}
}
