package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvclient"
	"github.com/flotilla-sim/flotilla/raft"
	"github.com/flotilla-sim/flotilla/sim"
)

const clusterUsage = `usage: flotilla cluster COMMAND [flags]

  up     [-n 5] [-dir flotilla-cluster] [-port 15000] [-kvserver PATH]
         start a local replicated KV cluster as real processes: DIR/cluster.json,
         DIR/nodeN/ (journal) and DIR/nodeN.log per node, DIR/pids
  down   [-dir flotilla-cluster] [-timeout 5s]
         stop it: SIGTERM (drain and sync), then SIGKILL after the timeout
  status [-dir flotilla-cluster | -cluster FILE]
         each node's role, term, leader, commit, applied and last log index

Node i listens for peers on port PORT+1000*i and for clients one above
(the default is the course's cluster: peers on 15000, 16000, ..., clients on
15001, 16001, ...). Talk to it with: kvclient -cluster DIR/cluster.json set foo hello
`

// clusterMain runs "flotilla cluster ...".
func clusterMain(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return clusterRun(ctx, args, os.Stdout, os.Stderr)
}

func clusterRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, clusterUsage)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, clusterUsage)
		return 0
	case "up":
		return clusterUp(ctx, args[1:], stdout, stderr)
	case "down":
		return clusterDown(args[1:], stdout, stderr)
	case "status":
		return clusterStatus(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "flotilla cluster: unknown command %q\n\n%s", args[0], clusterUsage)
	return 2
}

func clusterFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("flotilla cluster "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, clusterUsage) }
	dir := fs.String("dir", "flotilla-cluster", "directory of the local cluster")
	return fs, dir
}

func parseOnly(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "flotilla cluster: unexpected arguments %q\n", fs.Args())
		fs.Usage()
		return false
	}
	return true
}

