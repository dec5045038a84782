package materialize

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

// columnReader returns a reader for an Arrow column holding values of declared type t, as the
// offline package's canonical schema lays them out (offline.ArrowType).
func columnReader(col arrow.Array, t definitions.Type) (valueAt, error) {
	null := func(i int) bool { return col.IsNull(i) }
	if t.Array {
		list, ok := col.(*array.List)
		if !ok {
			return nil, fmt.Errorf("column is %s, want a list of %s", col.DataType(), t.Elem)
		}
		offsets := list.Offsets()
		return listReader(list.ListValues(), t.Elem, offsets, null)
	}
	switch t.Elem {
	case definitions.Int32:
		a, ok := col.(*array.Int32)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Int32(a.Value(i))
			}, nil
		}
	case definitions.Int64:
		a, ok := col.(*array.Int64)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Int64(a.Value(i))
			}, nil
		}
	case definitions.Float32:
		a, ok := col.(*array.Float32)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Float32(a.Value(i))
			}, nil
		}
	case definitions.Float64:
		a, ok := col.(*array.Float64)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Float64(a.Value(i))
			}, nil
		}
	case definitions.Bool:
		a, ok := col.(*array.Boolean)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Bool(a.Value(i))
			}, nil
		}
	case definitions.String:
		a, ok := col.(*array.String)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				// Clone: Arrow's string shares the batch's buffer, which is released.
				return online.String(strings.Clone(a.Value(i)))
			}, nil
		}
	case definitions.Bytes:
		a, ok := col.(*array.Binary)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Bytes(a.Value(i))
			}, nil
		}
	case definitions.Timestamp:
		a, ok := col.(*array.Timestamp)
		if ok {
			toTime, err := timeConverter(a)
			if err != nil {
				return nil, err
			}
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				return online.Timestamp(toTime(a.Value(i)))
			}, nil
		}
	}
	return nil, fmt.Errorf("column is %s, want %s", col.DataType(), t)
}

func timeConverter(a *array.Timestamp) (func(arrow.Timestamp) time.Time, error) {
	unit := a.DataType().(*arrow.TimestampType).Unit
	return func(ts arrow.Timestamp) time.Time { return ts.ToTime(unit).UTC() }, nil
}

// listReader reads list values of element type elem. Null elements inside a list are not
// representable online (arrays hold no nulls); they are an error the caller reports.
func listReader(values arrow.Array, elem definitions.Scalar, offsets []int32, null func(int) bool) (valueAt, error) {
	span := func(i int) (int, int) { return int(offsets[i]), int(offsets[i+1]) }
	switch elem {
	case definitions.Int32:
		a, ok := values.(*array.Int32)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				return online.Int32s(a.Int32Values()[s:e])
			}, nil
		}
	case definitions.Int64:
		a, ok := values.(*array.Int64)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				return online.Int64s(a.Int64Values()[s:e])
			}, nil
		}
	case definitions.Float32:
		a, ok := values.(*array.Float32)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				return online.Float32s(a.Float32Values()[s:e])
			}, nil
		}
	case definitions.Float64:
		a, ok := values.(*array.Float64)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				return online.Float64s(a.Float64Values()[s:e])
			}, nil
		}
	case definitions.Bool:
		a, ok := values.(*array.Boolean)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				out := make([]bool, e-s)
				for j := range out {
					out[j] = a.Value(s + j)
				}
				return online.Bools(out)
			}, nil
		}
	case definitions.String:
		a, ok := values.(*array.String)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				out := make([]string, e-s)
				for j := range out {
					out[j] = a.Value(s + j)
				}
				return online.Strings(out)
			}, nil
		}
	case definitions.Bytes:
		a, ok := values.(*array.Binary)
		if ok {
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				out := make([][]byte, e-s)
				for j := range out {
					out[j] = a.Value(s + j)
				}
				return online.BytesArray(out)
			}, nil
		}
	case definitions.Timestamp:
		a, ok := values.(*array.Timestamp)
		if ok {
			toTime, err := timeConverter(a)
			if err != nil {
				return nil, err
			}
			return func(i int) online.Value {
				if null(i) {
					return online.Null()
				}
				s, e := span(i)
				out := make([]time.Time, e-s)
				for j := range out {
					out[j] = toTime(a.Value(s + j))
				}
				return online.Timestamps(out)
			}, nil
		}
	}
	return nil, fmt.Errorf("list elements are %s, want %s", values.DataType(), elem)
}
