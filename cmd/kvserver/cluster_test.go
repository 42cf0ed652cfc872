package main_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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

	"github.com/anishathalye/porcupine"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvclient"
	"github.com/flotilla-sim/flotilla/kvsm"
	"github.com/flotilla-sim/flotilla/kvsm/kvsim"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

// testCluster is n kvserver processes on loopback, each with its data
// directory and log file.
type testCluster struct {
	t     testing.TB
	exe   string // the kvserver binary
	dir   string
	file  string
	c     *cluster.Cluster
	nodes []*node
}

type node struct {
	id   sim.NodeID
	data string
	log  string
	cmd  *exec.Cmd
	done chan error
}

// freePorts returns n distinct loopback ports nobody listens on right now.
func freePorts(t testing.TB, n int) []int {
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func startCluster(t *testing.T, n int) *testCluster {
	return startClusterWith(t, n, filepath.Join(bin, "kvserver"))
}

func startClusterWith(t testing.TB, n int, exe string) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, dir: t.TempDir(), exe: exe}
	ports := freePorts(t, 2*n)
	tc.c = &cluster.Cluster{}
	for i := range n {
		tc.c.Nodes = append(tc.c.Nodes, cluster.Node{ID: sim.NodeID(i),
			Peer: "127.0.0.1:" + strconv.Itoa(ports[2*i]), Client: "127.0.0.1:" + strconv.Itoa(ports[2*i+1])})
	}
	tc.file = filepath.Join(tc.dir, "cluster.json")
	if err := tc.c.Save(tc.file); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		nd := &node{id: sim.NodeID(i), data: filepath.Join(tc.dir, fmt.Sprintf("data%d", i)), log: filepath.Join(tc.dir, fmt.Sprintf("node%d.log", i))}
		tc.nodes = append(tc.nodes, nd)
		tc.start(nd)
	}
	t.Cleanup(func() {
		for _, nd := range tc.nodes {
			if nd.cmd != nil {
				nd.cmd.Process.Signal(syscall.SIGCONT)
				nd.cmd.Process.Kill()
				<-nd.done
			}
		}
		if t.Failed() {
			for _, nd := range tc.nodes {
				b, _ := os.ReadFile(nd.log)
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				t.Logf("node %d log (last 25 lines):\n%s", nd.id, strings.Join(lines[max(0, len(lines)-25):], "\n"))
			}
		}
	})
	return tc
}

func (tc *testCluster) start(nd *node) {
	tc.t.Helper()
	f, err := os.OpenFile(nd.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		tc.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(tc.exe, "-cluster", tc.file, "-id", strconv.Itoa(int(nd.id)), "-data", nd.data)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		tc.t.Fatal(err)
	}
	nd.cmd, nd.done = cmd, make(chan error, 1)
	go func() { nd.done <- cmd.Wait() }()
}

// kill sends sig and, for SIGKILL and SIGTERM, waits for the process to
// exit and returns its error.
func (tc *testCluster) signal(nd *node, sig syscall.Signal) error {
	tc.t.Helper()
	if err := nd.cmd.Process.Signal(sig); err != nil {
		tc.t.Fatal(err)
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return nil
	}
	select {
	case err := <-nd.done:
		nd.cmd = nil
		return err
	case <-time.After(20 * time.Second):
		tc.t.Fatalf("node %d did not exit after %v", nd.id, sig)
		return nil
	}
}

func (tc *testCluster) session() *kvclient.Session {
	s, err := kvclient.NewSession(kvclient.ClusterConfig{Servers: tc.c.Clients(), AttemptTimeout: 500 * time.Millisecond})
	if err != nil {
		tc.t.Fatal(err)
	}
	tc.t.Cleanup(func() { s.Close() })
	return s
}

// statuses asks every running node for its status.
func (tc *testCluster) statuses() map[sim.NodeID]cluster.Status {
	s := tc.session()
	defer s.Close()
	out := map[sim.NodeID]cluster.Status{}
	for _, nd := range tc.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		st, err := s.Status(ctx, nd.id)
		cancel()
		if err == nil {
			out[nd.id] = st
		}
	}
	return out
}

// leader waits until a node leads.
func (tc *testCluster) leader(within time.Duration) sim.NodeID {
	tc.t.Helper()
	return tc.leaderOtherThan(-1, within)
}

// leaderOtherThan polls until a node other than not leads.
func (tc *testCluster) leaderOtherThan(not sim.NodeID, within time.Duration) sim.NodeID {
	tc.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for id, st := range tc.statuses() {
			if st.Role == raft.Leader && id != not {
				return id
			}
		}
		time.Sleep(50 * time.Millisecond) // polling
	}
	tc.t.Fatalf("no leader other than %d within %v", not, within)
	return -1
}

