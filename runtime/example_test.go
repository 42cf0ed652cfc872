package runtime_test

import (
	"context"
	"fmt"
	"time"

	"github.com/flotilla-sim/flotilla/runtime"
	"github.com/flotilla-sim/flotilla/sim"
)

// greeter greets its peer at start and observes every greeting it gets.
type greeter struct{ peer sim.NodeID }

func (g *greeter) Step(ev sim.Event, out *sim.Effects) {
	switch ev.Kind {
	case sim.EventStart:
		out.Send(g.peer, fmt.Sprintf("hello from %d", ev.Boot.ID))
	case sim.EventMessage:
		out.Observe(ev.Msg)
	}
}

// Run hosts a machine for real. Here node 1 greets node 0 over UDP on
// loopback; node 0 is already listening.
func ExampleRun() {
	listen0, err := runtime.ListenUDP(runtime.UDPConfig{Listen: "127.0.0.1:0", Codec: strCodec{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	node1, err := runtime.ListenUDP(runtime.UDPConfig{
		Listen: "127.0.0.1:0", Codec: strCodec{},
		Peers: map[sim.NodeID]string{0: listen0.LocalAddr().String()},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan any, 1)
	go runtime.Run(ctx, runtime.Config{ID: 0, Machine: &greeter{peer: 1}, Transport: listen0, Logger: quiet(),
		OnObserve: func(o any) { got <- o }})
	go runtime.Run(ctx, runtime.Config{ID: 1, Machine: &greeter{peer: 0}, Transport: node1, Logger: quiet()})
	select {
	case o := <-got:
		fmt.Println(o)
	case <-ctx.Done():
		fmt.Println("no greeting")
	}
	// Output: hello from 1
}
