package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvclient"
)

// freeBase finds a peer port base such that the ports of n nodes
// (base+1000*i and one above) are free right now.
func freeBase(t *testing.T, n int) int {
	for try := 0; try < 50; try++ {
		base := 20000 + (os.Getpid()*7+try*37)%9000
		ok := true
		var ls []net.Listener
		for i := range n {
			for _, p := range []int{base + 1000*i, base + 1000*i + 1} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					ok = false
					break
				}
				ls = append(ls, l)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if ok && base+1000*(n-1)+1 < 65536 {
			return base
		}
	}
	t.Fatal("no free port range")
	return 0
}

func TestClusterUpStatusDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	tmp := t.TempDir()
	out, err := exec.Command("go", "build", "-race", "-o", tmp+string(filepath.Separator), "github.com/flotilla-sim/flotilla/cmd/kvserver").CombinedOutput()
	if err != nil {
		t.Fatalf("building kvserver: %v\n%s", err, out)
	}
	dir := filepath.Join(tmp, "cl")
	base := freeBase(t, 3)
	ctx := context.Background()
	var o, e bytes.Buffer
	up := []string{"up", "-n", "3", "-dir", dir, "-port", fmt.Sprint(base), "-kvserver", filepath.Join(tmp, "kvserver")}
	if code := clusterRun(ctx, up, &o, &e); code != 0 {
		t.Fatalf("cluster up: exit %d\nstdout:\n%s\nstderr:\n%s", code, &o, &e)
	}
	t.Cleanup(func() {
		if pids, err := readPids(dir); err == nil {
			stopNodes(pids, time.Second, os.Stderr)
		}
	})
	if !regexp.MustCompile(`node \d leads`).MatchString(o.String()) {
		t.Fatalf("cluster up output:\n%s", &o)
	}
	for _, f := range []string{"cluster.json", "pids", "node0.log", "node2.log", "node1"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("cluster up did not create %s: %v", f, err)
		}
	}
	c, err := cluster.Load(filepath.Join(dir, "cluster.json"))
	if err != nil || len(c.Nodes) != 3 || c.Nodes[1].Peer != fmt.Sprintf("127.0.0.1:%d", base+1000) {
		t.Fatalf("cluster file: %v %+v", err, c)
	}
	// A second up refuses while the first runs.
	o.Reset()
	e.Reset()
	if code := clusterRun(ctx, up, &o, &e); code == 0 || !strings.Contains(e.String(), "already running") {
		t.Fatalf("second up: exit %d, stderr %q", code, &e)
	}
	s, err := kvclient.NewClusterSession(c)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i := range 5 {
		if err := s.Set(wctx, fmt.Sprint("k", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	// Status: one leader, two followers, everyone at the same applied index
	// eventually (the leader's no-op, the session's open and five writes).
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.Reset()
		if code := clusterRun(ctx, []string{"status", "-dir", dir}, &o, &e); code != 0 {
			t.Fatalf("status: exit %d: %s", code, &e)
		}
		lines := strings.Split(o.String(), "\n")
		leaders, synced := 0, 0
		for _, l := range lines[1:] {
			f := strings.Fields(l)
			if len(f) == 8 && f[2] == "leader" {
				leaders++
			}
			if len(f) == 8 && f[6] == "7" {
				synced++
			}
		}
		if leaders == 1 && synced == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed one leader and three nodes at applied 7:\n%s", &o)
		}
		time.Sleep(50 * time.Millisecond)
	}
	o.Reset()
	if code := clusterRun(ctx, []string{"down", "-dir", dir}, &o, &e); code != 0 || !strings.Contains(o.String(), "stopped 3 nodes (0 with SIGKILL)") {
		t.Fatalf("down: exit %d, stdout %q, stderr %q", code, &o, &e)
	}
	for i := range 3 {
		b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)))
		if !strings.Contains(string(b), "journal synced") {
			t.Fatalf("node %d did not drain on SIGTERM; log:\n%s", i, b)
		}
	}
	o.Reset()
	clusterRun(ctx, []string{"status", "-dir", dir}, &o, &e)
	if strings.Count(o.String(), "unreachable") != 3 {
		t.Fatalf("status after down:\n%s", &o)
	}
	if code := clusterRun(ctx, []string{"down", "-dir", dir}, &o, &e); code == 0 {
		t.Fatal("a second down succeeded")
	}
	if code := clusterRun(ctx, []string{"bogus"}, &o, &e); code != 2 {
		t.Fatalf("unknown subcommand: exit %d", code)
	}
	if code := clusterRun(ctx, []string{"up", "-n", "0"}, &o, &e); code != 2 {
		t.Fatalf("up -n 0: exit %d", code)
	}
}