// history records operations as porcupine sees them, in real time.
type history struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	acked map[string]string // ack-only keys: key -> value, acknowledged
	done  int               // operations with a known outcome
}

func newHistory() *history { return &history{start: time.Now(), acked: map[string]string{}} }

func (h *history) now() int64 { return int64(time.Since(h.start)) }

// await waits until n more operations than now have completed with a known
// outcome: the load has made that much progress (in the current phase of
// a test: before a fault, under it, after it).
func (h *history) await(t *testing.T, n int) {
	t.Helper()
	h.mu.Lock()
	want := h.done + n
	h.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.mu.Lock()
		done := h.done
		h.mu.Unlock()
		if done >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load completed only %d of %d more operations in 20s", done-want+n, n)
		}
		time.Sleep(10 * time.Millisecond) // polling
	}
}

// do runs one operation through s and records it.
func (h *history) do(s *kvclient.Session, client int, in kvsim.Input, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	call := h.now()
	var (
		err   error
		v     []byte
		found bool
	)
	switch in.Op {
	case kvsm.OpGet:
		v, found, err = s.Get(ctx, in.Key)
	case kvsm.OpSet:
		err = s.Set(ctx, in.Key, []byte(in.Value))
	case kvsm.OpDelete:
		err = s.Delete(ctx, in.Key)
	}
	ret := h.now()
	op := porcupine.Operation{ClientId: client, Input: in, Call: call, Return: ret,
		Output: kvsim.Output{Found: found, Value: string(v)}}
	if err != nil {
		if in.Op == kvsm.OpGet {
			return err // a read that failed changed nothing
		}
		// Possibly applied: it may take effect at any time after its call.
		op.Output, op.Return = kvsim.Output{Unknown: true}, math.MaxInt64
	}
	h.mu.Lock()
	h.ops = append(h.ops, op)
	if err == nil {
		h.done++
	}
	h.mu.Unlock()
	return err
}

// load runs clients until stop is closed: each does gets, sets and deletes
// on a few shared keys with values unique to it. Client 0 instead writes
// fresh keys and remembers the acknowledged ones.
func (h *history) load(tc *testCluster, clients int, stop <-chan struct{}) (wait func() (ok, failed int)) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var okN, failN int
	// Odd clients share one connection per server (pipelined); even ones
	// have their own.
	pool := kvclient.NewPool(tc.c.Clients())
	tc.t.Cleanup(func() { pool.Close() })
	for c := range clients {
		s := tc.session()
		if c%2 == 1 {
			var err error
			s, err = kvclient.NewSession(kvclient.ClusterConfig{Servers: tc.c.Clients(), AttemptTimeout: 500 * time.Millisecond, Pool: pool})
			if err != nil {
				tc.t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var in kvsim.Input
				key := fmt.Sprintf("k%d", rng.IntN(3))
				switch p := rng.IntN(10); {
				case c == 0:
					in = kvsim.Input{Op: kvsm.OpSet, Key: fmt.Sprintf("ack-%d", i), Value: fmt.Sprintf("v%d", i)}
				case p < 5:
					in = kvsim.Input{Op: kvsm.OpGet, Key: key}
				case p < 9:
					in = kvsim.Input{Op: kvsm.OpSet, Key: key, Value: fmt.Sprintf("c%d-%d", c, i)}
				default:
					in = kvsim.Input{Op: kvsm.OpDelete, Key: key}
				}
				err := h.do(s, c, in, 5*time.Second)
				mu.Lock()
				if err == nil {
					okN++
				} else {
					failN++
				}
				mu.Unlock()
				if c == 0 && err == nil {
					h.mu.Lock()
					h.acked[in.Key] = in.Value
					h.mu.Unlock()
				}
			}
		}()
	}
	return func() (int, int) { wg.Wait(); return okN, failN }
}

