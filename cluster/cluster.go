// Package cluster reads and checks the cluster file of a replicated
// Flotilla service: which nodes exist, the address each listens on for its
// peers, and the address each serves clients on.
//
// A cluster file is JSON:
//
//	{
//	  "nodes": [
//	    {"id": 0, "peer": "127.0.0.1:15000", "client": "127.0.0.1:15001"},
//	    {"id": 1, "peer": "127.0.0.1:16000", "client": "127.0.0.1:16001"},
//	    {"id": 2, "peer": "127.0.0.1:17000", "client": "127.0.0.1:17001"}
//	  ]
//	}
//
// Node ids are small non-negative integers (below MaxID), each used once;
// every address is host:port and no address is used twice. Unknown fields
// are errors, so a misspelt field name is caught rather than ignored.
// Default is the course's cluster: five nodes, ids 0–4, peer ports 15000,
// 16000, 17000, 18000 and 19000 on localhost, and client ports one above
// each peer port (15001, …, 19001).
//
// The package also holds what every node of a replicated KV cluster runs
// and speaks: NodeMachine (a kvsm.Replica, the machine the simulator tests,
// that also answers StatusRequests), Codec (kvsm's ReplicaCodec plus the
// status messages) and the Raft timing of real clusters (RaftConfig).
// cmd/kvserver hosts a NodeMachine on the runtime; kvclient talks to it.
// See docs/cluster.md.
package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/flotilla-sim/flotilla/sim"
)

// MaxID bounds node ids: the runtime numbers client connections from 1<<20.
const MaxID = 1 << 20

// Node is one member of the cluster.
type Node struct {
	// ID is the node's id (its Raft id).
	ID sim.NodeID `json:"id"`
	// Peer is the address the node listens on for the other nodes.
	Peer string `json:"peer"`
	// Client is the address the node serves clients on.
	Client string `json:"client"`
}

// Cluster is a parsed and checked cluster file. Nodes are sorted by id.
type Cluster struct {
	Nodes []Node `json:"nodes"`
}

// Default returns the default cluster of n nodes on localhost: node i has
// peer port 15000+1000·i and client port 15001+1000·i. n = 5 is the
// course's cluster.
func Default(n int) *Cluster {
	return Local(n, "127.0.0.1", 15000, 1000)
}

// Local returns n nodes on host: node i has peer port base+step·i and
// client port base+step·i+1.
func Local(n int, host string, base, step int) *Cluster {
	c := &Cluster{}
	for i := range n {
		p := base + step*i
		c.Nodes = append(c.Nodes, Node{
			ID:     sim.NodeID(i),
			Peer:   net.JoinHostPort(host, strconv.Itoa(p)),
			Client: net.JoinHostPort(host, strconv.Itoa(p+1)),
		})
	}
	return c
}

// Load reads and checks the cluster file at path.
func Load(path string) (*Cluster, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	return c, nil
}

