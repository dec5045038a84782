package offline

import (
	"context"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Convert casts arr to type to (see Readable for the conversions sources rely on). Timestamps
// are floored to the target unit (toward the past, also before 1970); any other lossy
// conversion is an error. The caller owns the result.
func Convert(ctx context.Context, arr arrow.Array, to arrow.DataType, mem memory.Allocator) (arrow.Array, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	if arrow.TypeEqual(arr.DataType(), to) {
		arr.Retain()
		return arr, nil
	}
	// arrow-go's list-to-list cast leaks a buffer; cast the values and keep the offsets.
	if l, ok := arr.(*array.List); ok {
		if lt, ok := to.(*arrow.ListType); ok {
			vals, err := Convert(ctx, l.ListValues(), lt.Elem(), mem)
			if err != nil {
				return nil, err
			}
			defer vals.Release()
			d := l.Data()
			nd := array.NewData(to, d.Len(), d.Buffers(), []arrow.ArrayData{vals.Data()}, d.NullN(), d.Offset())
			defer nd.Release()
			return array.NewListData(nd), nil
		}
	}
	if ts, ok := arr.(*array.Timestamp); ok {
		if tt, ok := to.(*arrow.TimestampType); ok {
			return convertTimestamp(ts, tt, mem)
		}
	}
	return compute.CastArray(compute.WithAllocator(ctx, mem), arr, compute.SafeCastOptions(to))
}

// convertTimestamp changes a timestamp column's unit (and zone label: the values are UTC
// either way). A finer unit is floored to the coarser one — toward the past, also before
// 1970 — so a value lands in the same unit the row-group pruning and the join engine put it
// in; arrow's cast truncates toward zero instead, which moved -500 ns to 0 µs. A coarser unit
// is scaled up; a value that overflows int64 is an error.
func convertTimestamp(ts *array.Timestamp, to *arrow.TimestampType, mem memory.Allocator) (arrow.Array, error) {
	from := ts.DataType().(*arrow.TimestampType).Unit
	fm, tm := int64(from.Multiplier()), int64(to.Unit.Multiplier()) // nanoseconds per unit
	b := array.NewTimestampBuilder(mem, to)
	defer b.Release()
	b.Reserve(ts.Len())
	for i, v := range ts.TimestampValues() {
		if ts.IsNull(i) {
			b.UnsafeAppendBoolToBitmap(false)
			continue
		}
		x := int64(v)
		switch {
		case fm < tm: // finer to coarser: floor
			d := tm / fm
			q := x / d
			if x%d < 0 {
				q--
			}
			x = q
		case fm > tm: // coarser to finer: scale, checked
			m := fm / tm
			if x > math.MaxInt64/m || x < math.MinInt64/m {
				return nil, fmt.Errorf("timestamp %d %s overflows in %s", x, from, to.Unit)
			}
			x *= m
		}
		b.UnsafeAppend(arrow.Timestamp(x))
	}
	return b.NewArray(), nil
}