// verify reads every key once more (recorded), checks that every
// acknowledged write is there, and checks the history with porcupine.
func (h *history) verify(t *testing.T, tc *testCluster) {
	t.Helper()
	s := tc.session()
	for k := range 3 {
		if err := h.do(s, 1000, kvsim.Input{Op: kvsm.OpGet, Key: fmt.Sprintf("k%d", k)}, 10*time.Second); err != nil {
			t.Fatalf("final read: %v", err)
		}
	}
	h.mu.Lock()
	acked := h.acked
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for k, want := range acked {
		v, ok, err := s.Get(ctx, k)
		if err != nil || !ok || string(v) != want {
			t.Fatalf("acknowledged write %s=%s lost: got %q, %v, %v", k, want, v, ok, err)
		}
	}
	h.mu.Lock()
	ops := slicesClone(h.ops)
	h.mu.Unlock()
	html := filepath.Join(t.TempDir(), "history.html")
	res, err := kvsim.CheckHistory(ops, 20*time.Second, html)
	if err != nil {
		if b, rerr := os.ReadFile(html); rerr == nil {
			keep := filepath.Join(os.TempDir(), fmt.Sprintf("%s-%d.html", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano()))
			os.WriteFile(keep, b, 0o644)
			t.Fatalf("%v (kept at %s)", err, keep)
		}
		t.Fatal(err)
	}
	if res != porcupine.Ok {
		t.Logf("porcupine: %v (check timed out) on %d ops", res, len(ops))
	}
	t.Logf("%d operations linearizable, %d acknowledged fresh writes all present", len(ops), len(acked))
}

