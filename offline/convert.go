package offline

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Convert casts arr to type to (see Readable for the conversions sources rely on). Timestamps
// are truncated to the target unit; any other lossy conversion is an error. The caller owns
// the result.
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
	opts := compute.SafeCastOptions(to)
	if to.ID() == arrow.TIMESTAMP {
		opts = compute.UnsafeCastOptions(to)
	}
	return compute.CastArray(compute.WithAllocator(ctx, mem), arr, opts)
}
