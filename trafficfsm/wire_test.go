package trafficfsm_test

import (
	"bytes"
	"testing"

	"github.com/flotilla-sim/flotilla/sim"
	"github.com/flotilla-sim/flotilla/trafficfsm"
)

func TestCodecWireBytes(t *testing.T) {
	c := trafficfsm.Codec{}
	for _, tc := range []struct {
		msg  sim.Message
		wire string
	}{
		{trafficfsm.Red, "R"},
		{trafficfsm.Yellow, "Y"},
		{trafficfsm.Green, "G"},
		{trafficfsm.Press{}, "press"},
	} {
		b, err := c.Encode(nil, tc.msg)
		if err != nil || string(b) != tc.wire {
			t.Errorf("Encode(%v) = %q, %v; want %q", tc.msg, b, err, tc.wire)
		}
		m, err := c.Decode([]byte(tc.wire))
		if err != nil || m != tc.msg {
			t.Errorf("Decode(%q) = %v, %v; want %v", tc.wire, m, err, tc.msg)
		}
	}
	for _, bad := range []string{"", "r", "g", "RR", "R\n", "G ", "Press", "press\n", "pres", "\xff", "B", "\x00"} {
		if m, err := c.Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) = %v, want an error", bad, m)
		}
	}
	for _, bad := range []sim.Message{trafficfsm.Colour('B'), "R", 1, nil} {
		if b, err := c.Encode(nil, bad); err == nil {
			t.Errorf("Encode(%#v) = %q, want an error", bad, b)
		}
	}
}

func FuzzCodecDecode(f *testing.F) {
	for _, s := range []string{"R", "Y", "G", "press", "", "RY", "presss", "\xffR", "p"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := trafficfsm.Codec{}
		m, err := c.Decode(b)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode(%q) returned %v with error %v", b, m, err)
			}
			return
		}
		// Anything accepted is one of the four datagrams, byte for byte.
		enc, err := c.Encode(nil, m)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("Decode(%q) = %v, which encodes to %q, %v", b, m, enc, err)
		}
		switch string(b) {
		case "R", "Y", "G", "press":
		default:
			t.Fatalf("Decode accepted %q", b)
		}
	})
}