// roleLine matches a line of the status table whose node has role.
func roleLine(role string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\d+\s+\S+\s+` + role + `\s`)
}

func slicesClone[T any](s []T) []T { return append([]T(nil), s...) }

// TestClusterBasic: a 3-node cluster elects a leader, serves writes and
// reads through kvclient -cluster, and shows its status.
func TestClusterBasic(t *testing.T) {
	tc := startCluster(t, 3)
	tc.leader(10 * time.Second)
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"get", "foo"}, "(nil)\n"},
		{[]string{"set", "foo", "hello"}, "ok\n"},
		{[]string{"get", "foo"}, "hello\n"},
		{[]string{"delete", "foo"}, "ok\n"},
		{[]string{"get", "foo"}, "(nil)\n"},
	} {
		out, errOut, code := client(t, append([]string{"-cluster", tc.file}, c.args...)...)
		if code != 0 || out != c.out {
			t.Fatalf("kvclient %v: exit %d, stdout %q, stderr %q; want %q", c.args, code, out, errOut, c.out)
		}
	}
	// The same through the kvsm.Client machine hosted on the runtime.
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"set", "m", "machine"}, "ok\n"},
		{[]string{"get", "m"}, "machine\n"},
		{[]string{"delete", "m"}, "ok\n"},
		{[]string{"get", "m"}, "(nil)\n"},
	} {
		out, errOut, code := client(t, append([]string{"-cluster", tc.file, "-machine"}, c.args...)...)
		if code != 0 || out != c.out {
			t.Fatalf("kvclient -machine %v: exit %d, stdout %q, stderr %q; want %q", c.args, code, out, errOut, c.out)
		}
	}
	out, errOut, code := client(t, "-cluster", tc.file, "status")
	if code != 0 || len(roleLine("leader").FindAllString(out, -1)) != 1 || len(roleLine("follower").FindAllString(out, -1)) != 2 {
		t.Fatalf("status: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	// Every node applied the five writes (plus the leader's no-op).
	deadline := time.Now().Add(5 * time.Second)
	for {
		sts := tc.statuses()
		ok := len(sts) == 3
		for _, st := range sts {
			ok = ok && st.Applied >= 5 && st.Applied == st.Commit
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every node applied the writes: %+v", sts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Bad invocations fail clearly.
	_, errOut, code = client(t, "-cluster", filepath.Join(tc.dir, "nope.json"), "get", "x")
	if code == 0 || !strings.Contains(errOut, "no such file") {
		t.Fatalf("missing cluster file: exit %d, %q", code, errOut)
	}
}

// TestClusterBadArguments: the server refuses a bad cluster file, an
// unknown id and an unusable data directory with a clear message.
func TestClusterBadArguments(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "c.json")
	cluster.Local(3, "127.0.0.1", 41000, 10).Save(good)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{\"nodes\": [\n  {\"id\": 0, \"peer\": \"127.0.0.1:1\", \"client\": \"127.0.0.1:1\"}\n]}\n"), 0o644)
	malformed := filepath.Join(dir, "malformed.json")
	os.WriteFile(malformed, []byte("{\"nodes\": [\n  {\"id\": 0,, }\n]}\n"), 0o644)
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-cluster", good, "-id", "7", "-data", dir}, "unknown node id 7 (the cluster has ids 0, 1, 2)"},
		{[]string{"-cluster", bad, "-id", "0", "-data", dir}, "duplicate address 127.0.0.1:1"},
		{[]string{"-cluster", malformed, "-id", "0", "-data", dir}, "line 2, column 13: malformed JSON"},
		{[]string{"-cluster", good, "-id", "0", "-data", filepath.Join(file, "sub")}, "data directory"},
		{[]string{"-cluster", good, "-id", "0"}, "-cluster needs -data DIR"},
		{[]string{"-cluster", good, "-data", dir}, "-cluster needs -id"},
	} {
		cmd := exec.Command(filepath.Join(bin, "kvserver"), c.args...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(string(out), c.want) {
			t.Errorf("kvserver %v: %v, output %q; want a failure mentioning %q", c.args, err, out, c.want)
		}
	}
}

// TestClusterKillLeader: under client load, SIGKILL the leader; a new
// leader serves within a few seconds; the old one restarts and catches up;
// no acknowledged write is lost and the history is linearizable.
func TestClusterKillLeader(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			tc := startCluster(t, n)
			old := tc.leader(10 * time.Second)
			h := newHistory()
			stop := make(chan struct{})
			wait := h.load(tc, 4, stop)
			h.await(t, 30)

			tc.signal(tc.nodes[old], syscall.SIGKILL)
			killed := time.Now()
			// A fresh session must get a write through a new leader.
			s := tc.session()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.Set(ctx, "after-kill", []byte("x"))
			cancel()
			if err != nil {
				t.Fatalf("no write after the leader was killed: %v", err)
			}
			took := time.Since(killed)
			if nl := s.Leader(); nl == old {
				t.Fatalf("write acknowledged by the killed node %d", old)
			}
			if took > 5*time.Second {
				t.Fatalf("a new leader served only %v after the kill", took)
			}
			t.Logf("new leader served a write %v after the kill", took.Round(time.Millisecond))

			h.await(t, 20) // served by the new leader
			tc.start(tc.nodes[old])
			h.await(t, 30) // while the old one catches up
			close(stop)
			okN, failN := wait()
			if okN < 20 {
				t.Fatalf("only %d operations succeeded (%d failed)", okN, failN)
			}
			t.Logf("load: %d ok, %d without answer", okN, failN)

			// The restarted node catches up with the leader's commit index.
			deadline := time.Now().Add(10 * time.Second)
			for {
				sts := tc.statuses()
				var lead cluster.Status
				for _, st := range sts {
					if st.Role == raft.Leader {
						lead = st
					}
				}
				if st, ok := sts[old]; ok && lead.Commit > 0 && st.Applied >= lead.Commit {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("restarted node %d did not catch up: %+v", old, sts)
				}
				time.Sleep(50 * time.Millisecond)
			}
			h.verify(t, tc)
		})
	}
}

// TestClusterPauseNode: SIGSTOP the leader under load, then SIGCONT it: the
// others elect a new leader meanwhile, the paused one steps down when it
// wakes, and the history stays linearizable.
func TestClusterPauseNode(t *testing.T) {
	tc := startCluster(t, 3)
	old := tc.leader(10 * time.Second)
	h := newHistory()
	stop := make(chan struct{})
	wait := h.load(tc, 4, stop)
	h.await(t, 20)
	tc.signal(tc.nodes[old], syscall.SIGSTOP)
	tc.leaderOtherThan(old, 10*time.Second) // elected while old is stopped
	tc.signal(tc.nodes[old], syscall.SIGCONT)
	h.await(t, 30) // with the old leader awake again
	close(stop)
	okN, failN := wait()
	t.Logf("load: %d ok, %d without answer", okN, failN)
	h.verify(t, tc)
}

// TestClusterRestartAll: SIGTERM every node (a clean drain: exit 0), start
// them all again, then SIGKILL them all under load and start them again;
// every acknowledged write survives both.
func TestClusterRestartAll(t *testing.T) {
	tc := startCluster(t, 3)
	tc.leader(10 * time.Second)
	h := newHistory()
	stop := make(chan struct{})
	wait := h.load(tc, 3, stop)
	h.await(t, 30)
	close(stop)
	wait()
	for _, nd := range tc.nodes {
		if err := tc.signal(nd, syscall.SIGTERM); err != nil {
			t.Fatalf("node %d after SIGTERM: %v (want exit 0)", nd.id, err)
		}
	}
	for _, nd := range tc.nodes {
		tc.start(nd)
	}
	tc.leader(10 * time.Second)
	stop = make(chan struct{})
	wait = h.load(tc, 3, stop)
	h.await(t, 30)
	for _, nd := range tc.nodes {
		tc.signal(nd, syscall.SIGKILL)
	}
	close(stop)
	for _, nd := range tc.nodes {
		tc.start(nd)
	}
	okN, failN := wait()
	t.Logf("load: %d ok, %d without answer", okN, failN)
	h.verify(t, tc)
}
