package value

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// The one conversion between Arrow columns and values: the canonical Arrow type of each Type
// (what the offline store, datasets and pushed batches hold), reading a column as values, and
// building a column from values.

// TimestampType is the Arrow type of every timestamp Quiver stores: microseconds, UTC.
var TimestampType arrow.DataType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// ArrowType is the canonical Arrow type of t. Arrays are lists whose elements are nullable.
// It returns an error for an invalid type.
func ArrowType(t Type) (arrow.DataType, error) {
	var elem arrow.DataType
	switch t.Elem {
	case Int32:
		elem = arrow.PrimitiveTypes.Int32
	case Int64:
		elem = arrow.PrimitiveTypes.Int64
	case Float32:
		elem = arrow.PrimitiveTypes.Float32
	case Float64:
		elem = arrow.PrimitiveTypes.Float64
	case Bool:
		elem = arrow.FixedWidthTypes.Boolean
	case String:
		elem = arrow.BinaryTypes.String
	case Bytes:
		elem = arrow.BinaryTypes.Binary
	case Timestamp:
		elem = TimestampType
	default:
		return nil, fmt.Errorf("no arrow type for %s", t.Elem)
	}
	if t.Array {
		return arrow.ListOf(elem), nil
	}
	return elem, nil
}

// TypeFromArrow is the Type an Arrow type is read as without conversion, if any. Timestamps of
// any unit and time zone map to timestamp; large and view strings and binaries and large and
// fixed-size lists map to their ordinary forms.
func TypeFromArrow(dt arrow.DataType) (Type, bool) {
	switch dt.ID() {
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST:
		elem, ok := scalarFromArrow(dt.(arrow.ListLikeType).Elem())
		return Type{Elem: elem, Array: true}, ok
	}
	s, ok := scalarFromArrow(dt)
	return Type{Elem: s}, ok
}

func scalarFromArrow(dt arrow.DataType) (Scalar, bool) {
	switch dt.ID() {
	case arrow.INT32:
		return Int32, true
	case arrow.INT64:
		return Int64, true
	case arrow.FLOAT32:
		return Float32, true
	case arrow.FLOAT64:
		return Float64, true
	case arrow.BOOL:
		return Bool, true
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return String, true
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW:
		return Bytes, true
	case arrow.TIMESTAMP:
		return Timestamp, true
	}
	return Invalid, false
}

// ColumnReader returns a reader of row i of col, an Arrow column holding values of type t:
// of t's canonical Arrow type, or for scalars of a large or view string or binary, or a
// timestamp of any unit and zone (read as UTC, truncated to microseconds). Null rows read as
// null. Values own their memory: they outlive the column. Null elements inside a list are not
// representable (arrays hold no nulls); the caller rejects them before reading.
func ColumnReader(col arrow.Array, t Type) (func(i int) Value, error) {
	var (
		read func(int) Value
		ok   bool
	)
	if t.Array {
		list, isList := col.(*array.List)
		if !isList {
			return nil, fmt.Errorf("column is %s, want a list of %s", col.DataType(), t.Elem)
		}
		if read, ok = listReader(list, t.Elem); !ok {
			return nil, fmt.Errorf("list elements are %s, want %s", list.ListValues().DataType(), t.Elem)
		}
		return read, nil
	}
	switch t.Elem {
	case Int32:
		read, ok = scalar[*array.Int32](col, NewInt32)
	case Int64:
		read, ok = scalar[*array.Int64](col, NewInt64)
	case Float32:
		read, ok = scalar[*array.Float32](col, NewFloat32)
	case Float64:
		read, ok = scalar[*array.Float64](col, NewFloat64)
	case Bool:
		read, ok = scalar[*array.Boolean](col, NewBool)
	case String:
		// Clone: Arrow's string shares the column's buffer, which may be released.
		str := func(s string) Value { return NewString(strings.Clone(s)) }
		if read, ok = scalar[*array.String](col, str); !ok {
			if read, ok = scalar[*array.LargeString](col, str); !ok {
				read, ok = scalar[*array.StringView](col, str)
			}
		}
	case Bytes: // NewBytes copies
		if read, ok = scalar[*array.Binary](col, NewBytes); !ok {
			if read, ok = scalar[*array.LargeBinary](col, NewBytes); !ok {
				read, ok = scalar[*array.BinaryView](col, NewBytes)
			}
		}
	case Timestamp:
		if ts, isTS := col.(*array.Timestamp); isTS {
			read, ok = scalar[*array.Timestamp](col, timeValue(ts, NewTimestamp))
		}
	}
	if !ok {
		return nil, fmt.Errorf("column is %s, want %s", col.DataType(), t)
	}
	return read, nil
}

// valuer is an Arrow array whose elements read as T.
type valuer[T any] interface {
	arrow.Array
	Value(i int) T
}

