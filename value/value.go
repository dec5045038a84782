// Package value is Quiver's one value type, Value, with its types (Type, Scalar), the one
// coercion rule every path applies to values sent for a declared type (Coerce), and the one
// conversion between Arrow columns and values. It imports only the standard library and Arrow.
package value

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/quiverfs/quiver/internal/strbin"
)

// Value is one typed feature or join-key value, or null. It is a small struct (32 bytes) that
// holds scalars inline and strings, bytes and arrays as an immutable string in the encoded
// array form of docs/online-format.md, so values decoded from a store share the store's reply
// buffer instead of being copied or boxed. The zero Value is null.
//
// Arrays may be empty but hold no null elements; a whole array may be null.
type Value struct {
	typ Type   // Elem == Invalid: null
	num uint64 // int32, int64, bool, timestamp (µs) and float bits
	str string // string, bytes, array payload
}

// Null returns the null value.
func Null() Value { return Value{} }

// NewInt32 returns an int32 value.
func NewInt32(v int32) Value {
	return Value{typ: Type{Elem: Int32}, num: uint64(int64(v))}
}

// NewInt64 returns an int64 value.
func NewInt64(v int64) Value {
	return Value{typ: Type{Elem: Int64}, num: uint64(v)}
}

// NewFloat32 returns a float32 value.
func NewFloat32(v float32) Value {
	return Value{typ: Type{Elem: Float32}, num: uint64(math.Float32bits(v))}
}

// NewFloat64 returns a float64 value.
func NewFloat64(v float64) Value {
	return Value{typ: Type{Elem: Float64}, num: math.Float64bits(v)}
}

// NewBool returns a bool value.
func NewBool(v bool) Value {
	var n uint64
	if v {
		n = 1
	}
	return Value{typ: Type{Elem: Bool}, num: n}
}

// NewString returns a string value.
func NewString(v string) Value { return Value{typ: Type{Elem: String}, str: v} }

// NewBytes returns a bytes value; b is copied.
func NewBytes(b []byte) Value {
	return Value{typ: Type{Elem: Bytes}, str: string(b)}
}

// NewTimestamp returns a timestamp value, truncated to microseconds (Quiver's precision).
func NewTimestamp(t time.Time) Value {
	return Value{typ: Type{Elem: Timestamp}, num: uint64(t.UnixMicro())}
}

// NewInt32s returns an array<int32> value; v is copied.
func NewInt32s(v []int32) Value {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, uint32(x))
	}
	return newArray(Int32, b)
}

// NewInt64s returns an array<int64> value; v is copied.
func NewInt64s(v []int64) Value {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return newArray(Int64, b)
}

// NewFloat32s returns an array<float32> value; v is copied.
func NewFloat32s(v []float32) Value {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return newArray(Float32, b)
}

// NewFloat64s returns an array<float64> value; v is copied.
func NewFloat64s(v []float64) Value {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	return newArray(Float64, b)
}

// NewBools returns an array<bool> value; v is copied.
func NewBools(v []bool) Value {
	b := make([]byte, len(v))
	for i, x := range v {
		if x {
			b[i] = 1
		}
	}
	return newArray(Bool, b)
}

// NewTimestamps returns an array<timestamp> value, truncated to microseconds; v is copied.
func NewTimestamps(v []time.Time) Value {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x.UnixMicro()))
	}
	return newArray(Timestamp, b)
}

