package kvclient_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/flotilla-sim/flotilla/cluster"
	"github.com/flotilla-sim/flotilla/kvclient"
)

// A client of a replicated cluster (started with, e.g., "flotilla cluster
// up"): it needs only the cluster file. Not run by go test: it needs the
// servers.
func ExampleSession() {
	c, err := cluster.Load("flotilla-cluster/cluster.json")
	if err != nil {
		log.Fatal(err)
	}
	s, err := kvclient.NewClusterSession(c)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch err := s.Set(ctx, "foo", []byte("hello")); {
	case errors.Is(err, kvclient.ErrUnknownOutcome):
		fmt.Println("the write may or may not have happened (never twice)")
	case err != nil:
		log.Fatal(err)
	}
	v, ok, err := s.Get(ctx, "foo")
	fmt.Println(string(v), ok, err)
}
