package online

import (
	"encoding/binary"
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

// le32, le64 and uvarintString read the row format's little-endian and varint fields from a
// string without copying it.
func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(le32(s)) | uint64(le32(s[4:]))<<32
}

func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -1
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
