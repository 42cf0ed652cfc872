package raft

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// TestEntryLogModel: an entryLog under any sequence of appends (of
// entries it points to, and of entries it stores itself), truncations, prefix drops and slicing holds what a plain slice would, and
// a slice it handed out (as a message carries one) never changes afterwards
// and has no spare capacity an append could write into. Small and odd-sized
// operations cross block boundaries often.
func TestEntryLogModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var l entryLog
		var model []Entry
		type handed struct{ got, want []Entry }
		var out []handed
		next := uint64(1) // a distinct Index per appended entry, to tell entries apart
		for range rapid.IntRange(1, 60).Draw(t, "ops") {
			switch rapid.IntRange(0, 4).Draw(t, "op") {
			case 0:
				es := make([]Entry, rapid.IntRange(0, 2*logBlock+3).Draw(t, "append"))
				for i := range es {
					es[i] = Entry{Index: next, Term: next * 7, Data: []byte{byte(next)}}
					next++
				}
				l.append(es)
				model = append(model, es...)
			case 4:
				for range rapid.IntRange(0, logBlock+3).Draw(t, "appendOwn") {
					e := Entry{Index: next, Term: next * 7, Data: []byte{byte(next)}}
					next++
					l.appendOwn(&e)
					model = append(model, e)
				}
			case 1:
				i := rapid.IntRange(0, len(model)).Draw(t, "truncate")
				// Half the time cut at the start of the block i falls in,
				// a case of its own that a uniform draw rarely hits.
				if c := (l.off+i)&^logBlockMask - l.off; c > 0 && rapid.Bool().Draw(t, "atBlockStart") {
					i = c
				}
				l.truncate(i)
				model = model[:i]
			case 2:
				k := rapid.IntRange(0, len(model)).Draw(t, "dropFront")
				l.dropFront(k)
				model = slices.Clone(model[k:])
			case 3:
				if len(model) == 0 {
					continue
				}
				lo := rapid.IntRange(0, len(model)-1).Draw(t, "lo")
				hi := rapid.IntRange(lo+1, min(len(model), lo+2*logBlock)).Draw(t, "hi")
				s := l.slice(lo, hi)
				if len(s) != cap(s) {
					t.Fatalf("slice(%d, %d) has spare capacity %d", lo, hi, cap(s)-len(s))
				}
				out = append(out, handed{s, slices.Clone(model[lo:hi])})
			}
			if l.len() != len(model) {
				t.Fatalf("len %d, want %d", l.len(), len(model))
			}
			for i := range model {
				if !sameEntry(*l.at(i), model[i]) {
					t.Fatalf("entry %d: %+v, want %+v", i, *l.at(i), model[i])
				}
			}
			if whole := l.all(); !slices.EqualFunc(whole, model, sameEntry) {
				t.Fatalf("whole log differs:\n%s", cmp.Diff(model, whole, equateEmpty))
			}
			for k, h := range out {
				if !slices.EqualFunc(h.got, h.want, sameEntry) {
					t.Fatalf("slice %d handed out earlier changed:\n%s", k, cmp.Diff(h.want, h.got, equateEmpty))
				}
			}
		}
	})
}

// sameEntry compares entries cheaply: the test's entries differ in Index
// and share no Data.
func sameEntry(a, b Entry) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		len(a.Data) == len(b.Data) && (len(a.Data) == 0 || &a.Data[0] == &b.Data[0])
}

// TestEntryLogTruncateAtBlockStart: entries written after a cut at the
// first slot of a block must not land where a slice handed out earlier
// still looks, in either of truncate's cases (a cut at a block's start,
// and one inside it).
func TestEntryLogTruncateAtBlockStart(t *testing.T) {
	for _, cut := range []int{logBlock, logBlock + 3} {
		var l entryLog
		for i := range logBlock + 44 {
			l.appendOwn(&Entry{Index: uint64(i + 1), Term: 1})
		}
		s := l.slice(cut, cut+4)
		if &s[0] != l.at(cut) {
			t.Fatalf("cut at %d: the slice is a copy, not the log's own entries", cut)
		}
		l.truncate(cut)
		l.appendOwn(&Entry{Index: uint64(cut + 1), Term: 2})
		if s[0].Term != 1 {
			t.Errorf("cut at %d: a slice handed out before it now holds %+v", cut, s[0])
		}
	}
}

// TestEntryLogSharesEntries: entries appended from elsewhere (a message)
// are not copied, and those a node appends itself go out in messages
// without a copy, one block's worth at a time.
func TestEntryLogSharesEntries(t *testing.T) {
	var l entryLog
	es := []Entry{{Index: 1, Term: 1}, {Index: 2, Term: 1}}
	l.append(es)
	if l.at(0) != &es[0] || l.at(1) != &es[1] {
		t.Fatal("an appended entry was copied")
	}
	for i := range logBlock {
		l.appendOwn(&Entry{Index: uint64(i + 3), Term: 2})
	}
	if s := l.slice(2, 5); &s[0] != l.at(2) || &s[2] != l.at(4) {
		t.Error("a slice of entries stored in one block was copied")
	}
	if s := l.slice(1, 3); &s[0] == l.at(1) || &s[1] == l.at(2) {
		t.Error("a slice reaching outside the log's own entries shares memory")
	}
	if s := l.slice(logBlock-1, logBlock+1); &s[0] == l.at(logBlock-1) {
		t.Error("a slice spanning two blocks shares memory")
	}
}

// TestEntryLogTruncateReleasesDropped: a cut inside a block leaves no
// pointer to a dropped entry in the log, so that a dropped entry (and the
// message array or block it lies in) is not kept alive by the log.
func TestEntryLogTruncateReleasesDropped(t *testing.T) {
	var l entryLog
	es := make([]Entry, 10)
	for i := range es {
		es[i] = Entry{Index: uint64(i + 1), Term: 1}
	}
	l.append(es)
	l.truncate(4)
	for j, p := range l.refs[0] {
		if j >= l.off+4 && p != nil {
			t.Fatalf("slot %d still points to dropped entry %+v", j, *p)
		}
	}
	if l.len() != 4 || l.at(3) != &es[3] {
		t.Fatalf("after the cut: %d entries, last %+v", l.len(), *l.at(l.len() - 1))
	}
}
