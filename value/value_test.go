package value_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/value"
)

func TestValueAccessors(t *testing.T) {
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6789, time.UTC)
	require.True(t, value.Null().IsNull())
	require.True(t, value.Value{}.IsNull())
	require.Equal(t, int32(-3), value.NewInt32(-3).Int32())
	require.Equal(t, float32(1.5), value.NewFloat32(1.5).Float32())
	require.Equal(t, 2.5, value.NewFloat64(2.5).Float64())
	require.True(t, value.NewBool(true).Bool())
	require.Equal(t, ts.Truncate(time.Microsecond), value.NewTimestamp(ts).Time())
	require.Equal(t, []byte{1, 2}, value.NewBytes([]byte{1, 2}).BytesValue())
	require.Equal(t, []int64{1, -2}, value.NewInt64s([]int64{1, -2}).Int64s())
	require.Equal(t, []float64{1, -2}, value.NewFloat64s([]float64{1, -2}).Float64s())
	require.Equal(t, []bool{true, false}, value.NewBools([]bool{true, false}).Bools())
	require.Equal(t, []time.Time{ts.Truncate(time.Microsecond)}, value.NewTimestamps([]time.Time{ts}).Timestamps())
	require.Equal(t, [][]byte{{1}, {}}, value.NewBytesArray([][]byte{{1}, {}}).BytesArray())
	require.Equal(t, 3, value.NewStrings([]string{"a", "", "c"}).Len())
	require.Equal(t, 2, value.NewFloat32s([]float32{1, 2}).Len())
	// Wrong-type accessors give zero values, never panic.
	require.Zero(t, value.NewString("x").Int64())
	require.Nil(t, value.NewInt64(1).Float32s())
	require.Equal(t, "", value.NewInt64(1).Str())
	require.Equal(t, value.MustType("array<string>"), value.NewStrings(nil).Type())
}
