package online

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/quiverfs/quiver/definitions"
)

// Value is one typed feature or join-key value, or null. It is a small struct (32 bytes) that
// holds scalars inline and strings, bytes and arrays as an immutable string in the encoded
// array form of docs/online-format.md, so values decoded from a store share the store's reply
// buffer instead of being copied or boxed. The zero Value is null.
//
// Arrays may be empty but hold no null elements; a whole array may be null.
type Value struct {
	typ definitions.Type // Elem == definitions.Invalid: null
	num uint64           // int32, int64, bool, timestamp (µs) and float bits
	str string           // string, bytes, array payload
}

// Null returns the null value.
func Null() Value { return Value{} }

// Int32 returns an int32 value.
func Int32(v int32) Value {
	return Value{typ: definitions.Type{Elem: definitions.Int32}, num: uint64(int64(v))}
}

// Int64 returns an int64 value.
func Int64(v int64) Value {
	return Value{typ: definitions.Type{Elem: definitions.Int64}, num: uint64(v)}
}

// Float32 returns a float32 value.
func Float32(v float32) Value {
	return Value{typ: definitions.Type{Elem: definitions.Float32}, num: uint64(math.Float32bits(v))}
}

// Float64 returns a float64 value.
func Float64(v float64) Value {
	return Value{typ: definitions.Type{Elem: definitions.Float64}, num: math.Float64bits(v)}
}

// Bool returns a bool value.
func Bool(v bool) Value {
	var n uint64
	if v {
		n = 1
	}
	return Value{typ: definitions.Type{Elem: definitions.Bool}, num: n}
}

// String returns a string value.
func String(v string) Value { return Value{typ: definitions.Type{Elem: definitions.String}, str: v} }

// Bytes returns a bytes value; b is copied.
func Bytes(b []byte) Value {
	return Value{typ: definitions.Type{Elem: definitions.Bytes}, str: string(b)}
}

// Timestamp returns a timestamp value, truncated to microseconds (Quiver's precision).
func Timestamp(t time.Time) Value {
	return Value{typ: definitions.Type{Elem: definitions.Timestamp}, num: uint64(t.UnixMicro())}
}

// Int32s returns an array<int32> value; v is copied.
func Int32s(v []int32) Value {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return arrayValue(definitions.Int32, b)
}

// Int64s returns an array<int64> value; v is copied.
func Int64s(v []int64) Value {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return arrayValue(definitions.Int64, b)
}

// Float32s returns an array<float32> value; v is copied.
func Float32s(v []float32) Value {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return arrayValue(definitions.Float32, b)
}

// Float64s returns an array<float64> value; v is copied.
func Float64s(v []float64) Value {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return arrayValue(definitions.Float64, b)
}

// Bools returns an array<bool> value; v is copied.
func Bools(v []bool) Value {
	b := make([]byte, len(v))
	for i, x := range v {
		if x {
			b[i] = 1
		}
	}
	return arrayValue(definitions.Bool, b)
}

// Timestamps returns an array<timestamp> value, truncated to microseconds; v is copied.
func Timestamps(v []time.Time) Value {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x.UnixMicro()))
	}
	return arrayValue(definitions.Timestamp, b)
}