// Parse parses and checks a cluster file's contents. Syntax and type
// errors name the line and column (and the field, for type errors).
func Parse(b []byte) (*Cluster, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Cluster
	if err := dec.Decode(&c); err != nil {
		return nil, describe(b, dec, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := position(b, dec.InputOffset())
		return nil, fmt.Errorf("line %d, column %d: unexpected data after the cluster object", line, col)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func describe(b []byte, dec *json.Decoder, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		line, col := position(b, syn.Offset)
		return fmt.Errorf("line %d, column %d: malformed JSON: %w", line, col, err)
	case errors.As(err, &typ):
		line, col := position(b, typ.Offset)
		return fmt.Errorf("line %d, column %d: field %q: %s where %s is expected", line, col, typ.Field, typ.Value, typeName(typ.Type.String()))
	case errors.Is(err, io.EOF):
		return errors.New("empty file")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("file ends in the middle of the JSON object")
	}
	// Unknown fields: encoding/json reports them without an offset.
	line, col := position(b, dec.InputOffset())
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(b)))
	before := b[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

// Validate checks the cluster: at least one node, ids in [0, MaxID) and
// unique, every address a host:port with a numeric port, and no address
// used twice. It sorts Nodes by id.
func (c *Cluster) Validate() error {
	if len(c.Nodes) == 0 {
		return errors.New(`no nodes (the file needs "nodes": [{"id": 0, "peer": "host:port", "client": "host:port"}, ...])`)
	}
	slices.SortStableFunc(c.Nodes, func(a, b Node) int { return int(a.ID) - int(b.ID) })
	seen := map[string]string{}
	for i, n := range c.Nodes {
		if n.ID < 0 || n.ID >= MaxID {
			return fmt.Errorf("node id %d out of range [0, %d)", n.ID, MaxID)
		}
		if i > 0 && c.Nodes[i-1].ID == n.ID {
			return fmt.Errorf("duplicate node id %d", n.ID)
		}
		for _, a := range []struct{ field, addr string }{{"peer", n.Peer}, {"client", n.Client}} {
			where := fmt.Sprintf("node %d %s", n.ID, a.field)
			if a.addr == "" {
				return fmt.Errorf("%s: missing address", where)
			}
			host, port, err := net.SplitHostPort(a.addr)
			if err != nil {
				return fmt.Errorf("%s: address %q: %w", where, a.addr, err)
			}
			p, err := strconv.Atoi(port)
			if err != nil || p <= 0 || p > 65535 {
				return fmt.Errorf("%s: address %q: port must be a number in 1..65535", where, a.addr)
			}
			key := net.JoinHostPort(normalHost(host), strconv.Itoa(p))
			if prev, dup := seen[key]; dup {
				return fmt.Errorf("duplicate address %s: %s and %s", a.addr, prev, where)
			}
			seen[key] = where
		}
	}
	return nil
}

func normalHost(h string) string {
	switch strings.ToLower(h) {
	case "localhost", "127.0.0.1", "::1", "":
		return "localhost"
	}
	return strings.ToLower(h)
}

// IDs returns the node ids in order.
func (c *Cluster) IDs() []sim.NodeID {
	ids := make([]sim.NodeID, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = n.ID
	}
	return ids
}

// Node returns the node with the given id, or an error naming the ids the
// cluster has.
func (c *Cluster) Node(id sim.NodeID) (Node, error) {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n, nil
		}
	}
	ids := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		ids[i] = strconv.Itoa(int(n.ID))
	}
	return Node{}, fmt.Errorf("cluster: unknown node id %d (the cluster has ids %s)", id, strings.Join(ids, ", "))
}

// Peers maps every node other than self to its peer address.
func (c *Cluster) Peers(self sim.NodeID) map[sim.NodeID]string {
	m := make(map[sim.NodeID]string, len(c.Nodes))
	for _, n := range c.Nodes {
		if n.ID != self {
			m[n.ID] = n.Peer
		}
	}
	return m
}

// Clients maps every node to its client address.
func (c *Cluster) Clients() map[sim.NodeID]string {
	m := make(map[sim.NodeID]string, len(c.Nodes))
	for _, n := range c.Nodes {
		m[n.ID] = n.Client
	}
	return m
}

// Marshal returns the cluster file's contents, indented, one node a line.
func (c *Cluster) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString("{\n  \"nodes\": [\n")
	for i, n := range c.Nodes {
		line, _ := json.Marshal(n)
		b.WriteString("    ")
		b.Write(line)
		if i < len(c.Nodes)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}

// Save writes the cluster file to path (through a temporary file and a
// rename, so a reader never sees half a file).
func (c *Cluster) Save(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, c.Marshal(), 0o644); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

// CheckDataDir makes sure dir exists (creating it if needed) and that this
// process can create files in it, with an error that says which.
func CheckDataDir(dir string) error {
	if dir == "" {
		return errors.New("cluster: no data directory given")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cluster: data directory %s cannot be created: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("cluster: data directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("cluster: data directory %s is not a directory", dir)
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("cluster: data directory %s is not writable: %w", dir, err)
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if _, err := os.ReadDir(filepath.Clean(dir)); err != nil {
		return fmt.Errorf("cluster: data directory %s is not readable: %w", dir, err)
	}
	return nil
}

func typeName(t string) string {
	switch t {
	case "sim.NodeID":
		return "an integer"
	case "string":
		return "a string"
	}
	return t
}
