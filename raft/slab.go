package raft

// slab hands out pointers to values carved from shared chunks, so that the
// messages a node sends most (AppendEntries and their replies) are not
// each boxed into an interface by an allocation of their own: a pointer
// goes into an interface as it is. Messages are immutable once sent, so a
// slot is written once, before its pointer is handed out, and never again;
// a chunk is freed by the collector once no message in it is referenced.
type slab[T any] struct {
	chunk []T
	next  int // the first unused slot of chunk
}

// slabChunk is the number of values per chunk: enough to make the
// allocation rare, few enough that one message held for long (in a paused
// node's inbox, say) keeps little else alive with it.
const slabChunk = 32

// alloc returns a pointer to a fresh, zero slot. (An index rather than
// reslicing: moving a slice's start is a pointer write, with a write
// barrier while the collector runs.)
func (s *slab[T]) alloc() *T {
	if s.next == len(s.chunk) {
		s.chunk, s.next = make([]T, slabChunk), 0
	}
	p := &s.chunk[s.next]
	s.next++
	return p
}