// Strings returns an array<string> value; v is copied.
func Strings(v []string) Value {
	n := 0
	for _, s := range v {
		n += binary.MaxVarintLen32 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range v {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return arrayValue(definitions.String, b)
}

// BytesArray returns an array<bytes> value; v is copied.
func BytesArray(v [][]byte) Value {
	n := 0
	for _, s := range v {
		n += binary.MaxVarintLen32 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range v {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return arrayValue(definitions.Bytes, b)
}

func arrayValue(elem definitions.Scalar, payload []byte) Value {
	return Value{typ: definitions.Type{Elem: elem, Array: true}, str: string(payload)}
}

// Type is the value's type; the zero Type for null.
func (v Value) Type() definitions.Type { return v.typ }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.typ.Elem == definitions.Invalid }

func (v Value) is(elem definitions.Scalar) bool { return v.typ.Elem == elem && !v.typ.Array }

// Int32 returns the value of an int32 Value; 0 for any other.
func (v Value) Int32() int32 {
	if !v.is(definitions.Int32) {
		return 0
	}
	return int32(v.num)
}

// Int64 returns the value of an int64 Value; 0 for any other.
func (v Value) Int64() int64 {
	if !v.is(definitions.Int64) {
		return 0
	}
	return int64(v.num)
}

// Float32 returns the value of a float32 Value; 0 for any other.
func (v Value) Float32() float32 {
	if !v.is(definitions.Float32) {
		return 0
	}
	return math.Float32frombits(uint32(v.num))
}

// Float64 returns the value of a float64 Value; 0 for any other.
func (v Value) Float64() float64 {
	if !v.is(definitions.Float64) {
		return 0
	}
	return math.Float64frombits(v.num)
}

// Bool returns the value of a bool Value; false for any other.
func (v Value) Bool() bool { return v.is(definitions.Bool) && v.num != 0 }

// Str returns the value of a string or bytes Value; "" for any other.
func (v Value) Str() string {
	if v.is(definitions.String) || v.is(definitions.Bytes) {
		return v.str
	}
	return ""
}

// BytesValue returns a copy of a bytes or string Value's bytes; nil for any other.
func (v Value) BytesValue() []byte {
	if v.is(definitions.String) || v.is(definitions.Bytes) {
		return []byte(v.str)
	}
	return nil
}

// Time returns the value of a timestamp Value in UTC; the zero time for any other.
func (v Value) Time() time.Time {
	if !v.is(definitions.Timestamp) {
		return time.Time{}
	}
	return time.UnixMicro(int64(v.num)).UTC()
}

func (v Value) isArray(elem definitions.Scalar) bool { return v.typ.Array && v.typ.Elem == elem }

// Len is the number of elements of an array Value; 0 for any other.
func (v Value) Len() int {
	if !v.typ.Array {
		return 0
	}
	switch v.typ.Elem {
	case definitions.Int32, definitions.Float32:
		return len(v.str) / 4
	case definitions.Int64, definitions.Float64, definitions.Timestamp:
		return len(v.str) / 8
	case definitions.Bool:
		return len(v.str)
	case definitions.String, definitions.Bytes:
		n := 0
		_ = eachVarElem(v.str, func(string) { n++ })
		return n
	}
	return 0
}

// Int32s returns the elements of an array<int32> Value; nil for any other.
func (v Value) Int32s() []int32 {
	if !v.isArray(definitions.Int32) {
		return nil
	}
	out := make([]int32, len(v.str)/4)
	for i := range out {
		out[i] = int32(le32(v.str[4*i:]))
	}
	return out
}

// Int64s returns the elements of an array<int64> Value; nil for any other.
func (v Value) Int64s() []int64 {
	if !v.isArray(definitions.Int64) {
		return nil
	}
	out := make([]int64, len(v.str)/8)
	for i := range out {
		out[i] = int64(le64(v.str[8*i:]))
	}
	return out
}

// Float32s returns the elements of an array<float32> Value; nil for any other.
func (v Value) Float32s() []float32 {
	if !v.isArray(definitions.Float32) {
		return nil
	}
	out := make([]float32, len(v.str)/4)
	for i := range out {
		out[i] = math.Float32frombits(le32(v.str[4*i:]))
	}
	return out
}

// Float64s returns the elements of an array<float64> Value; nil for any other.
func (v Value) Float64s() []float64 {
	if !v.isArray(definitions.Float64) {
		return nil
	}
	out := make([]float64, len(v.str)/8)
	for i := range out {
		out[i] = math.Float64frombits(le64(v.str[8*i:]))
	}
	return out
}

// Bools returns the elements of an array<bool> Value; nil for any other.
func (v Value) Bools() []bool {
	if !v.isArray(definitions.Bool) {
		return nil
	}
	out := make([]bool, len(v.str))
	for i := range out {
		out[i] = v.str[i] != 0
	}
	return out
}

// Timestamps returns the elements of an array<timestamp> Value in UTC; nil for any other.
func (v Value) Timestamps() []time.Time {
	if !v.isArray(definitions.Timestamp) {
		return nil
	}
	out := make([]time.Time, len(v.str)/8)
	for i := range out {
		out[i] = time.UnixMicro(int64(le64(v.str[8*i:]))).UTC()
	}
	return out
}

// Strings returns the elements of an array<string> or array<bytes> Value; nil for any other.
func (v Value) Strings() []string {
	if !v.isArray(definitions.String) && !v.isArray(definitions.Bytes) {
		return nil
	}
	out := make([]string, 0, 4)
	_ = eachVarElem(v.str, func(s string) { out = append(out, s) })
	return out
}

// BytesArray returns copies of the elements of an array<bytes> or array<string> Value; nil
// for any other.
func (v Value) BytesArray() [][]byte {
	if !v.isArray(definitions.String) && !v.isArray(definitions.Bytes) {
		return nil
	}
	out := make([][]byte, 0, 4)
	_ = eachVarElem(v.str, func(s string) { out = append(out, []byte(s)) })
	return out
}

// Equal reports whether two values have the same type and content. Floats compare by bits,
// so NaN equals the same NaN.
func (v Value) Equal(w Value) bool { return v == w }

// eachVarElem walks a string/bytes array payload; it reports false on a malformed payload.
func eachVarElem(p string, f func(string)) bool {
	for len(p) > 0 {
		n, k := uvarintString(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return false
		}
		f(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return true
}

func le32(s string) uint32 {
	_ = s[3]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(le32(s)) | uint64(le32(s[4:]))<<32
}

// uvarintString is binary.Uvarint over a string; k <= 0 on a malformed or truncated varint.
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
