package main_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/kvclient"
	"github.com/flotilla-sim/flotilla/runtime"
)

var bin string // directory holding the built kvserver and kvclient

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kvbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	out, err := exec.Command("go", "build", "-race", "-o", dir+string(filepath.Separator), "github.com/flotilla-sim/flotilla/cmd/kvserver", "github.com/flotilla-sim/flotilla/cmd/kvclient").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building binaries: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type server struct {
	cmd    *exec.Cmd
	addr   string
	stderr logFile
	done   chan error
}

// logFile is the server's stderr, a file so that the server writes it
// directly: whatever it logged before printing a line on stdout is in the
// file once the test has read that line.
type logFile string

func (l logFile) String() string {
	b, _ := os.ReadFile(string(l))
	return string(b)
}

var portLine = regexp.MustCompile(`^KV Server listening on port (\d+)$`)

// startServer runs kvserver on an ephemeral loopback port and waits for
// its "listening" line.
func startServer(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kvserver"), append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &server{cmd: cmd, stderr: logFile(f.Name()), done: make(chan error, 1)}
	cmd.Stderr = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
		s.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	select {
	case l, ok := <-line:
		m := portLine.FindStringSubmatch(l)
		if !ok || m == nil {
			t.Fatalf("kvserver printed %q, want the listening line; stderr:\n%s", l, s.stderr)
		}
		s.addr = "127.0.0.1:" + m[1]
	case <-time.After(20 * time.Second):
		t.Fatal("kvserver did not start")
	}
	return s
}

func client(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "kvclient"), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return o.String(), e.String(), ee.ExitCode()
		}
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func TestClientCommands(t *testing.T) {
	s := startServer(t)
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"get", "foo"}, "(nil)\n"},
		{[]string{"set", "foo", "hello"}, "ok\n"},
		{[]string{"get", "foo"}, "hello\n"},
		{[]string{"set", "foo", "hello world"}, "ok\n"},
		{[]string{"get", "foo"}, "hello world\n"},
		{[]string{"delete", "foo"}, "ok\n"},
		{[]string{"get", "foo"}, "(nil)\n"},
		{[]string{"delete", "foo"}, "ok\n"},
	} {
		out, errOut, code := client(t, append([]string{"-addr", s.addr}, c.args...)...)
		if code != 0 || out != c.out || errOut != "" {
			t.Fatalf("kvclient %v: exit %d, stdout %q, stderr %q; want exit 0 and %q", c.args, code, out, errOut, c.out)
		}
	}
}

func TestClientFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close() // nothing listens here now
	for _, args := range [][]string{
		{"-addr", down, "get", "foo"},
		{},
		{"frobnicate"},
		{"get"},
		{"set", "onlykey"},
		{"-nosuchflag", "get", "x"},
		{"bench", "-c", "0"},
	} {
		out, errOut, code := client(t, args...)
		if code != 1 || out != "" || errOut == "" {
			t.Errorf("kvclient %q: exit %d, stdout %q, stderr %q; want exit 1 and an error", args, code, out, errOut)
		}
	}
	_, errOut, _ := client(t, "-addr", down, "get", "foo")
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("server-down error is not one line: %q", errOut)
	}
	if out, err := exec.Command(filepath.Join(bin, "kvserver"), "extra").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Errorf("kvserver with a stray argument: err %v, output %q", err, out)
	}
}

