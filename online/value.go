package online

import (
	"time"

	"github.com/quiverfs/quiver/value"
)

// Value is the one value type, value.Value. The alias and the constructors below keep the
// call sites that name them through online; new code uses package value.
type Value = value.Value

// Null returns the null value.
func Null() Value { return value.Null() }

// Int32 is value.NewInt32.
func Int32(v int32) Value { return value.NewInt32(v) }

// Int64 is value.NewInt64.
func Int64(v int64) Value { return value.NewInt64(v) }

// Float32 is value.NewFloat32.
func Float32(v float32) Value { return value.NewFloat32(v) }

// Float64 is value.NewFloat64.
func Float64(v float64) Value { return value.NewFloat64(v) }

// Bool is value.NewBool.
func Bool(v bool) Value { return value.NewBool(v) }

// String is value.NewString.
func String(v string) Value { return value.NewString(v) }

// Bytes is value.NewBytes.
func Bytes(b []byte) Value { return value.NewBytes(b) }

// Timestamp is value.NewTimestamp.
func Timestamp(t time.Time) Value { return value.NewTimestamp(t) }

// Int32s is value.NewInt32s.
func Int32s(v []int32) Value { return value.NewInt32s(v) }

// Int64s is value.NewInt64s.
func Int64s(v []int64) Value { return value.NewInt64s(v) }

// Float32s is value.NewFloat32s.
func Float32s(v []float32) Value { return value.NewFloat32s(v) }

// Float64s is value.NewFloat64s.
func Float64s(v []float64) Value { return value.NewFloat64s(v) }

// Bools is value.NewBools.
func Bools(v []bool) Value { return value.NewBools(v) }

// Timestamps is value.NewTimestamps.
func Timestamps(v []time.Time) Value { return value.NewTimestamps(v) }

// Strings is value.NewStrings.
func Strings(v []string) Value { return value.NewStrings(v) }

// BytesArray is value.NewBytesArray.
func BytesArray(v [][]byte) Value { return value.NewBytesArray(v) }
