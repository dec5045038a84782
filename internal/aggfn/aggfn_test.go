package aggfn_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/aggfn"
)

func f(x float64) uint64 { return math.Float64bits(x) }
func i(x int64) uint64   { return uint64(x) }

// fold adds the values, event time k for the k-th.
func fold(vals []uint64, float bool) aggfn.State {
	var s aggfn.State
	for k, v := range vals {
		s.Add(v, int64(k), 0, float)
	}
	return s
}

// TestMergeIsAssociative: merging the partials of any split of a run of integer events, in
// any grouping, gives the partial of the whole run.
func TestMergeIsAssociative(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n := rng.IntN(20)
		vals := make([]uint64, n)
		for k := range vals {
			vals[k] = i(rng.Int64N(2000) - 1000)
		}
		whole := fold(vals, false)
		a, b := rng.IntN(n+1), 0
		b = a + rng.IntN(n-a+1)
		parts := []aggfn.State{}
		for _, r := range [][2]int{{0, a}, {a, b}, {b, n}} {
			var s aggfn.State
			for k := r[0]; k < r[1]; k++ {
				s.Add(vals[k], int64(k), 0, false)
			}
			parts = append(parts, s)
		}
		left := aggfn.Merge(aggfn.Merge(parts[0], parts[1], false), parts[2], false)
		right := aggfn.Merge(parts[0], aggfn.Merge(parts[1], parts[2], false), false)
		require.Equal(t, whole, left)
		require.Equal(t, whole, right)
	}
}

// TestResults: every function over some events and over none.
func TestResults(t *testing.T) {
	ints := fold([]uint64{i(3), i(-7), i(10)}, false)
	floats := fold([]uint64{f(1.5), f(-2), f(4)}, true)
	cases := []struct {
		fn    aggfn.Func
		s     aggfn.State
		float bool
		want  uint64
	}{
		{aggfn.Count, ints, false, i(3)},
		{aggfn.Sum, ints, false, i(6)},
		{aggfn.Mean, ints, false, f(2)},
		{aggfn.Min, ints, false, i(-7)},
		{aggfn.Max, ints, false, i(10)},
		{aggfn.Last, ints, false, i(10)},
		{aggfn.Sum, floats, true, f(3.5)},
		{aggfn.Mean, floats, true, f(3.5 / 3)},
		{aggfn.Min, floats, true, f(-2)},
		{aggfn.Max, floats, true, f(4)},
		{aggfn.Last, floats, true, f(4)},
	}
	for _, tc := range cases {
		got, ok := tc.s.Result(tc.fn, tc.float, 0)
		require.True(t, ok, tc.fn)
		require.Equal(t, tc.want, got, "%s", tc.fn)
	}
	got, ok := ints.Result(aggfn.CountDistinct, false, 2)
	require.True(t, ok)
	require.Equal(t, i(2), got)

	var none aggfn.State
	for _, fn := range []aggfn.Func{aggfn.Sum, aggfn.Mean, aggfn.Min, aggfn.Max, aggfn.Last} {
		_, ok := none.Result(fn, true, 0)
		require.False(t, ok, "%s of no events is null", fn)
	}
	got, ok = none.Result(aggfn.Count, false, 0)
	require.True(t, ok)
	require.Zero(t, got, "count of no events is 0")
}

// TestNaNOrdersAboveNumbers: min ignores NaN unless every value is NaN; max is NaN when any
// value is.
func TestNaNOrdersAboveNumbers(t *testing.T) {
	nan := math.NaN()
	s := fold([]uint64{f(nan), f(2), f(-1)}, true)
	mn, _ := s.Result(aggfn.Min, true, 0)
	mx, _ := s.Result(aggfn.Max, true, 0)
	require.Equal(t, -1.0, math.Float64frombits(mn))
	require.True(t, math.IsNaN(math.Float64frombits(mx)))
	s = fold([]uint64{f(nan)}, true)
	mn, _ = s.Result(aggfn.Min, true, 0)
	require.True(t, math.IsNaN(math.Float64frombits(mn)))
}

// TestLastIsTheLatestEvent: last is the value of the greatest (event_ts, created_ts) whatever
// the merge order; on a full tie the later-merged side wins.
func TestLastIsTheLatestEvent(t *testing.T) {
	var early, late aggfn.State
	early.Add(i(1), 10, 5, false)
	late.Add(i(2), 10, 6, false)
	for _, s := range []aggfn.State{aggfn.Merge(early, late, false), aggfn.Merge(late, early, false)} {
		v, _ := s.Result(aggfn.Last, false, 0)
		require.Equal(t, i(2), v)
	}
	var tie aggfn.State
	tie.Add(i(3), 10, 6, false)
	v, _ := aggfn.Merge(late, tie, false).Result(aggfn.Last, false, 0)
	require.Equal(t, i(3), v)
}

func TestDistinctKey(t *testing.T) {
	require.Equal(t, "\x01\x00\x00\x00\x00\x00\x00\x00", aggfn.DistinctKey(1))
	require.NotEqual(t, aggfn.DistinctKey(i(-1)), aggfn.DistinctKey(i(1)))
}

// TestIntegerSumSaturates (issue 27): an integer sum is exact in 128 bits whatever the order
// of events and merges, and its result is clamped to int64 instead of wrapping.
func TestIntegerSumSaturates(t *testing.T) {
	sum := func(s aggfn.State) int64 {
		b, ok := s.Result(aggfn.Sum, false, 0)
		require.True(t, ok)
		return int64(b)
	}
	require.Equal(t, int64(math.MaxInt64), sum(fold([]uint64{i(math.MaxInt64), i(1)}, false)))
	require.Equal(t, int64(math.MinInt64), sum(fold([]uint64{i(math.MinInt64), i(-1), i(-5)}, false)))
	// The true sum fits: exact, in any order.
	for _, vals := range [][]uint64{
		{i(math.MaxInt64), i(1), i(-1)},
		{i(1), i(math.MaxInt64), i(-1)},
		{i(-1), i(1), i(math.MaxInt64)},
	} {
		require.Equal(t, int64(math.MaxInt64), sum(fold(vals, false)))
	}
	require.Equal(t, int64(-5), sum(fold([]uint64{i(math.MaxInt64), i(math.MaxInt64), i(math.MinInt64), i(math.MinInt64), i(-3)}, false))) // 2(2^63-1) - 2·2^63 - 3
	// mean of a sum past int64 is the true mean.
	b, ok := fold([]uint64{i(math.MaxInt64), i(math.MaxInt64)}, false).Result(aggfn.Mean, false, 0)
	require.True(t, ok)
	require.InDelta(t, float64(math.MaxInt64), math.Float64frombits(b), 1e3)
}

// TestLastString (issue 27): last of a string column is the value of the event with the
// greatest (event_ts, created_ts), merged in any order.
func TestLastString(t *testing.T) {
	var a, b aggfn.State
	a.AddString("x", 5, 1)
	a.AddString("y", 3, 9)
	b.AddString("z", 5, 2)
	b.AddString("w", 1, 0)
	for _, s := range []aggfn.State{aggfn.Merge(a, b, false), aggfn.Merge(b, a, false)} {
		require.Equal(t, "z", s.LastStr)
		require.Equal(t, int64(4), s.N)
	}
}
