package fold

import (
	"fmt"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/online"
)

// valueAt reads row i of one column as an online.Value.
type valueAt func(i int) online.Value

// valuer is an Arrow array whose elements read as T.
type valuer[T any] interface {
	arrow.Array
	Value(i int) T
}

// ColumnReader returns a reader for an Arrow column holding values of declared type t, as the
// offline package's canonical schema lays them out (offline.ArrowType): row i as an online
// value (null for a null slot).
func ColumnReader(col arrow.Array, t definitions.Type) (func(i int) online.Value, error) {
	var (
		read valueAt
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
	case definitions.Int32:
		read, ok = scalar[*array.Int32](col, online.Int32)
	case definitions.Int64:
		read, ok = scalar[*array.Int64](col, online.Int64)
	case definitions.Float32:
		read, ok = scalar[*array.Float32](col, online.Float32)
	case definitions.Float64:
		read, ok = scalar[*array.Float64](col, online.Float64)
	case definitions.Bool:
		read, ok = scalar[*array.Boolean](col, online.Bool)
	case definitions.String:
		// Clone: Arrow's string shares the batch's buffer, which is released.
		read, ok = scalar[*array.String](col, func(s string) online.Value { return online.String(strings.Clone(s)) })
	case definitions.Bytes:
		read, ok = scalar[*array.Binary](col, online.Bytes) // online.Bytes copies
	case definitions.Timestamp:
		if ts, isTS := col.(*array.Timestamp); isTS {
			read, ok = scalar[*array.Timestamp](col, timeValue(ts, online.Timestamp))
		}
	}
	if !ok {
		return nil, fmt.Errorf("column is %s, want %s", col.DataType(), t)
	}
	return read, nil
}

// scalar reads a column of A (elements T) through mk; ok is false when col is not an A.
func scalar[A valuer[T], T any](col arrow.Array, mk func(T) online.Value) (valueAt, bool) {
	a, ok := col.(A)
	if !ok {
		return nil, false
	}
	return func(i int) online.Value {
		if a.IsNull(i) {
			return online.Null()
		}
		return mk(a.Value(i))
	}, true
}

// listReader reads list values of element type elem. Null elements inside a list are not
// representable online (arrays hold no nulls); the caller rejects them before reading.
func listReader(list *array.List, elem definitions.Scalar) (valueAt, bool) {
	values, offsets := list.ListValues(), list.Offsets()
	switch elem {
	case definitions.Int32:
		return elements[*array.Int32](list, values, offsets, online.Int32s)
	case definitions.Int64:
		return elements[*array.Int64](list, values, offsets, online.Int64s)
	case definitions.Float32:
		return elements[*array.Float32](list, values, offsets, online.Float32s)
	case definitions.Float64:
		return elements[*array.Float64](list, values, offsets, online.Float64s)
	case definitions.Bool:
		return elements[*array.Boolean](list, values, offsets, online.Bools)
	case definitions.String:
		return elements[*array.String](list, values, offsets, online.Strings) // encoding copies
	case definitions.Bytes:
		return elements[*array.Binary](list, values, offsets, online.BytesArray)
	case definitions.Timestamp:
		ts, ok := values.(*array.Timestamp)
		if !ok {
			return nil, false
		}
		toTime := timeValue(ts, func(t time.Time) time.Time { return t })
		return elements[*array.Timestamp](list, values, offsets, func(v []arrow.Timestamp) online.Value {
			out := make([]time.Time, len(v))
			for j, t := range v {
				out[j] = toTime(t)
			}
			return online.Timestamps(out)
		})
	}
	return nil, false
}

// elements reads each list of list (whose values are an A of Ts) as a slice through mk.
func elements[A valuer[T], T any](list *array.List, values arrow.Array, offsets []int32, mk func([]T) online.Value) (valueAt, bool) {
	a, ok := values.(A)
	if !ok {
		return nil, false
	}
	return func(i int) online.Value {
		if list.IsNull(i) {
			return online.Null()
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
