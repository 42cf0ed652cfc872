package sim

import (
	"math/rand/v2"
	"testing"

	"pgregory.net/rapid"
)

// TestDrawsMatchRand: pcgFloat64 and pcgInt64N return what rand.Rand's
// Float64 and Int64N return from a generator in the same state, and leave
// it in the same state, for any seed, any bound (powers of two, small,
// and large enough that rejections are likely) and any mix of the two.
func TestDrawsMatchRand(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s1, s2 := rapid.Uint64().Draw(t, "s1"), rapid.Uint64().Draw(t, "s2")
		mine, theirs := rand.NewPCG(s1, s2), rand.NewPCG(s1, s2)
		r := rand.New(theirs)
		bound := rapid.OneOf(
			rapid.Int64Range(1, 1<<20),
			rapid.Map(rapid.Int64Range(1, 1<<62), func(n int64) int64 { return n | 1<<62 }), // rejects often
			rapid.Map(rapid.IntRange(0, 62), func(k int) int64 { return 1 << k }),
			rapid.Int64Range(1, 1<<63-1),
		)
		for range rapid.IntRange(1, 50).Draw(t, "draws") {
			if rapid.Bool().Draw(t, "float") {
				if got, want := pcgFloat64(mine), r.Float64(); got != want {
					t.Fatalf("pcgFloat64 %v, rand.Float64 %v", got, want)
				}
				continue
			}
			n := bound.Draw(t, "n")
			if got, want := pcgInt64N(mine, n), r.Int64N(n); got != want {
				t.Fatalf("pcgInt64N(%d) %d, rand.Int64N %d", n, got, want)
			}
		}
		if a, b := mine.Uint64(), theirs.Uint64(); a != b {
			t.Fatalf("the generators drifted apart: next %d and %d", a, b)
		}
	})
}
