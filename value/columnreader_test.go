package value_test

import (
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/value"
)

// TestColumnReaderEveryType reads a value and a null of every declared type, scalar and
// array, from the Arrow layout ArrowType gives it, built here without value.Append.
func TestColumnReaderEveryType(t *testing.T) {
	ts := time.Date(2026, 11, 1, 12, 30, 0, 123456000, time.UTC)
	cases := []struct {
		typ    string
		append func(b array.Builder)
		want   value.Value
	}{
		{"int32", func(b array.Builder) { b.(*array.Int32Builder).Append(-7) }, value.NewInt32(-7)},
		{"int64", func(b array.Builder) { b.(*array.Int64Builder).Append(1 << 40) }, value.NewInt64(1 << 40)},
		{"float32", func(b array.Builder) { b.(*array.Float32Builder).Append(1.5) }, value.NewFloat32(1.5)},
		{"float64", func(b array.Builder) { b.(*array.Float64Builder).Append(-2.25) }, value.NewFloat64(-2.25)},
		{"bool", func(b array.Builder) { b.(*array.BooleanBuilder).Append(true) }, value.NewBool(true)},
		{"string", func(b array.Builder) { b.(*array.StringBuilder).Append("héllo") }, value.NewString("héllo")},
		{"bytes", func(b array.Builder) { b.(*array.BinaryBuilder).Append([]byte{0, 1, 2}) }, value.NewBytes([]byte{0, 1, 2})},
		{"timestamp", func(b array.Builder) { b.(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro())) }, value.NewTimestamp(ts)},
		{"array<int32>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.Int32Builder).AppendValues([]int32{1, 2}, nil) })
		}, value.NewInt32s([]int32{1, 2})},
		{"array<int64>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.Int64Builder).AppendValues([]int64{3}, nil) })
		}, value.NewInt64s([]int64{3})},
		{"array<float32>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.Float32Builder).AppendValues([]float32{0.5, 1}, nil) })
		}, value.NewFloat32s([]float32{0.5, 1})},
		{"array<float64>", func(b array.Builder) { list(b, func(array.Builder) {}) }, value.NewFloat64s([]float64{})},
		{"array<bool>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.BooleanBuilder).AppendValues([]bool{true, false}, nil) })
		}, value.NewBools([]bool{true, false})},
		{"array<string>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.StringBuilder).AppendValues([]string{"a", "bc"}, nil) })
		}, value.NewStrings([]string{"a", "bc"})},
		{"array<bytes>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.BinaryBuilder).AppendValues([][]byte{{9}}, nil) })
		}, value.NewBytesArray([][]byte{{9}})},
		{"array<timestamp>", func(b array.Builder) {
			list(b, func(v array.Builder) { v.(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro())) })
		}, value.NewTimestamps([]time.Time{ts})},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			typ := value.MustType(tc.typ)
			dt, err := value.ArrowType(typ)
			require.NoError(t, err)
			b := array.NewBuilder(memory.DefaultAllocator, dt)
			defer b.Release()
			b.AppendNull()
			tc.append(b)
			col := b.NewArray()
			defer col.Release()
			read, err := value.ColumnReader(col, typ)
			require.NoError(t, err)
			require.True(t, read(0).IsNull())
			require.True(t, tc.want.Equal(read(1)), "got %v, want %v", read(1), tc.want)
		})
	}
	ints := array.NewInt64Builder(memory.DefaultAllocator)
	defer ints.Release()
	col := ints.NewArray()
	defer col.Release()
	_, err := value.ColumnReader(col, value.MustType("string"))
	require.ErrorContains(t, err, "column is int64, want string")
}

func list(b array.Builder, values func(array.Builder)) {
	lb := b.(*array.ListBuilder)
	lb.Append(true)
	values(lb.ValueBuilder())
}
