package value_test

import (
	"math"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/value"
)

// everyType has a non-null value of every type, then a null.
func everyType() map[string][]value.Value {
	ts := time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC)
	return map[string][]value.Value{
		"int32":            {value.NewInt32(math.MinInt32), value.Null()},
		"int64":            {value.NewInt64(math.MaxInt64), value.Null()},
		"float32":          {value.NewFloat32(float32(math.NaN())), value.Null()},
		"float64":          {value.NewFloat64(math.Copysign(0, -1)), value.Null()},
		"bool":             {value.NewBool(true), value.Null()},
		"string":           {value.NewString("héllo\x00"), value.Null()},
		"bytes":            {value.NewBytes([]byte{0, 0xff}), value.Null()},
		"timestamp":        {value.NewTimestamp(ts), value.Null()},
		"array<int32>":     {value.NewInt32s([]int32{1, -2}), value.Null()},
		"array<int64>":     {value.NewInt64s([]int64{}), value.Null()},
		"array<float32>":   {value.NewFloat32s([]float32{1.5}), value.Null()},
		"array<float64>":   {value.NewFloat64s([]float64{math.Pi, math.Inf(1)}), value.Null()},
		"array<bool>":      {value.NewBools([]bool{false, true}), value.Null()},
		"array<string>":    {value.NewStrings([]string{"", "a"}), value.Null()},
		"array<bytes>":     {value.NewBytesArray([][]byte{{1}, {}}), value.Null()},
		"array<timestamp>": {value.NewTimestamps([]time.Time{ts, ts.Add(time.Hour)}), value.Null()},
	}
}

// TestArrowRoundTrip: every type's values build a column of its canonical Arrow type and read
// back as the same values, nulls included.
func TestArrowRoundTrip(t *testing.T) {
	for name, vals := range everyType() {
		ty := value.MustType(name)
		col, err := value.NewArrowArray(memory.DefaultAllocator, ty, vals)
		require.NoError(t, err, name)
		dt, err := value.ArrowType(ty)
		require.NoError(t, err)
		require.True(t, arrow.TypeEqual(dt, col.DataType()), name)
		back, ok := value.TypeFromArrow(col.DataType())
		require.True(t, ok)
		require.Equal(t, ty, back)
		read, err := value.ColumnReader(col, ty)
		require.NoError(t, err, name)
		for i, v := range vals {
			require.True(t, v.Equal(read(i)), "%s row %d: want %#v, got %#v", name, i, v, read(i))
		}
		col.Release()
	}
	_, err := value.NewArrowArray(nil, value.MustType("int64"), []value.Value{value.NewInt32(1)})
	require.ErrorIs(t, err, value.ErrType)
	_, err = value.ColumnReader(array.NewNull(1), value.MustType("int64"))
	require.ErrorContains(t, err, "column is null, want int64")
}

// TestColumnReaderOtherLayouts: large strings and binaries and timestamps of other units and
// zones read as their types, timestamps in UTC truncated to microseconds.
func TestColumnReaderOtherLayouts(t *testing.T) {
	mem := memory.DefaultAllocator
	ls := array.NewLargeStringBuilder(mem)
	ls.Append("x")
	read, err := value.ColumnReader(ls.NewArray(), value.MustType("string"))
	require.NoError(t, err)
	require.Equal(t, "x", read(0).Str())

	lb := array.NewBinaryBuilder(mem, arrow.BinaryTypes.LargeBinary)
	lb.Append([]byte{7})
	read, err = value.ColumnReader(lb.NewArray(), value.MustType("bytes"))
	require.NoError(t, err)
	require.Equal(t, []byte{7}, read(0).BytesValue())

	at := time.Date(2026, 3, 4, 5, 6, 7, 891234567, time.UTC)
	tb := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "Europe/Berlin"})
	tb.Append(arrow.Timestamp(at.UnixNano()))
	read, err = value.ColumnReader(tb.NewArray(), value.MustType("timestamp"))
	require.NoError(t, err)
	require.Equal(t, at.Truncate(time.Microsecond), read(0).Time())
}
