package kvsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Store is the pure key-value state: a map from byte-string keys to values,
// with Apply as its only way to change. It is deterministic: the same
// requests applied in the same order give the same state and the same
// snapshot bytes. The replicated KV reuses it by applying committed
// requests.
type Store struct {
	m map[string][]byte
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{m: make(map[string][]byte)} }

// Len is the number of keys.
func (s *Store) Len() int { return len(s.m) }

// Get returns the value of key and whether it is present. The value must
// not be modified.
func (s *Store) Get(key []byte) ([]byte, bool) {
	v, ok := s.m[string(key)]
	return v, ok
}

// Apply executes a request and returns its response (with the request's
// ID). Get of a missing key answers StatusNotFound; delete of a missing key
// is a successful no-op. The store keeps req.Value; requests are immutable
// values once sent.
func (s *Store) Apply(req Request) Response {
	resp := Response{ID: req.ID}
	switch req.Op {
	case OpGet:
		v, ok := s.m[string(req.Key)]
		if !ok {
			resp.Status = StatusNotFound
			return resp
		}
		if v == nil {
			v = []byte{}
		}
		resp.Value = v
	case OpSet:
		v := req.Value
		if v == nil {
			v = []byte{}
		}
		s.m[string(req.Key)] = v
	case OpDelete:
		delete(s.m, string(req.Key))
	default:
		resp.Status = StatusBadRequest
		resp.Value = []byte(fmt.Sprintf("unknown op %d", req.Op))
	}
	return resp
}

// IsWrite reports whether op changes the store.
func (o Op) IsWrite() bool { return o == OpSet || o == OpDelete }

// Snapshot format: 'S' | version 1 | count uvarint | count × (key, value)
// with keys in ascending byte order, each string a uvarint length and the
// bytes.
const snapVersion = 1

// Snapshot serializes the store, keys in sorted order, so equal stores give
// equal bytes.
func (s *Store) Snapshot() []byte {
	keys := make([]string, 0, len(s.m))
	size := 16
	for k, v := range s.m {
		keys = append(keys, k)
		size += len(k) + len(v) + 2*binary.MaxVarintLen32
	}
	slices.Sort(keys)
	b := make([]byte, 0, size)
	b = append(b, 'S', snapVersion)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendBytes(b, []byte(k))
		b = appendBytes(b, s.m[k])
	}
	return b
}

// Restore replaces the store's contents with a snapshot. On error the store
// is unchanged.
func (s *Store) Restore(b []byte) error {
	r := reader{b: b}
	if r.byte() != 'S' || r.byte() != snapVersion {
		return errors.New("kvsm: not a version 1 snapshot")
	}
	n := r.uvarint()
	if r.err == nil && n > uint64(len(r.b))/2 {
		return fmt.Errorf("kvsm: snapshot claims %d keys in %d bytes", n, len(r.b))
	}
	m := make(map[string][]byte, n)
	var prev []byte
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := r.bytes(MaxKey, "key")
		v := r.bytes(MaxValue, "value")
		if r.err == nil && i > 0 && string(k) <= string(prev) {
			r.fail("snapshot keys out of order at key %d", i)
		}
		prev = k
		m[string(k)] = slices.Clone(v)
		if m[string(k)] == nil {
			m[string(k)] = []byte{}
		}
	}
	r.end()
	if r.err != nil {
		return r.err
	}
	s.m = m
	return nil
}
