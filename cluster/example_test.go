package cluster_test

import (
	"fmt"

	"github.com/flotilla-sim/flotilla/cluster"
)

func ExampleParse() {
	c, err := cluster.Parse([]byte(`{"nodes": [
		{"id": 1, "peer": "10.0.0.2:15000", "client": "10.0.0.2:15001"},
		{"id": 0, "peer": "10.0.0.1:15000", "client": "10.0.0.1:15001"}
	]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.IDs(), c.Peers(0)[1], c.Clients()[0])

	_, err = cluster.Parse([]byte(`{"nodes": [
		{"id": 0, "peer": "10.0.0.1:15000", "client": "10.0.0.1:15000"}
	]}`))
	fmt.Println(err)
	// Output:
	// [0 1] 10.0.0.2:15000 10.0.0.1:15001
	// duplicate address 10.0.0.1:15000: node 0 peer and node 0 client
}

func ExampleDefault() {
	for _, n := range cluster.Default(5).Nodes {
		fmt.Println(n.ID, n.Peer, n.Client)
	}
	// Output:
	// 0 127.0.0.1:15000 127.0.0.1:15001
	// 1 127.0.0.1:16000 127.0.0.1:16001
	// 2 127.0.0.1:17000 127.0.0.1:17001
	// 3 127.0.0.1:18000 127.0.0.1:18001
	// 4 127.0.0.1:19000 127.0.0.1:19001
}
