// Package aggfn is the partial-aggregate kernel of windowed aggregations, shared by the
// offline point-in-time join (offline/pitjoin) and the online tiles (online), so that a
// windowed feature is computed the same way for training and for serving.
//
// A State is the partial aggregate of one event column over some events: what count, sum,
// mean, min, max and last need. States merge associatively; count_distinct keeps a set of
// DistinctKey values beside them.
package aggfn

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// Func is an aggregation function (the names of definitions.AggFunc).
type Func string

// The functions.
const (
	Count         Func = "count"
	Sum           Func = "sum"
	Mean          Func = "mean"
	Min           Func = "min"
	Max           Func = "max"
	Last          Func = "last"
	CountDistinct Func = "count_distinct"
)

// State is a partial aggregate. Numbers are held as 64 bits: for an integer column (and
// timestamps, and bools as 0 or 1) an int64, for a float column a float64's bits; every call
// on a State says which with float. The zero State aggregates no events.
//
// An integer sum is exact in 128 bits, SumHi:Sum (two's complement, Sum the low half), so it
// never wraps and does not depend on the order of events or merges; Result clamps it to the
// int64 range (saturates).
type State struct {
	N             int64
	Sum, Min, Max uint64
	SumHi         int64
	// LastEv and LastCr are the (event_ts, created_ts) of the last event, in any one unit.
	LastEv, LastCr int64
	Last           uint64
	// LastStr is the last event's value of a string column (AddString), for last.
	LastStr string
}

// Add folds one non-null event value (bits) with timestamps ev and cr into s.
func (s *State) Add(bits uint64, ev, cr int64, float bool) {
	one := State{N: 1, Sum: bits, Min: bits, Max: bits, LastEv: ev, LastCr: cr, Last: bits}
	if !float {
		one.SumHi = Widen(bits)
	}
	*s = Merge(*s, one, float)
}

// AddString folds one non-null event value of a string column, s, with timestamps ev and cr:
// it counts (count) and is last's candidate (LastStr); sum, min and max do not apply.
func (s *State) AddString(str string, ev, cr int64) {
	*s = Merge(*s, State{N: 1, LastEv: ev, LastCr: cr, LastStr: str}, false)
}

// Merge is the partial aggregate of a's and b's events. Last is the value of the event with the
// greatest (event_ts, created_ts), b's on a tie. Float sums add in the order given; NaN orders
// above every number, as in SQL engines (DuckDB, Trino, Iceberg): min ignores NaN unless every
// value is NaN, max is NaN when any value is.
func Merge(a, b State, float bool) State {
	if a.N == 0 {
		return b
	}
	if b.N == 0 {
		return a
	}
	r := State{N: a.N + b.N}
	if float {
		r.Sum = math.Float64bits(math.Float64frombits(a.Sum) + math.Float64frombits(b.Sum))
		r.Min = math.Float64bits(minNaN(math.Float64frombits(a.Min), math.Float64frombits(b.Min)))
		r.Max = math.Float64bits(maxNaN(math.Float64frombits(a.Max), math.Float64frombits(b.Max)))
	} else {
		r.Sum, r.SumHi = add128(a.Sum, a.SumHi, b.Sum, b.SumHi)
		r.Min = uint64(min(int64(a.Min), int64(b.Min)))
		r.Max = uint64(max(int64(a.Max), int64(b.Max)))
	}
	if b.LastEv > a.LastEv || (b.LastEv == a.LastEv && b.LastCr >= a.LastCr) {
		r.LastEv, r.LastCr, r.Last, r.LastStr = b.LastEv, b.LastCr, b.Last, b.LastStr
	} else {
		r.LastEv, r.LastCr, r.Last, r.LastStr = a.LastEv, a.LastCr, a.Last, a.LastStr
	}
	return r
}

// Widen is the 128-bit high half of an int64 x: its sign extension, for a State's SumHi.
func Widen(x uint64) int64 { return int64(x) >> 63 }

func add128(alo uint64, ahi int64, blo uint64, bhi int64) (uint64, int64) {
	lo, carry := bits.Add64(alo, blo, 0)
	return lo, ahi + bhi + int64(carry)
}

// intSum is an integer sum clamped to int64, and the sum as a float64.
func (s State) intSum() (int64, float64) {
	if s.SumHi == Widen(s.Sum) { // fits in int64
		return int64(s.Sum), float64(int64(s.Sum))
	}
	f := float64(s.SumHi)*(1<<64) + float64(s.Sum)
	if s.SumHi < 0 {
		return math.MinInt64, f
	}
	return math.MaxInt64, f
}

func minNaN(a, b float64) float64 {
	if math.IsNaN(a) {
		return b
	}
	if math.IsNaN(b) {
		return a
	}
	return math.Min(a, b)
}

func maxNaN(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return math.Max(a, b)
}

// Result is fn over the events of s (distinct: how many distinct values they hold, for
// count_distinct), as 64 bits: an int64 for count and count_distinct, a float64 for mean, and
// for sum, min, max and last a number of the column's kind (float says which). valid is false
// when there is no value: no events, for every function but count and count_distinct (0).
func (s State) Result(fn Func, float bool, distinct int64) (bits uint64, valid bool) {
	switch fn {
	case Count:
		return uint64(s.N), true
	case CountDistinct:
		return uint64(distinct), true
	}
	if s.N == 0 {
		return 0, false
	}
	switch fn {
	case Sum:
		if float {
			return s.Sum, true
		}
		sum, _ := s.intSum()
		return uint64(sum), true
	case Mean:
		if float {
			return math.Float64bits(math.Float64frombits(s.Sum) / float64(s.N)), true
		}
		_, sum := s.intSum()
		return math.Float64bits(sum / float64(s.N)), true
	case Min:
		return s.Min, true
	case Max:
		return s.Max, true
	case Last:
		return s.Last, true
	}
	return 0, false
}

// DistinctKey is the set key count_distinct counts a non-string value by: its 64 bits, little
// endian. (A string or bytes value is its own key.)
func DistinctKey(bits uint64) string {
	return string(binary.LittleEndian.AppendUint64(make([]byte, 0, 8), bits))
}
