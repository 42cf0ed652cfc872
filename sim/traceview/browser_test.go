package traceview_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/sim/traceview"
)

// chromiumPath is Debian's chromium; FLOTILLA_CHROMIUM overrides it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path := "/usr/bin/chromium"
	if p := os.Getenv("FLOTILLA_CHROMIUM"); p != "" {
		path = p
	}
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("!!! SKIPPING the headless-browser test of the HTML trace view: %s not found. "+
				"Install it with `apt-get install chromium` (CI does, and there this test never skips).", path)
		}
		t.Fatalf("%s not found (CI must install chromium): %v", path, err)
	}
	return path
}

// headless runs chromium on a local file with the given extra flags and
// returns its stdout and stderr.
func headless(t *testing.T, page string, flags ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-breakpad",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	args = append(args, flags...)
	args = append(args, "file://"+page)
	cmd := exec.CommandContext(ctx, chromiumPath(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// consoleErrors picks the script errors out of chromium's log.
func consoleErrors(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "Uncaught") || strings.Contains(line, "CONSOLE") && strings.Contains(line, "rror") {
			out = append(out, line)
		}
	}
	return out
}

func writePage(t *testing.T, page []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHTMLRendersInChromium(t *testing.T) {
	raw := pingpongTrace(t, 5, 3*time.Second)
	tr, err := traceview.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	arrows, dropped, crashes := count(tr, "recv", "drop"), count(tr, "drop"), count(tr, "crash")
	states := 0
	for _, e := range tr.Events {
		if e.State != "" {
			states++
		}
	}
	if dropped == 0 || crashes == 0 || states == 0 || tr.Nodes != 4 {
		t.Fatalf("want a trace with drops, crashes and states on 4 nodes; got %d drops, %d crashes, %d states, %d nodes", dropped, crashes, states, tr.Nodes)
	}
	var page bytes.Buffer
	if err := traceview.WriteHTML(&page, tr, traceview.HTMLOptions{Title: "pingpong seed 5"}); err != nil {
		t.Fatal(err)
	}
	path := writePage(t, page.Bytes())

	// The page's self test hovers over an arrow and zooms in and out.
	dom, log := headless(t, path+"#selftest", "--dump-dom", "--virtual-time-budget=5000")
	if errs := consoleErrors(log); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	if tip := regexp.MustCompile(`data-tip="([^"]*)"`).FindStringSubmatch(dom); tip == nil ||
		!regexp.MustCompile(`^#\d+ \S+.*\n?node \d → node \d, sent`).MatchString(strings.ReplaceAll(tip[1], "&#10;", "\n")) {
		t.Errorf("hovering over an arrow showed %q", tip)
	}
	t.Logf("tooltip: %q", regexp.MustCompile(`data-tip="([^"]*)"`).FindString(dom))
	if !strings.Contains(dom, `data-zoom="ok"`) {
		t.Errorf("zooming lost arrows: %s", regexp.MustCompile(`data-zoom="[^"]*"`).FindString(dom))
	}
	if strings.Contains(dom, `id="js-error"`) {
		t.Errorf("the page caught a script error: %s", regexp.MustCompile(`<div id="js-error"[^<]*`).FindString(dom))
	}
	if !strings.Contains(dom, `data-status="rendered"`) {
		t.Fatalf("the page did not finish rendering; body: %.300s", regexp.MustCompile(`<body[^>]*>`).FindString(dom))
	}
	for _, c := range []struct {
		what      string
		re        string
		got, want int
	}{
		{what: "node columns", re: `<g class="node-col"`, want: tr.Nodes},
		{what: "message arrows", re: `<line class="msg( dropped)?"`, want: arrows},
		{what: "lost-message arrows", re: `<line class="msg dropped"`, want: dropped},
		{what: "crash marks", re: `<path class="mark crash"`, want: crashes},
		{what: "down periods", re: `<rect class="span down"`, want: crashes},
		{what: "state spans", re: `<rect class="span state"`, want: states},
	} {
		if got := len(regexp.MustCompile(c.re).FindAllString(dom, -1)); got != c.want {
			t.Errorf("rendered %d %s; want %d", got, c.what, c.want)
		}
	}

	shot := filepath.Join(t.TempDir(), "trace.png")
	if dir := os.Getenv("FLOTILLA_SCREENSHOT_DIR"); dir != "" {
		shot = filepath.Join(dir, "trace-view.png")
	}
	_, log = headless(t, path, "--screenshot="+shot, "--window-size=1400,1000", "--hide-scrollbars")
	if errs := consoleErrors(log); len(errs) > 0 {
		t.Errorf("console errors while taking the screenshot:\n%s", strings.Join(errs, "\n"))
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1400 || b.Dy() != 1000 {
		t.Errorf("screenshot is %v; want 1400x1000", b)
	}
	// Something was drawn: the page is not one flat colour.
	colours := map[uint32]bool{}
	for y := 0; y < img.Bounds().Dy(); y += 7 {
		for x := 0; x < img.Bounds().Dx(); x += 7 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 8 {
		t.Errorf("screenshot has only %d colours; the diagram did not draw", len(colours))
	}
	t.Logf("screenshot: %s (%d columns, %d arrows, %d lost)", shot, tr.Nodes, arrows, dropped)
}

// The error detection above must itself work: a page whose data is broken
// throws, and the test's two detectors both see it.
func TestHTMLScriptErrorsAreDetected(t *testing.T) {
	tr, err := traceview.Read(bytes.NewReader(flipperTrace(t)))
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := traceview.WriteHTML(&page, tr, traceview.HTMLOptions{}); err != nil {
		t.Fatal(err)
	}
	broken := bytes.Replace(page.Bytes(), []byte(`"strings":`), []byte(`"strings_gone":`), 1)
	dom, log := headless(t, writePage(t, broken), "--dump-dom", "--virtual-time-budget=5000")
	if !strings.Contains(dom, `id="js-error"`) {
		t.Error("a script error left no error marker in the DOM")
	}
	if len(consoleErrors(log)) == 0 {
		t.Error("a script error left nothing in the console log")
	}
}