// scalar reads a column of A (elements T) through mk; ok is false when col is not an A.
func scalar[A valuer[T], T any](col arrow.Array, mk func(T) Value) (func(int) Value, bool) {
	a, ok := col.(A)
	if !ok {
		return nil, false
	}
	return func(i int) Value {
		if a.IsNull(i) {
			return Null()
		}
		return mk(a.Value(i))
	}, true
}

// listReader reads list values of element type elem.
func listReader(list *array.List, elem Scalar) (func(int) Value, bool) {
	values, offsets := list.ListValues(), list.Offsets()
	switch elem {
	case Int32:
		return elements[*array.Int32](list, values, offsets, NewInt32s)
	case Int64:
		return elements[*array.Int64](list, values, offsets, NewInt64s)
	case Float32:
		return elements[*array.Float32](list, values, offsets, NewFloat32s)
	case Float64:
		return elements[*array.Float64](list, values, offsets, NewFloat64s)
	case Bool:
		return elements[*array.Boolean](list, values, offsets, NewBools)
	case String:
		return elements[*array.String](list, values, offsets, NewStrings) // encoding copies
	case Bytes:
		return elements[*array.Binary](list, values, offsets, NewBytesArray)
	case Timestamp:
		ts, ok := values.(*array.Timestamp)
		if !ok {
			return nil, false
		}
		toTime := timeValue(ts, func(t time.Time) time.Time { return t })
		return elements[*array.Timestamp](list, values, offsets, func(v []arrow.Timestamp) Value {
			out := make([]time.Time, len(v))
			for j, t := range v {
				out[j] = toTime(t)
			}
			return NewTimestamps(out)
		})
	}
	return nil, false
}

// elements reads each list of list (whose values are an A of Ts) as a slice through mk.
func elements[A valuer[T], T any](list *array.List, values arrow.Array, offsets []int32, mk func([]T) Value) (func(int) Value, bool) {
	a, ok := values.(A)
	if !ok {
		return nil, false
	}
	return func(i int) Value {
		if list.IsNull(i) {
			return Null()
		}
		s, e := int(offsets[i]), int(offsets[i+1])
		out := make([]T, e-s)
		for j := range out {
			out[j] = a.Value(s + j)
		}
		return mk(out)
	}, true
}

// timeValue converts a timestamp array's values, in its unit, to UTC times and then through mk.
func timeValue[V any](a *array.Timestamp, mk func(time.Time) V) func(arrow.Timestamp) V {
	unit := a.DataType().(*arrow.TimestampType).Unit
	return func(ts arrow.Timestamp) V { return mk(ts.ToTime(unit).UTC()) }
}

// Append appends v to b, a builder of v's canonical Arrow type (ArrowType(v.Type())); a null v
// appends a null.
func Append(b array.Builder, v Value) error {
	if v.IsNull() {
		b.AppendNull()
		return nil
	}
	switch b := b.(type) {
	case *array.Int32Builder:
		b.Append(v.Int32())
	case *array.Int64Builder:
		b.Append(v.Int64())
	case *array.Float32Builder:
		b.Append(v.Float32())
	case *array.Float64Builder:
		b.Append(v.Float64())
	case *array.BooleanBuilder:
		b.Append(v.Bool())
	case *array.StringBuilder:
		b.Append(v.Str())
	case *array.BinaryBuilder:
		b.Append(v.BytesValue())
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.Time().UnixMicro()))
	case *array.ListBuilder:
		b.Append(true)
		switch vb := b.ValueBuilder().(type) {
		case *array.Int32Builder:
			vb.AppendValues(v.Int32s(), nil)
		case *array.Int64Builder:
			vb.AppendValues(v.Int64s(), nil)
		case *array.Float32Builder:
			vb.AppendValues(v.Float32s(), nil)
		case *array.Float64Builder:
			vb.AppendValues(v.Float64s(), nil)
		case *array.BooleanBuilder:
			vb.AppendValues(v.Bools(), nil)
		case *array.StringBuilder:
			vb.AppendValues(v.Strings(), nil)
		case *array.BinaryBuilder:
			vb.AppendValues(v.BytesArray(), nil)
		case *array.TimestampBuilder:
			for _, t := range v.Timestamps() {
				vb.Append(arrow.Timestamp(t.UnixMicro()))
			}
		default:
			return fmt.Errorf("unsupported array element type %s", vb.Type())
		}
	default:
		return fmt.Errorf("unsupported type %s", b.Type())
	}
	return nil
}

// NewArrowArray builds the column of vals, values of type t or null, of t's canonical Arrow
// type.
func NewArrowArray(mem memory.Allocator, t Type, vals []Value) (arrow.Array, error) {
	dt, err := ArrowType(t)
	if err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	b.Reserve(len(vals))
	for i, v := range vals {
		if !v.IsNull() && v.typ != t {
			return nil, fmt.Errorf("%w: row %d is a %s value, want %s", ErrType, i, v.typ, t)
		}
		if err := Append(b, v); err != nil {
			return nil, err
		}
	}
	return b.NewArray(), nil
}