// NewStrings returns an array<string> value; v is copied.
func NewStrings(v []string) Value {
	n := 0
	for _, s := range v {
		n += binary.MaxVarintLen32 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range v {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return newArray(String, b)
}

// NewBytesArray returns an array<bytes> value; v is copied.
func NewBytesArray(v [][]byte) Value {
	n := 0
	for _, s := range v {
		n += binary.MaxVarintLen32 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range v {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return newArray(Bytes, b)
}

func newArray(elem Scalar, payload []byte) Value {
	return Value{typ: Type{Elem: elem, Array: true}, str: string(payload)}
}

// Type is the value's type; the zero Type for null.
func (v Value) Type() Type { return v.typ }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.typ.Elem == Invalid }

func (v Value) is(elem Scalar) bool { return v.typ.Elem == elem && !v.typ.Array }

// NewInt32 returns the value of an int32 Value; 0 for any other.
func (v Value) Int32() int32 {
	if !v.is(Int32) {
		return 0
	}
	return int32(v.num)
}

// NewInt64 returns the value of an int64 Value; 0 for any other.
func (v Value) Int64() int64 {
	if !v.is(Int64) {
		return 0
	}
	return int64(v.num)
}

// NewFloat32 returns the value of a float32 Value; 0 for any other.
func (v Value) Float32() float32 {
	if !v.is(Float32) {
		return 0
	}
	return math.Float32frombits(uint32(v.num))
}

// NewFloat64 returns the value of a float64 Value; 0 for any other.
func (v Value) Float64() float64 {
	if !v.is(Float64) {
		return 0
	}
	return math.Float64frombits(v.num)
}

// NewBool returns the value of a bool Value; false for any other.
func (v Value) Bool() bool { return v.is(Bool) && v.num != 0 }

// Str returns the value of a string or bytes Value; "" for any other.
func (v Value) Str() string {
	if v.is(String) || v.is(Bytes) {
		return v.str
	}
	return ""
}

// BytesValue returns a copy of a bytes or string Value's bytes; nil for any other.
func (v Value) BytesValue() []byte {
	if v.is(String) || v.is(Bytes) {
		return []byte(v.str)
	}
	return nil
}

// Time returns the value of a timestamp Value in UTC; the zero time for any other.
func (v Value) Time() time.Time {
	if !v.is(Timestamp) {
		return time.Time{}
	}
	return time.UnixMicro(int64(v.num)).UTC()
}

func (v Value) isArray(elem Scalar) bool { return v.typ.Array && v.typ.Elem == elem }

// Len is the number of elements of an array Value; 0 for any other.
func (v Value) Len() int {
	if !v.typ.Array {
		return 0
	}
	switch v.typ.Elem {
	case Int32, Float32:
		return len(v.str) / 4
	case Int64, Float64, Timestamp:
		return len(v.str) / 8
	case Bool:
		return len(v.str)
	case String, Bytes:
		n := 0
		_ = eachVarElem(v.str, func(string) { n++ })
		return n
	}
	return 0
}

// NewInt32s returns the elements of an array<int32> Value; nil for any other.
func (v Value) Int32s() []int32 {
	if !v.isArray(Int32) {
		return nil
	}
	out := make([]int32, len(v.str)/4)
	for i := range out {
		out[i] = int32(strbin.Uint32(v.str[4*i:]))
	}
	return out
}

// NewInt64s returns the elements of an array<int64> Value; nil for any other.
func (v Value) Int64s() []int64 {
	if !v.isArray(Int64) {
		return nil
	}
	out := make([]int64, len(v.str)/8)
	for i := range out {
		out[i] = int64(strbin.Uint64(v.str[8*i:]))
	}
	return out
}

// NewFloat32s returns the elements of an array<float32> Value; nil for any other.
func (v Value) Float32s() []float32 {
	if !v.isArray(Float32) {
		return nil
	}
	out := make([]float32, len(v.str)/4)
	for i := range out {
		out[i] = math.Float32frombits(strbin.Uint32(v.str[4*i:]))
	}
	return out
}

// NewFloat64s returns the elements of an array<float64> Value; nil for any other.
func (v Value) Float64s() []float64 {
	if !v.isArray(Float64) {
		return nil
	}
	out := make([]float64, len(v.str)/8)
	for i := range out {
		out[i] = math.Float64frombits(strbin.Uint64(v.str[8*i:]))
	}
	return out
}

// NewBools returns the elements of an array<bool> Value; nil for any other.
func (v Value) Bools() []bool {
	if !v.isArray(Bool) {
		return nil
	}
	out := make([]bool, len(v.str))
	for i := range out {
		out[i] = v.str[i] != 0
	}
	return out
}

// NewTimestamps returns the elements of an array<timestamp> Value in UTC; nil for any other.
func (v Value) Timestamps() []time.Time {
	if !v.isArray(Timestamp) {
		return nil
	}
	out := make([]time.Time, len(v.str)/8)
	for i := range out {
		out[i] = time.UnixMicro(int64(strbin.Uint64(v.str[8*i:]))).UTC()
	}
	return out
}

// NewStrings returns the elements of an array<string> or array<bytes> Value; nil for any other.
func (v Value) Strings() []string {
	if !v.isArray(String) && !v.isArray(Bytes) {
		return nil
	}
	out := make([]string, 0, 4)
	_ = eachVarElem(v.str, func(s string) { out = append(out, s) })
	return out
}

// NewBytesArray returns copies of the elements of an array<bytes> or array<string> Value; nil
// for any other.
func (v Value) BytesArray() [][]byte {
	if !v.isArray(String) && !v.isArray(Bytes) {
		return nil
	}
	out := make([][]byte, 0, 4)
	_ = eachVarElem(v.str, func(s string) { out = append(out, []byte(s)) })
	return out
}

// Bits is the payload of a fixed-size scalar value: an int32 sign-extended, an int64, the IEEE
// bits of a float (a float32's in the low 32), a bool as 0 or 1, a timestamp in microseconds
// since the epoch; 0 for other values. With FromBits it is the raw access encoders use (the
// online row format, docs/online-format.md).
func (v Value) Bits() uint64 { return v.num }

// Payload is the payload of a string or bytes value (its bytes) or of an array value (its
// elements in the encoded array form of docs/online-format.md); "" for other values.
func (v Value) Payload() string { return v.str }

// FromBits is the value of fixed-size scalar type t whose Bits are bits.
func FromBits(t Type, bits uint64) Value { return Value{typ: t, num: bits} }

// FromPayload is the value of type t (string, bytes or an array) whose Payload is p, which it
// shares; p must be valid for t (ValidPayload).
func FromPayload(t Type, p string) Value { return Value{typ: t, str: p} }

// ValidPayload reports whether p is a well-formed payload of type t: a whole number of
// elements for arrays of fixed-size elements, well-formed length prefixes for arrays of
// strings and bytes. Any p is a string or bytes payload.
func ValidPayload(t Type, p string) bool {
	if !t.Array {
		return true
	}
	switch t.Elem {
	case Int32, Float32:
		return len(p)%4 == 0
	case Int64, Float64, Timestamp:
		return len(p)%8 == 0
	case String, Bytes:
		return eachVarElem(p, func(string) {})
	case Bool:
		return true
	}
	return false
}

// Equal reports whether two values have the same type and content. Floats compare by bits,
// so NaN equals the same NaN.
func (v Value) Equal(w Value) bool { return v == w }

// eachVarElem walks a string/bytes array payload; it reports false on a malformed payload.
func eachVarElem(p string, f func(string)) bool {
	for len(p) > 0 {
		n, k := strbin.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return false
		}
		f(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	return true
}
