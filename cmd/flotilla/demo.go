package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

const demoUsage = `usage: flotilla demo traffic [-speed F] [-bin DIR] [-ew-port N] [-ns-port N] [-button-port N]

Starts the East-West and North-South lights, the traffic controller and the
button as four real processes talking UDP on loopback, and shows them in
this terminal: the controller's log scrolls above a status line with both
lights. Press Return to press the button; Ctrl-C stops all four.

The binaries light, button and traffic are taken from -bin, else from the
directory of this executable, else built with the go command (which works
inside the flotilla module, e.g. with "go run ./cmd/flotilla demo traffic").
`

// demoMain runs "flotilla demo" and returns the process exit code.
func demoMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return demoRun(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// demoEvent is something the display shows: a light's new colour or a log
// line of the controller.
type demoEvent struct {
	light string // "EW" or "NS" for a colour
	c     trafficfsm.Colour
	line  string // a log line otherwise
}

// child is one process of the demo.
type child struct {
	name string
	cmd  *exec.Cmd
	eof  bool          // stops at the end of its input rather than on SIGINT
	err  error         // Wait's result, set before done is closed
	done chan struct{} // closed once the process has exited
}

func demoRun(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "traffic" {
		fmt.Fprint(stderr, demoUsage)
		return 2
	}
	fs := flag.NewFlagSet("flotilla demo traffic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, demoUsage) }
	speed := fs.Float64("speed", 1, "run the controller's clock `F` times faster")
	binDir := fs.String("bin", "", "directory holding the light, button and traffic binaries")
	ewPort := fs.Int("ew-port", 10000, "UDP port of the East-West light")
	nsPort := fs.Int("ns-port", 11000, "UDP port of the North-South light")
	buttonPort := fs.Int("button-port", 12000, "UDP port the controller receives presses on")
	if code, ok := parseNoArgs(fs, args[1:], stderr, "flotilla demo", demoUsage); !ok {
		return code
	}
	if !(*speed > 0) {
		fmt.Fprintf(stderr, "flotilla demo: -speed must be positive\n")
		return 2
	}
	for _, p := range []int{*ewPort, *nsPort, *buttonPort} {
		if p <= 0 || p > 65535 {
			fmt.Fprintf(stderr, "flotilla demo: bad port %d\n", p)
			return 2
		}
	}
	// The children and this process share stderr; serialise writes.
	stderr = &syncWriter{w: stderr}
	bins, cleanup, err := findBinaries(ctx, *binDir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "flotilla demo: %v\n", err)
		return 1
	}
	defer cleanup()

	events := make(chan demoEvent, 64)
	stopped := make(chan struct{}) // closed when the display stops reading events
	send := func(ev demoEvent) {
		select {
		case events <- ev:
		case <-stopped:
		}
	}
	var children []*child
	start := func(name string, cmd *exec.Cmd) error {
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s: %w", name, err)
		}
		c := &child{name: name, cmd: cmd, done: make(chan struct{})}
		go func() { c.err = cmd.Wait(); close(c.done) }()
		children = append(children, c)
		return nil
	}
	failed := false
	var buttonIn io.Closer // the button's standard input; closing it stops the button
	startAll := func() error {
		for _, l := range []struct {
			label string
			port  int
		}{{"EW", *ewPort}, {"NS", *nsPort}} {
			cmd := exec.Command(bins["light"], l.label, strconv.Itoa(l.port))
			cmd.Stdout = &lightWriter{label: l.label, send: send}
			cmd.Stderr = stderr
			if err := start("light "+l.label, cmd); err != nil {
				return err
			}
		}
		tcmd := exec.Command(bins["traffic"],
			"-ew", "localhost:"+strconv.Itoa(*ewPort), "-ns", "localhost:"+strconv.Itoa(*nsPort),
			"-button", strconv.Itoa(*buttonPort), "-speed", strconv.FormatFloat(*speed, 'g', -1, 64))
		tcmd.Stderr = &lineWriter{send: send}
		if err := start("traffic", tcmd); err != nil {
			return err
		}
		bcmd := exec.Command(bins["button"], "localhost", strconv.Itoa(*buttonPort))
		presses, err := bcmd.StdinPipe()
		if err != nil {
			return err
		}
		bcmd.Stderr = stderr
		if err := start("button", bcmd); err != nil {
			return err
		}
		children[len(children)-1].eof = true
		buttonIn = presses
		go func() {
			sc := bufio.NewScanner(stdin)
			for sc.Scan() {
				if _, err := io.WriteString(presses, "\n"); err != nil {
					return
				}
				send(demoEvent{line: "button pressed"})
			}
		}()
		return nil
	}
	if err := startAll(); err != nil {
		fmt.Fprintf(stderr, "flotilla demo: %v\n", err)
		failed = true
	}

	// Show everything until Ctrl-C or until a process gives up; then stop
	// the processes, still showing what they print on the way out.
	d := &display{w: stdout, colours: map[string]trafficfsm.Colour{"EW": trafficfsm.Red, "NS": trafficfsm.Red}}
	exited := make(chan *child, len(children))
	for _, c := range children {
		go func() { <-c.done; exited <- c }()
	}
	var stopDone chan bool
	stop := func() {
		if stopDone != nil {
			return
		}
		stopDone = make(chan bool, 1)
		if buttonIn != nil {
			buttonIn.Close() // the button exits at the end of its input
		}
		go func() { stopDone <- stopAll(children, stderr) }()
	}
	if failed {
		stop()
	} else {
		d.status()
	}
	ctxDone := ctx.Done()
loop:
	for {
		select {
		case <-ctxDone:
			ctxDone = nil
			stop()
		case ev := <-events:
			if ev.light != "" {
				if d.colours[ev.light] != ev.c {
					d.colours[ev.light] = ev.c
					d.status()
				}
			} else {
				d.log(ev.line)
			}
		case c := <-exited:
			if stopDone == nil {
				d.log(fmt.Sprintf("%s exited early: %v", c.name, exitText(c.err)))
				failed = true
				stop()
			}
		case clean := <-stopDone:
			if !clean {
				failed = true
			}
			break loop
		}
	}
	close(stopped)
	d.finish()
	if failed {
		return 1
	}
	return 0
}

