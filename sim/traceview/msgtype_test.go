package traceview

import "testing"

// TestMsgType: labels are message type names, a pointer's without the
// & that %+v prints before the struct.
func TestMsgType(t *testing.T) {
	for m, want := range map[string]string{
		"raft.Heartbeat{Term:1 Commit:0 Seq:2}":    "raft.Heartbeat",
		"*raft.AppendEntries&{Term:1 PrevIndex:0}": "*raft.AppendEntries",
		"pingpong.Ping{Seq:3}":                     "pingpong.Ping",
		"kvsm.Request{ID:1 Op:get Key:[107 52]}":   "kvsm.Request",
		"[1 2 3]":                                  "[1 2 3]",
	} {
		if got := msgType(m); got != want {
			t.Errorf("msgType(%q) = %q, want %q", m, got, want)
		}
	}
}
