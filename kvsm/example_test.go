package kvsm_test

import (
	"fmt"

	"github.com/flotilla-sim/flotilla/kvsm"
)

func ExampleStore() {
	s := kvsm.NewStore()
	s.Apply(kvsm.Request{Op: kvsm.OpSet, Key: []byte("foo"), Value: []byte("hello")})
	r := s.Apply(kvsm.Request{ID: 2, Op: kvsm.OpGet, Key: []byte("foo")})
	fmt.Println(r.ID, r.Status, string(r.Value))
	r = s.Apply(kvsm.Request{ID: 3, Op: kvsm.OpGet, Key: []byte("bar")})
	fmt.Println(r.ID, r.Status)

	// A snapshot restores into an equal store.
	t := kvsm.NewStore()
	if err := t.Restore(s.Snapshot()); err != nil {
		fmt.Println(err)
	}
	v, ok := t.Get([]byte("foo"))
	fmt.Println(string(v), ok)
	// Output:
	// 2 ok hello
	// 3 not found
	// hello true
}

func ExampleCodec() {
	var c kvsm.Codec
	b, _ := c.Encode(nil, kvsm.Request{ID: 1, Op: kvsm.OpSet, Key: []byte("k"), Value: []byte("v")})
	fmt.Printf("% x\n", b)
	m, _ := c.Decode(b)
	fmt.Printf("%+v\n", m)
	// Output:
	// 51 02 00 01 01 6b 01 76
	// {ID:1 Op:set Key:[107] Value:[118] Client:0 Seq:0}
}