// exitText describes a process's end.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// stopAll asks every running child to stop (SIGINT, except for the button,
// whose input the caller has closed) and waits for it, killing those that do not stop within
// a few seconds. It reports whether all stopped cleanly.
func stopAll(children []*child, stderr io.Writer) bool {
	clean := true
	for _, c := range children {
		select {
		case <-c.done:
			continue
		default:
		}
		if c.eof {
			continue
		}
		if err := c.cmd.Process.Signal(os.Interrupt); err != nil {
			c.cmd.Process.Kill()
		}
	}
	for _, c := range children {
		select {
		case <-c.done:
			if c.err != nil && !isInterrupt(c.err) {
				fmt.Fprintf(stderr, "flotilla demo: %s: %v\n", c.name, c.err)
				clean = false
			}
		case <-time.After(5 * time.Second):
			fmt.Fprintf(stderr, "flotilla demo: %s did not stop; killing it\n", c.name)
			c.cmd.Process.Kill()
			<-c.done
			clean = false
		}
	}
	return clean
}

// isInterrupt reports whether a child ended because of SIGINT itself (a
// terminal's Ctrl-C reaches the whole process group).
func isInterrupt(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGINT
}

var (
	ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
	lightLine  = regexp.MustCompile(`^(.*): ([RYG])$`)
)

// parseLightOutput returns the colour of the last complete "LABEL: C"
// drawing in a light's output, if any.
func parseLightOutput(s string) (trafficfsm.Colour, bool) {
	segs := strings.FieldsFunc(s, func(r rune) bool { return r == '\r' || r == '\n' })
	for i := len(segs) - 1; i >= 0; i-- {
		t := strings.TrimSpace(ansiEscape.ReplaceAllString(segs[i], ""))
		if m := lightLine.FindStringSubmatch(t); m != nil {
			return trafficfsm.Colour(m[2][0]), true
		}
	}
	return 0, false
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// lightWriter turns a light's redraws into colour events.
type lightWriter struct {
	label   string
	send    func(demoEvent)
	pending string
}

func (w *lightWriter) Write(p []byte) (int, error) {
	w.pending += string(p)
	// Keep only the tail: the last drawing is all that matters.
	if len(w.pending) > 256 {
		w.pending = w.pending[len(w.pending)-256:]
	}
	if c, ok := parseLightOutput(w.pending); ok {
		w.send(demoEvent{light: w.label, c: c})
	}
	return len(p), nil
}

// lineWriter turns the controller's log into one event per line.
type lineWriter struct {
	send    func(demoEvent)
	pending []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.pending = append(w.pending, p...)
	for {
		i := bytes.IndexByte(w.pending, '\n')
		if i < 0 {
			break
		}
		w.send(demoEvent{line: string(w.pending[:i])})
		w.pending = w.pending[i+1:]
	}
	return len(p), nil
}

// display draws the controller's log above a status line with both lights.
type display struct {
	w       io.Writer
	colours map[string]trafficfsm.Colour
}

var demoANSI = map[trafficfsm.Colour]string{
	trafficfsm.Red:    "\x1b[31;1m",
	trafficfsm.Yellow: "\x1b[33;1m",
	trafficfsm.Green:  "\x1b[32;1m",
}

func (d *display) status() {
	fmt.Fprintf(d.w, "\r\x1b[K  EW %s● %v\x1b[0m   NS %s● %v\x1b[0m    Return: press the button   Ctrl-C: stop",
		demoANSI[d.colours["EW"]], d.colours["EW"], demoANSI[d.colours["NS"]], d.colours["NS"])
}

func (d *display) log(line string) {
	fmt.Fprintf(d.w, "\r\x1b[K%s\n", line)
	d.status()
}

func (d *display) finish() { fmt.Fprint(d.w, "\n") }

// findBinaries locates light, button and traffic: in dir if given, else
// next to this executable, else built by the go command into a temporary
// directory that cleanup removes.
func findBinaries(ctx context.Context, dir string, stderr io.Writer) (map[string]string, func(), error) {
	names := []string{"light", "button", "traffic"}
	lookIn := func(d string) (map[string]string, bool) {
		m := map[string]string{}
		for _, n := range names {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				return nil, false
			}
			m[n] = p
		}
		return m, true
	}
	if dir != "" {
		if m, ok := lookIn(dir); ok {
			return m, func() {}, nil
		}
		return nil, nil, fmt.Errorf("-bin %s does not hold all of %s", dir, strings.Join(names, ", "))
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if m, ok := lookIn(filepath.Dir(exe)); ok {
				return m, func() {}, nil
			}
		}
	}
	tmp, err := os.MkdirTemp("", "flotilla-demo-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	fmt.Fprintln(stderr, "flotilla demo: building light, button and traffic...")
	args := []string{"build", "-o", tmp + string(filepath.Separator)}
	for _, n := range names {
		args = append(args, "github.com/flotilla-sim/flotilla/cmd/"+n)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("binaries not found next to this executable, and building them failed (install them with "+
			"'go install github.com/flotilla-sim/flotilla/cmd/...'): %w", err)
	}
	m, ok := lookIn(tmp)
	if !ok {
		cleanup()
		return nil, nil, errors.New("go build did not produce the binaries")
	}
	return m, cleanup, nil
}

