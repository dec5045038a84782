package pitjoin

import (
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// nullTS stands for a null timestamp: smaller than every real one, so a null created_ts loses
// every tie-break and passes every created-cutoff.
const nullTS = math.MinInt64

// checkTimestamp reports whether a column can serve as a timestamp.
func checkTimestamp(dt arrow.DataType) bool {
	_, ok := dt.(*arrow.TimestampType)
	return ok
}

// tsMicros appends the column's values as UTC microseconds since the epoch (nullTS for nulls).
// Coarser units are scaled up, nanoseconds floored.
func tsMicros(a arrow.Array, out []int64) ([]int64, error) {
	ts, ok := a.(*array.Timestamp)
	if !ok {
		return out, fmt.Errorf("type %s is not a timestamp: %w", a.DataType(), ErrTypeMismatch)
	}
	unit := ts.DataType().(*arrow.TimestampType).Unit
	vals := ts.TimestampValues()
	nulls := ts.NullN() > 0
	base := len(out)
	out = append(out, make([]int64, len(vals))...)
	dst := out[base:]
	for i, v := range vals {
		x := int64(v)
		switch unit {
		case arrow.Second:
			x = satMul(x, 1_000_000)
		case arrow.Millisecond:
			x = satMul(x, 1_000)
		case arrow.Nanosecond:
			q := x / 1000
			if x%1000 < 0 {
				q--
			}
			x = q
		}
		if x == nullTS {
			x++ // keep the sentinel for nulls only
		}
		dst[i] = x
	}
	if nulls {
		for i := range dst {
			if ts.IsNull(i) {
				dst[i] = nullTS
			}
		}
	}
	return out, nil
}

func satMul(x, m int64) int64 {
	if x > math.MaxInt64/m {
		return math.MaxInt64
	}
	if x < math.MinInt64/m {
		return math.MinInt64 + 1
	}
	return x * m
}

// satSub is a - b, saturating at the int64 range.
func satSub(a, b int64) int64 {
	r := a - b
	if b > 0 && r > a {
		return math.MinInt64
	}
	return r
}
