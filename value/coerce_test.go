package value_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/value"
)

// TestCoerce is the one rule, case by case (docs/definitions.md, "Values for a declared type").
func TestCoerce(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	cases := []struct {
		name string
		in   value.Value
		want string
		out  value.Value // the zero Value (null) with err set: refused
		err  string
	}{
		{"null is null of any type", value.Null(), "array<timestamp>", value.Null(), ""},
		{"same type", value.NewString("x"), "string", value.NewString("x"), ""},
		{"int32 to int64", value.NewInt32(-7), "int64", value.NewInt64(-7), ""},
		{"int64 to int32 in range", value.NewInt64(math.MinInt32), "int32", value.NewInt32(math.MinInt32), ""},
		{"int64 to int32 out of range", value.NewInt64(math.MaxInt32 + 1), "int32", value.Value{}, "want int32, got int64: 2147483648 does not fit"},
		{"int64 to float64 rounds", value.NewInt64(1<<53 + 1), "float64", value.NewFloat64(1 << 53), ""},
		{"int32 to float32 rounds", value.NewInt32(1<<24 + 1), "float32", value.NewFloat32(1 << 24), ""},
		{"int64 to float32", value.NewInt64(3), "float32", value.NewFloat32(3), ""},
		{"float32 to float64 exactly", value.NewFloat32(0.1), "float64", value.NewFloat64(float64(float32(0.1))), ""},
		{"float64 to float32 rounds", value.NewFloat64(0.1), "float32", value.NewFloat32(0.1), ""},
		{"float64 to float32 keeps infinities", value.NewFloat64(math.Inf(-1)), "float32", value.NewFloat32(float32(math.Inf(-1))), ""},
		{"float64 to float32 rounds to the largest", value.NewFloat64(math.MaxFloat32), "float32", value.NewFloat32(math.MaxFloat32), ""},
		{"float64 beyond float32", value.NewFloat64(1e39), "float32", value.Value{}, "want float32, got float64: 1e+39 is beyond float32's range"},
		{"float to int", value.NewFloat64(1), "int64", value.Value{}, "want int64, got float64"},
		{"string to bytes", value.NewString("é"), "bytes", value.NewBytes([]byte("é")), ""},
		{"bytes to string", value.NewBytes([]byte("x")), "string", value.Value{}, "want string, got bytes"},
		{"number to string", value.NewInt64(1), "string", value.Value{}, "want "},
		{"string to number", value.NewString("1"), "int64", value.Value{}, "want "},
		{"bool to int", value.NewBool(true), "int32", value.Value{}, "want "},
		{"timestamp to int", value.NewTimestamp(ts), "int64", value.Value{}, "want "},
		{"scalar to array", value.NewInt64(1), "array<int64>", value.Value{}, "want "},
		{"array to scalar", value.NewInt64s([]int64{1}), "int64", value.Value{}, "want "},
		{"array element-wise", value.NewFloat64s([]float64{0.1, -2}), "array<float32>", value.NewFloat32s([]float32{0.1, -2}), ""},
		{"array of int64 to int32", value.NewInt64s([]int64{1, 1 << 40}), "array<int32>", value.Value{}, "want array<int32>, got array<int64>: element 1: 1099511627776 does not fit"},
		{"empty array", value.NewInt32s(nil), "array<float64>", value.NewFloat64s([]float64{}), ""},
		{"array of strings to bytes", value.NewStrings([]string{"a", ""}), "array<bytes>", value.NewBytesArray([][]byte{[]byte("a"), {}}), ""},
		{"array of timestamps", value.NewTimestamps([]time.Time{ts}), "array<timestamp>", value.NewTimestamps([]time.Time{ts}), ""},
		{"to an invalid type", value.NewInt64(1), "", value.Value{}, "want "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var want value.Type
			if tc.want != "" {
				want = value.MustType(tc.want)
			}
			got, err := value.Coerce(tc.in, want)
			if tc.err != "" {
				require.ErrorIs(t, err, value.ErrType)
				require.ErrorContains(t, err, tc.err)
				outOfRange := strings.Contains(tc.err, "does not fit") || strings.Contains(tc.err, "beyond")
				var te *value.TypeError
				require.ErrorAs(t, err, &te)
				require.Equal(t, want, te.Want)
				require.Equal(t, outOfRange, value.CanCoerce(tc.in.Type(), want), "CanCoerce is false where no value of the type converts")
				return
			}
			require.NoError(t, err)
			require.True(t, tc.out.Equal(got), "want %#v, got %#v", tc.out, got)
			require.True(t, value.CanCoerce(tc.in.Type(), want) || tc.in.IsNull())
		})
	}
}

// TestCoerceRoundTripsWidening: a value widened and narrowed back is itself, for every value
// a narrower type holds.
func TestCoerceRoundTripsWidening(t *testing.T) {
	for _, x := range []int32{math.MinInt32, -1, 0, 1, math.MaxInt32} {
		w, err := value.Coerce(value.NewInt32(x), value.MustType("int64"))
		require.NoError(t, err)
		n, err := value.Coerce(w, value.MustType("int32"))
		require.NoError(t, err)
		require.Equal(t, x, n.Int32())
	}
	for _, x := range []float32{-math.MaxFloat32, -0.1, 0, math.SmallestNonzeroFloat32, 1.5, math.MaxFloat32, float32(math.Inf(1))} {
		w, err := value.Coerce(value.NewFloat32(x), value.MustType("float64"))
		require.NoError(t, err)
		n, err := value.Coerce(w, value.MustType("float32"))
		require.NoError(t, err)
		require.Equal(t, math.Float32bits(x), math.Float32bits(n.Float32()))
	}
}
