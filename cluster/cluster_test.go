package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDefault(t *testing.T) {
	c := Default(5)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:15000", "127.0.0.1:16000", "127.0.0.1:17000", "127.0.0.1:18000", "127.0.0.1:19000"}
	var got []string
	for _, n := range c.Nodes {
		got = append(got, n.Peer)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("peer addresses (-want +got):\n%s", d)
	}
	if c.Nodes[4].Client != "127.0.0.1:19001" {
		t.Fatalf("node 4 client %q", c.Nodes[4].Client)
	}
}

func TestRoundTrip(t *testing.T) {
	c := Default(3)
	path := filepath.Join(t.TempDir(), "cluster.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(c, back); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	if _, err := back.Node(7); err == nil || !strings.Contains(err.Error(), "unknown node id 7") || !strings.Contains(err.Error(), "0, 1, 2") {
		t.Fatalf("unknown id: %v", err)
	}
	if p := back.Peers(1); len(p) != 2 || p[0] != c.Nodes[0].Peer {
		t.Fatalf("peers of 1: %v", p)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"syntax", "{\n  \"nodes\": [\n    {\"id\": 0 \"peer\": \"a:1\"}\n  ]\n}", "line 3, column"},
		{"type", "{\"nodes\": [\n{\"id\": \"zero\", \"peer\": \"a:1\", \"client\": \"a:2\"}]}", `line 2, column 14: field "nodes.id"`},
		{"unknown field", "{\"nodes\": [{\"id\": 0, \"peer\": \"a:1\", \"clinet\": \"a:2\"}]}", `unknown field "clinet"`},
		{"empty", "", "empty file"},
		{"truncated", "{\"nodes\": [", "ends in the middle"},
		{"no nodes", `{"nodes": []}`, "no nodes"},
		{"duplicate id", `{"nodes": [{"id": 0, "peer": "a:1", "client": "a:2"}, {"id": 0, "peer": "a:3", "client": "a:4"}]}`, "duplicate node id 0"},
		{"duplicate address", `{"nodes": [{"id": 0, "peer": "localhost:1", "client": "a:2"}, {"id": 1, "peer": "127.0.0.1:1", "client": "a:4"}]}`, "duplicate address 127.0.0.1:1: node 0 peer and node 1 peer"},
		{"peer equals client", `{"nodes": [{"id": 0, "peer": "a:1", "client": "a:1"}]}`, "duplicate address a:1"},
		{"bad port", `{"nodes": [{"id": 0, "peer": "a:x", "client": "a:1"}]}`, "node 0 peer: address \"a:x\": port must be"},
		{"missing client", `{"nodes": [{"id": 0, "peer": "a:1"}]}`, "node 0 client: missing address"},
		{"negative id", `{"nodes": [{"id": -1, "peer": "a:1", "client": "a:2"}]}`, "out of range"},
		{"trailing", `{"nodes": [{"id": 0, "peer": "a:1", "client": "a:2"}]} {}`, "unexpected data"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse: got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if err == nil || !os.IsNotExist(errorsUnwrapAll(err)) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestCheckDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := CheckDataDir(dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	if err := CheckDataDir(file); err == nil {
		t.Fatal("a plain file accepted as data directory")
	}
	if os.Geteuid() != 0 {
		ro := t.TempDir()
		os.Chmod(ro, 0o555)
		defer os.Chmod(ro, 0o755)
		if err := CheckDataDir(ro); err == nil || !strings.Contains(err.Error(), "not writable") {
			t.Fatalf("read-only directory: %v", err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Default(3).Marshal())
	f.Add([]byte(`{"nodes": [{"id": 0, "peer": "a:1", "client": "a:2"}]}`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed cluster fails validation: %v", err)
		}
		back, err := Parse(c.Marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if d := cmp.Diff(c, back); d != "" {
			t.Fatalf("round trip: %s", d)
		}
	})
}