// TestServerSurvivesBadClients sends garbage and oversized frames; those
// connections are closed and the server keeps serving everyone else.
func TestServerSurvivesBadClients(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good, err := kvclient.Dial(ctx, s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	for name, payload := range map[string][]byte{
		"garbage frame": runtime.AppendFrame(nil, []byte("not a request")),
		"oversized":     {0x7f, 0xff, 0xff, 0xff, 1, 2, 3},
		"response":      runtime.AppendFrame(nil, []byte{'R', 0, 0, 1}),
		"torn":          {0, 0, 0, 50, 'Q'},
	} {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(payload)
		if name == "torn" {
			c.(*net.TCPConn).CloseWrite()
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if name == "response" {
			// A well-formed message that is not a request gets no answer;
			// the connection stays usable.
			c.Write(runtime.AppendFrame(nil, []byte{'Q', 1, 0, 9, 1, 'k'}))
			p, err := runtime.ReadFrame(c, nil, 0)
			if err != nil || !bytes.Equal(p, []byte{'R', 1, 0, 9}) {
				t.Fatalf("%s: then a get answered %q, %v", name, p, err)
			}
		} else if _, err := runtime.ReadFrame(c, nil, 0); err != io.EOF {
			t.Fatalf("%s: read %v, want the server to close the connection", name, err)
		}
		c.Close()
		if err := good.Set(ctx, "still", []byte(name)); err != nil {
			t.Fatalf("after %s: %v", name, err)
		}
	}
	if v, _, err := good.Get(ctx, "still"); err != nil || len(v) == 0 {
		t.Fatalf("get after bad clients: %q %v", v, err)
	}
}

func TestConcurrentClients(t *testing.T) {
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := kvclient.Dial(ctx, s.addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for i := range 30 {
				k, v := fmt.Sprintf("c%d", g), fmt.Sprint(i)
				if err := c.Set(ctx, k, []byte(v)); err != nil {
					errs <- err
					return
				}
				got, ok, err := c.Get(ctx, k)
				if err != nil || !ok || string(got) != v {
					errs <- fmt.Errorf("client %d: get %s = %q, %v, %v; want %q", g, k, got, ok, err, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	out, errOut, code := client(t, "-addr", s.addr, "bench", "-c", "8", "-d", "300ms", "-size", "32")
	if code != 0 || !strings.Contains(out, "ops/s") || !strings.Contains(out, "p99") {
		t.Fatalf("bench: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestSigtermShutsDownCleanly(t *testing.T) {
	s := startServer(t, "-data", t.TempDir())
	if _, _, code := client(t, "-addr", s.addr, "set", "a", "1"); code != 0 {
		t.Fatal("set failed")
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("kvserver exited with %v after SIGTERM; stderr:\n%s", err, s.stderr)
		}
		s.done <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Fatal("kvserver ignored SIGTERM")
	}
	if !strings.Contains(s.stderr.String(), "kvserver stopped") {
		t.Fatalf("no shutdown log line:\n%s", s.stderr)
	}
}

// TestKillLosesNoAcknowledgedWrite writes from several clients, SIGKILLs
// the server in the middle of the traffic, restarts it on the same -data
// directory and checks that every acknowledged write is there. Each key has
// one writer writing increasing numbers, so after the restart a key must
// hold its last acknowledged number or the one that was in flight.
func TestKillLosesNoAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, "-data", dir, "-snapshot-every", "150")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const writers, keysPer = 8, 4
	acked := make([][keysPer]int, writers) // last acknowledged value per key, -1 none
	var mu sync.Mutex
	var wg sync.WaitGroup
	enough := make(chan struct{})
	var total int
	for w := range writers {
		for k := range keysPer {
			acked[w][k] = -1
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := kvclient.Dial(ctx, s.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for i := 0; ; i++ {
				k := i % keysPer
				if err := c.Set(ctx, fmt.Sprintf("w%d-k%d", w, k), []byte(strconv.Itoa(i))); err != nil {
					return // the server died
				}
				mu.Lock()
				acked[w][k] = i
				total++
				if total == 2000 {
					close(enough)
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-ctx.Done():
		t.Fatal("writes too slow")
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	wg.Wait()
	<-s.done
	s.done <- nil

	s2 := startServer(t, "-data", dir)
	c, err := kvclient.Dial(ctx, s2.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	mu.Lock()
	defer mu.Unlock()
	for w := range writers {
		for k := range keysPer {
			key := fmt.Sprintf("w%d-k%d", w, k)
			v, ok, err := c.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			last := acked[w][k]
			if last < 0 {
				continue
			}
			got, perr := strconv.Atoi(string(v))
			if !ok || perr != nil || (got != last && got != last+keysPer) {
				t.Errorf("%s = %q (found %v) after restart; last acknowledged %d", key, v, ok, last)
			}
		}
	}
	if !strings.Contains(s2.stderr.String(), "journal recovered") {
		t.Errorf("no recovery log:\n%s", s2.stderr)
	}
}