const checkUsage = `usage: flotilla check traffic [-step D] [-restarts]

Explores every state of the traffic-light controller, with time advancing in
steps of D (default 1s) and the button pressed at any point between two
steps (and, with -restarts, a controller restart at any point), and checks
the safety rules in every state and transition, that no state is a dead
end, and that every state can reach East-West green. Prints the number of
states; on a violation, prints the shortest sequence of events leading to it
and exits 1.
`

// checkMain runs "flotilla check" and returns the process exit code.
func checkMain(args []string) int { return checkRun(args, os.Stdout, os.Stderr) }

func checkRun(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "traffic" {
		fmt.Fprint(stderr, checkUsage)
		return 2
	}
	fs := flag.NewFlagSet("flotilla check traffic", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, checkUsage) }
	step := fs.Duration("step", time.Second, "time one tick advances")
	restarts := fs.Bool("restarts", false, "also restart the controller at any point")
	if code, ok := parseNoArgs(fs, args[1:], stderr, "flotilla check", checkUsage); !ok {
		return code
	}
	if *step < time.Millisecond {
		fmt.Fprintf(stderr, "flotilla check: -step must be at least 1ms\n")
		return 2
	}
	cfg := trafficfsm.DefaultConfig()
	began := time.Now()
	sp, err := trafficfsm.ExploreController(cfg, trafficfsm.ExploreOptions{Step: *step, Restarts: *restarts})
	took := time.Since(began)
	var v *sim.Violation
	if err != nil && !errors.As(err, &v) {
		fmt.Fprintf(stderr, "flotilla check: %v\n", err)
		return 2
	}
	fmt.Fprintf(stdout, "traffic controller: ticks of %v, a press possible between any two ticks", *step)
	if *restarts {
		fmt.Fprint(stdout, ", restarts anywhere")
	}
	fmt.Fprintln(stdout)
	if sp != nil {
		fmt.Fprintf(stdout, "  %d states, %d transitions, every state within %d events of the start (%v)\n",
			sp.Len(), sp.Transitions(), sp.Depth(), took.Round(time.Microsecond))
	}
	if err != nil {
		fmt.Fprintf(stdout, "FAIL\n%v\n", err)
		return 1
	}
	for _, p := range trafficfsm.ExploreProperties() {
		fmt.Fprintf(stdout, "  ok  %s\n", p)
	}
	fmt.Fprintln(stdout, "all properties hold")
	return 0
}

// parseNoArgs parses flags that take no positional arguments. When it
// returns ok false the command exits with code: 0 for -h, 2 for a bad flag
// or a stray argument (reported on stderr with usage).
func parseNoArgs(fs *flag.FlagSet, args []string, stderr io.Writer, name, usage string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n%s", name, fs.Arg(0), usage)
		return 2, false
	}
	return 0, true
}
