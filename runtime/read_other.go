//go:build !unix

package runtime

import "github.com/flotilla-sim/flotilla/sim"

// readConn reads c's frames until the connection fails or deliver refuses,
// delivering each decoded message; it returns why it stopped.
func (s *TCPServer) readConn(c *tcpConn, deliver func(sim.NodeID, sim.Message) bool) (why string, err error) {
	return s.readBuffered(c, deliver)
}
