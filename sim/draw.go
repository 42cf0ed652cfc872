package sim

import (
	"math/bits"
	"math/rand/v2"
)

// The network draws a loss and a delay for every message it carries, so it
// makes those draws on its PCG directly: a draw through rand.Rand is a call
// through the Source interface that the compiler cannot inline, and costs
// more than the generator itself. pcgFloat64 and pcgInt64N compute exactly
// what rand.Rand's Float64 and Int64N compute from the same generator state
// (TestDrawsMatchRand), so a stream may mix them with rand.Rand's methods
// and its values do not change.

// pcgFloat64 is rand.New(p).Float64(): 53 random bits scaled to [0, 1).
func pcgFloat64(p *rand.PCG) float64 {
	return float64(p.Uint64()<<11>>11) / (1 << 53)
}

// pcgInt64N is rand.New(p).Int64N(n) for n > 0: a mask when n is a power
// of two, else the high word of a 128-bit product, rejecting the few
// products whose low word would make some results likelier than others.
func pcgInt64N(p *rand.PCG, n int64) int64 {
	u := uint64(n)
	if u&(u-1) == 0 {
		return int64(p.Uint64() & (u - 1))
	}
	hi, lo := bits.Mul64(p.Uint64(), u)
	if lo < u {
		hi = pcgRetry(p, u, hi, lo)
	}
	return int64(hi)
}

// pcgRetry finishes pcgInt64N(p, u) for u not a power of two when its first
// product, hi and lo, has lo < u (rare): it draws again while lo falls
// below 2⁶⁴ mod u.
func pcgRetry(p *rand.PCG, u, hi, lo uint64) uint64 {
	thresh := -u % u // 2⁶⁴ mod u
	for lo < thresh {
		hi, lo = bits.Mul64(p.Uint64(), u)
	}
	return hi
}
