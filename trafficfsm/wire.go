package trafficfsm

import (
	"fmt"

	"github.com/flotilla-sim/flotilla/sim"
)

// Colour is what a light shows, and the message commanding it. Its values are
// the wire bytes themselves.
type Colour byte

// The three colours.
const (
	Red    Colour = 'R'
	Yellow Colour = 'Y'
	Green  Colour = 'G'
)

// Valid reports whether c is one of Red, Yellow and Green.
func (c Colour) Valid() bool { return c == Red || c == Yellow || c == Green }

// String is the colour's wire letter.
func (c Colour) String() string {
	if c.Valid() {
		return string(rune(c))
	}
	return fmt.Sprintf("Colour(%d)", byte(c))
}

// Press is the button's message to the controller: someone pressed it.
type Press struct{}

// Node ids of the intersection, in the simulator and in the runtime.
const (
	ControllerID sim.NodeID = 0
	EWLightID    sim.NodeID = 1
	NSLightID    sim.NodeID = 2
	ButtonID     sim.NodeID = 3
)

// pressWire is the button's datagram.
const pressWire = "press"

// Codec is the wire format of the traffic devices: a Colour is the single
// byte "R", "Y" or "G", and a Press is the five bytes "press". Decode rejects
// every other input. It is stateless; the zero value is ready to use.
type Codec struct{}

var _ sim.Codec = Codec{}

// Encode appends the wire form of m to dst.
func (Codec) Encode(dst []byte, m sim.Message) ([]byte, error) {
	switch m := m.(type) {
	case Colour:
		if !m.Valid() {
			return dst, fmt.Errorf("trafficfsm: encode: invalid colour %v", m)
		}
		return append(dst, byte(m)), nil
	case Press:
		return append(dst, pressWire...), nil
	}
	return dst, fmt.Errorf("trafficfsm: encode: unknown message type %T", m)
}

// Decode parses one datagram. It accepts exactly "R", "Y", "G" and "press".
func (Codec) Decode(b []byte) (sim.Message, error) {
	if len(b) == 1 {
		if c := Colour(b[0]); c.Valid() {
			return c, nil
		}
	}
	if string(b) == pressWire {
		return Press{}, nil
	}
	const show = 16
	if len(b) > show {
		return nil, fmt.Errorf("trafficfsm: decode: unknown datagram %q... (%d bytes)", b[:show], len(b))
	}
	return nil, fmt.Errorf("trafficfsm: decode: unknown datagram %q", b)
}
