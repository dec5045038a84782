package fold

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// TestColumnReaderEveryType reads a value and a null of every declared type, scalar and
// array, from the Arrow layout offline.ArrowType gives it.
func TestColumnReaderEveryType(t *testing.T) {
	ts := time.Date(2026, 11, 1, 12, 30, 0, 123456000, time.UTC)
	cases := []struct {
		typ    string
		append func(b array.Builder)
		want   online.Value
	}{
		{"int32", func(b array.Builder) { b.(*array.Int32Builder).Append(-7) }, online.Int32(-7)},
		{"int64", func(b array.Builder) { b.(*array.Int64Builder).Append(1 << 40) }, online.Int64(1 << 40)},
		{"float32", func(b array.Builder) { b.(*array.Float32Builder).Append(1.5) }, online.Float32(1.5)},
		{"float64", func(b array.Builder) { b.(*array.Float64Builder).Append(-2.25) }, online.Float64(-2.25)},
		{"bool", func(b array.Builder) { b.(*array.BooleanBuilder).Append(true) }, online.Bool(true)},
		{"string", func(b array.Builder) { b.(*array.StringBuilder).Append("héllo") }, online.String("héllo")},
		{"bytes", func(b array.Builder) { b.(*array.BinaryBuilder).Append([]byte{0, 1, 2}) }, online.Bytes([]byte{0, 1, 2})},
		{"timestamp", func(b array.Builder) { b.(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro())) }, online.Timestamp(ts)},
		{"array<int32>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.Int32Builder).AppendValues([]int32{1, 2}, nil) })
		}, online.Int32s([]int32{1, 2})},
		{"array<int64>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.Int64Builder).AppendValues([]int64{3}, nil) })
		}, online.Int64s([]int64{3})},
		{"array<float32>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.Float32Builder).AppendValues([]float32{0.5, 1}, nil) })
		}, online.Float32s([]float32{0.5, 1})},
		{"array<float64>", func(b array.Builder) { list(b, func(array.Builder) {}) }, online.Float64s([]float64{})},
		{"array<bool>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.BooleanBuilder).AppendValues([]bool{true, false}, nil) })
		}, online.Bools([]bool{true, false})},
		{"array<string>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.StringBuilder).AppendValues([]string{"a", "bc"}, nil) })
		}, online.Strings([]string{"a", "bc"})},
		{"array<bytes>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.BinaryBuilder).AppendValues([][]byte{{9}}, nil) })
		}, online.BytesArray([][]byte{{9}})},
		{"array<timestamp>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro())) })
		}, online.Timestamps([]time.Time{ts})},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			typ := definitions.MustType(tc.typ)
			dt, err := offline.ArrowType(typ)
			require.NoError(t, err)
			b := array.NewBuilder(memory.DefaultAllocator, dt)
			defer b.Release()
			b.AppendNull()
			tc.append(b)
			col := b.NewArray()
			defer col.Release()
			read, err := ColumnReader(col, typ)
			require.NoError(t, err)
			require.True(t, read(0).IsNull())
			require.True(t, tc.want.Equal(read(1)), "got %v, want %v", read(1), tc.want)
		})
	}
	ints := array.NewInt64Builder(memory.DefaultAllocator)
	defer ints.Release()
	col := ints.NewArray()
	defer col.Release()
	_, err := ColumnReader(col, definitions.MustType("string"))
	require.ErrorContains(t, err, "column is int64, want string")
}

func list(b array.Builder, values func(array.Builder)) {
	lb := b.(*array.ListBuilder)
	lb.Append(true)
	values(lb.ValueBuilder())
}