func clusterUp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, dir := clusterFlags("up", stderr)
	n := fs.Int("n", 5, "number of nodes")
	port := fs.Int("port", 15000, "peer port of node 0; node i uses PORT+1000*i (peers) and one above (clients)")
	bin := fs.String("kvserver", "", "kvserver binary (default: next to this executable, then $PATH, else built with go build)")
	wait := fs.Duration("wait", 15*time.Second, "how long to wait for a leader")
	if !parseOnly(fs, args, stderr) {
		return 2
	}
	if *n < 1 || *n > 9 || *port < 1 || *port+1000*(*n-1)+1 > 65535 {
		fmt.Fprintln(stderr, "flotilla cluster up: -n must be 1..9 and the ports must fit below 65536")
		return 2
	}
	if pids, _ := readPids(*dir); len(alive(pids)) > 0 {
		fmt.Fprintf(stderr, "flotilla cluster up: a cluster is already running from %s (pids %v); run flotilla cluster down -dir %s\n", *dir, alive(pids), *dir)
		return 1
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintf(stderr, "flotilla cluster up: %v\n", err)
		return 1
	}
	server, err := findKVServer(ctx, *bin, *dir, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "flotilla cluster up: %v\n", err)
		return 1
	}
	c := cluster.Local(*n, "127.0.0.1", *port, 1000)
	file := filepath.Join(*dir, "cluster.json")
	if err := c.Save(file); err != nil {
		fmt.Fprintf(stderr, "flotilla cluster up: %v\n", err)
		return 1
	}
	pids := map[sim.NodeID]int{}
	for _, nd := range c.Nodes {
		pid, err := startNode(server, file, *dir, nd.ID)
		if err != nil {
			fmt.Fprintf(stderr, "flotilla cluster up: node %d: %v\n", nd.ID, err)
			writePids(*dir, pids)
			stopNodes(pids, 5*time.Second, io.Discard)
			os.Remove(pidFile(*dir))
			return 1
		}
		pids[nd.ID] = pid
	}
	if err := writePids(*dir, pids); err != nil {
		fmt.Fprintf(stderr, "flotilla cluster up: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "started %d nodes from %s (cluster file %s, logs %s)\n", *n, *dir, file, filepath.Join(*dir, "node*.log"))
	deadline := time.Now().Add(*wait)
	for {
		if leader, ok := findLeader(ctx, c); ok {
			fmt.Fprintf(stdout, "node %d leads\n", leader)
			break
		}
		for id, pid := range pids {
			if len(alive(map[sim.NodeID]int{id: pid})) == 0 {
				fmt.Fprintf(stderr, "flotilla cluster up: node %d exited; see %s\n", id, filepath.Join(*dir, fmt.Sprintf("node%d.log", id)))
				stopNodes(pids, 5*time.Second, io.Discard)
				os.Remove(pidFile(*dir))
				return 1
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			fmt.Fprintf(stderr, "flotilla cluster up: no leader after %v (the nodes keep running; see the logs in %s)\n", *wait, *dir)
			return 1
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintln(stdout, kvclient.StatusTable(ctx, c))
	fmt.Fprintf(stdout, "try: kvclient -cluster %s set foo hello\n", file)
	return 0
}

func findLeader(ctx context.Context, c *cluster.Cluster) (sim.NodeID, bool) {
	for _, nd := range c.Nodes {
		sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		st, err := kvclient.NodeStatus(sctx, nd.Client)
		cancel()
		if err == nil && st.Role == raft.Leader {
			return nd.ID, true
		}
	}
	return -1, false
}

func findKVServer(ctx context.Context, flagPath, dir string, stderr io.Writer) (string, error) {
	if flagPath != "" {
		if st, err := os.Stat(flagPath); err != nil || st.IsDir() {
			return "", fmt.Errorf("-kvserver %s: not a file", flagPath)
		}
		return filepath.Abs(flagPath)
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			p := filepath.Join(filepath.Dir(exe), "kvserver")
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
		}
	}
	if p, err := exec.LookPath("kvserver"); err == nil {
		return filepath.Abs(p)
	}
	out := filepath.Join(dir, "bin")
	fmt.Fprintf(stderr, "flotilla cluster up: kvserver not found; building it into %s\n", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out+string(filepath.Separator), "github.com/flotilla-sim/flotilla/cmd/kvserver")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("kvserver not found next to this executable or in $PATH, and building it failed (%w); "+
			"install it with: go install github.com/flotilla-sim/flotilla/cmd/kvserver", err)
	}
	return filepath.Abs(filepath.Join(out, "kvserver"))
}

// startNode starts one kvserver in its own session (it outlives this
// command), with stdout and stderr appended to DIR/nodeN.log.
func startNode(server, file, dir string, id sim.NodeID) (int, error) {
	logPath := filepath.Join(dir, fmt.Sprintf("node%d.log", id))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	absFile, _ := filepath.Abs(file)
	data, _ := filepath.Abs(filepath.Join(dir, fmt.Sprintf("node%d", id)))
	cmd := exec.Command(server, "-cluster", absFile, "-id", strconv.Itoa(int(id)), "-data", data)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it if it exits while this command still runs
	return pid, nil
}

func sortedIDs(pids map[sim.NodeID]int) []sim.NodeID {
	ids := slices.Collect(maps.Keys(pids))
	slices.Sort(ids)
	return ids
}

func pidFile(dir string) string { return filepath.Join(dir, "pids") }

// The pid file holds one "ID PID" line per node.
func writePids(dir string, pids map[sim.NodeID]int) error {
	var b strings.Builder
	for _, id := range sortedIDs(pids) {
		fmt.Fprintf(&b, "%d %d\n", id, pids[id])
	}
	return os.WriteFile(pidFile(dir), []byte(b.String()), 0o644)
}

func readPids(dir string) (map[sim.NodeID]int, error) {
	f, err := os.Open(pidFile(dir))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	pids := map[sim.NodeID]int{}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var id, pid int
		if _, err := fmt.Sscanf(sc.Text(), "%d %d", &id, &pid); err != nil || pid <= 1 {
			return nil, fmt.Errorf("%s line %d: %q is not \"ID PID\"", pidFile(dir), line, sc.Text())
		}
		pids[sim.NodeID(id)] = pid
	}
	return pids, sc.Err()
}

// alive returns the pids among pids that still run a kvserver (on Linux
// the command line is checked, so a recycled pid is left alone).
func alive(pids map[sim.NodeID]int) []int {
	var out []int
	for _, id := range sortedIDs(pids) {
		pid := pids[id]
		if syscall.Kill(pid, 0) != nil {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && !strings.Contains(string(b), "kvserver") {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			// A zombie (our own child, not yet reaped) has exited.
			if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
				continue
			}
		}
		out = append(out, pid)
	}
	return out
}

// stopNodes sends SIGTERM to every live node, waits up to timeout for them
// to exit, then SIGKILLs the rest.
func stopNodes(pids map[sim.NodeID]int, timeout time.Duration, stdout io.Writer) (killed int) {
	live := alive(pids)
	for _, pid := range live {
		syscall.Kill(pid, syscall.SIGTERM)
	}
	deadline := time.Now().Add(timeout)
	for len(alive(pids)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, pid := range alive(pids) {
		fmt.Fprintf(stdout, "pid %d did not stop within %v: SIGKILL\n", pid, timeout)
		syscall.Kill(pid, syscall.SIGKILL)
		killed++
	}
	return killed
}

func clusterDown(args []string, stdout, stderr io.Writer) int {
	fs, dir := clusterFlags("down", stderr)
	timeout := fs.Duration("timeout", 5*time.Second, "how long to wait after SIGTERM before SIGKILL")
	if !parseOnly(fs, args, stderr) {
		return 2
	}
	pids, err := readPids(*dir)
	if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stderr, "flotilla cluster down: no cluster in %s (no pid file)\n", *dir)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "flotilla cluster down: %v\n", err)
		return 1
	}
	live := alive(pids)
	killed := stopNodes(pids, *timeout, stdout)
	os.Remove(pidFile(*dir))
	fmt.Fprintf(stdout, "stopped %d nodes (%d with SIGKILL); data and logs stay in %s\n", len(live), killed, *dir)
	return 0
}

func clusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, dir := clusterFlags("status", stderr)
	file := fs.String("cluster", "", "cluster file (default DIR/cluster.json)")
	if !parseOnly(fs, args, stderr) {
		return 2
	}
	if *file == "" {
		*file = filepath.Join(*dir, "cluster.json")
	}
	c, err := cluster.Load(*file)
	if err != nil {
		fmt.Fprintf(stderr, "flotilla cluster status: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, kvclient.StatusTable(ctx, c))
	return 0
}
