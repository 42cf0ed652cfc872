package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// runNode runs one node of a replicated cluster.
func runNode(ctx context.Context, fs *flag.FlagSet, file string, id int, data string, snapEvery int, log *slog.Logger, stdout, stderr io.Writer) int {
	bad := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "kvserver: "+format+"\n", args...)
		fs.Usage()
		return 2
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	switch {
	case file == "":
		return bad("-id needs -cluster")
	case id < 0:
		return bad("-cluster needs -id N (a node id from the cluster file)")
	case data == "":
		return bad("-cluster needs -data DIR: a replicated node must keep its journal")
	case explicit["addr"]:
		return bad("-addr is standalone only; a clustered node listens on the addresses in the cluster file")
	}
	if !explicit["snapshot-every"] {
		snapEvery = 0 // the cluster default
	}
	c, err := cluster.Load(file)
	if err != nil {
		fmt.Fprintf(stderr, "kvserver: %v\n", err)
		return 2
	}
	self, err := c.Node(sim.NodeID(id))
	if err != nil {
		fmt.Fprintf(stderr, "kvserver: %v\n", err)
		return 2
	}
	if err := cluster.CheckDataDir(data); err != nil {
		fmt.Fprintf(stderr, "kvserver: %v\n", err)
		return 1
	}
	log = log.With("node", id)
	if err := serveNode(ctx, c, self, data, snapEvery, log, stdout); err != nil {
		log.Error("kvserver stopped", "err", err)
		return 1
	}
	log.Info("kvserver stopped; journal synced")
	return 0
}

func serveNode(ctx context.Context, c *cluster.Cluster, self cluster.Node, data string, snapEvery int, log *slog.Logger, stdout io.Writer) error {
	j, err := runtime.OpenJournal(data)
	if err != nil {
		return err
	}
	defer j.Close()
	rec := j.Recovered()
	log.Info("journal recovered", "dir", data, "snapshot_bytes", len(rec.Snapshot), "base", rec.Base, "records", len(rec.Records))

	peers, err := runtime.ListenTCPPeers(runtime.TCPPeersConfig{
		ID: self.ID, Listen: self.Peer, Peers: c.Peers(self.ID), Codec: cluster.Codec{}, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("listening for peers: %w", err)
	}
	clients, err := runtime.ListenTCP(runtime.TCPConfig{Listen: self.Client, Codec: cluster.Codec{}, Logger: log})
	if err != nil {
		peers.Close()
		return fmt.Errorf("listening for clients: %w", err)
	}
	fmt.Fprintf(stdout, "KV node %d listening: peers %s, clients %s\n", self.ID, peers.Addr(), clients.Addr())
	if f, ok := stdout.(*os.File); ok {
		f.Sync()
	}
	log.Info("serving", "peer_addr", peers.Addr().String(), "client_addr", clients.Addr().String(), "nodes", len(c.Nodes))
	m := c.NewNode(self.ID, cluster.NodeConfig{SnapshotEvery: snapEvery})
	m.OnChange = func(st cluster.Status) {
		log.Info("raft", "role", st.Role.String(), "term", st.Term, "leader", st.Leader, "commit", st.Commit, "applied", st.Applied)
	}
	err = runtime.Run(ctx, runtime.Config{
		ID:        self.ID,
		Machine:   m,
		Transport: runtime.Combine(peers, clients),
		Journal:   j,
		Logger:    log,
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return j.Close()
}
