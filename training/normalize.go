package training

import (
	"fmt"
	"math"
	"strings"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/value"
)

// Entity rows are normalized as they are read (issue 18): join keys of another type are
// converted to the declared type by the one rule (value.Coerce: integers of another width when
// every value fits, strings for bytes), and timestamps of any unit or time
// zone become microseconds UTC, the precision of every other timestamp in Quiver.

// columnConv converts one column of a batch; row is the index of the batch's first row in the
// file, for error messages.
type columnConv func(arr arrow.Array, row int64) (arrow.Array, error)

// isInteger reports whether t is a signed or unsigned integer type.
func isInteger(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		return true
	}
	return false
}

// intAt returns value i of an integer array as an int64, and false when it is a uint64 too
// large for one.
func intAt(arr arrow.Array, i int) (int64, bool) {
	switch a := arr.(type) {
	case *array.Int8:
		return int64(a.Value(i)), true
	case *array.Int16:
		return int64(a.Value(i)), true
	case *array.Int32:
		return int64(a.Value(i)), true
	case *array.Int64:
		return a.Value(i), true
	case *array.Uint8:
		return int64(a.Value(i)), true
	case *array.Uint16:
		return int64(a.Value(i)), true
	case *array.Uint32:
		return int64(a.Value(i)), true
	case *array.Uint64:
		v := a.Value(i)
		return int64(v), v <= math.MaxInt64
	}
	return 0, false
}

func intValueStr(arr arrow.Array, i int) string { return arr.ValueStr(i) }

// intConv converts an integer column to int32 or int64, refusing the first value that does
// not fit.
func intConv(path, name string, want definitions.Scalar) columnConv {
	return func(arr arrow.Array, row int64) (arrow.Array, error) {
		n := arr.Len()
		switch want {
		case definitions.Int32:
			b := array.NewInt32Builder(memory.DefaultAllocator)
			defer b.Release()
			b.Reserve(n)
			for i := range n {
				if arr.IsNull(i) {
					b.AppendNull()
					continue
				}
				v, ok := intAt(arr, i)
				if !ok || v < math.MinInt32 || v > math.MaxInt32 {
					return nil, fmt.Errorf("%w: entity file %s: join key column %q is %s and declared int32, but row %d holds %s, which does not fit int32; declare the key int64 or fix the value",
						ErrInvalidInput, path, name, arr.DataType(), row+int64(i)+1, intValueStr(arr, i))
				}
				b.Append(int32(v))
			}
			return b.NewArray(), nil
		default:
			b := array.NewInt64Builder(memory.DefaultAllocator)
			defer b.Release()
			b.Reserve(n)
			for i := range n {
				if arr.IsNull(i) {
					b.AppendNull()
					continue
				}
				v, ok := intAt(arr, i)
				if !ok {
					return nil, fmt.Errorf("%w: entity file %s: join key column %q is %s and declared int64, but row %d holds %s, which does not fit int64",
						ErrInvalidInput, path, name, arr.DataType(), row+int64(i)+1, intValueStr(arr, i))
				}
				b.Append(v)
			}
			return b.NewArray(), nil
		}
	}
}

// coercible reports whether a join key column of Arrow type dt is not of the declared type
// want but its values convert to it by the one rule (value.Coerce): a string column for a
// bytes key. (Integer keys of other widths take intConv, timestamps timestampConv.)
func coercible(dt arrow.DataType, want definitions.Type) bool {
	got, ok := value.TypeFromArrow(dt)
	return ok && got != want && got.Elem != definitions.Timestamp && !isInteger(dt) && value.CanCoerce(got, want)
}

// coerceConv converts a column to the declared type want value by value (value.Coerce).
func coerceConv(path, name string, want definitions.Type) columnConv {
	return func(arr arrow.Array, row int64) (arrow.Array, error) {
		got, _ := value.TypeFromArrow(arr.DataType())
		read, err := value.ColumnReader(arr, got)
		if err != nil {
			return nil, fmt.Errorf("%w: entity file %s: column %q: %w", ErrInvalidInput, path, name, err)
		}
		vals := make([]value.Value, arr.Len())
		for i := range vals {
			if vals[i], err = value.Coerce(read(i), want); err != nil {
				return nil, fmt.Errorf("%w: entity file %s: column %q row %d: %w", ErrInvalidInput, path, name, row+int64(i)+1, err)
			}
		}
		return value.NewArrowArray(memory.DefaultAllocator, want, vals)
	}
}

// micros converts a timestamp value of a unit to microseconds, rounding down, and false on
// overflow.
func micros(v int64, unit arrow.TimeUnit) (int64, bool) {
	switch unit {
	case arrow.Second:
		if v > math.MaxInt64/1_000_000 || v < math.MinInt64/1_000_000 {
			return 0, false
		}
		return v * 1e6, true
	case arrow.Millisecond:
		if v > math.MaxInt64/1000 || v < math.MinInt64/1000 {
			return 0, false
		}
		return v * 1e3, true
	case arrow.Nanosecond:
		q := v / 1e3
		if v%1e3 < 0 {
			q--
		}
		return q, true
	}
	return v, true
}

// timestampConv converts a timestamp column of any unit and zone to microseconds UTC.
// Arrow timestamps are instants (UTC-based) whatever their zone; a naive one (no zone) is
// taken to be UTC.
func timestampConv(path, name string, unit arrow.TimeUnit) columnConv {
	return func(arr arrow.Array, row int64) (arrow.Array, error) {
		a := arr.(*array.Timestamp)
		b := array.NewTimestampBuilder(memory.DefaultAllocator, offline.TimestampType.(*arrow.TimestampType))
		defer b.Release()
		b.Reserve(a.Len())
		for i := range a.Len() {
			if a.IsNull(i) {
				b.AppendNull()
				continue
			}
			us, ok := micros(int64(a.Value(i)), unit)
			if !ok {
				return nil, fmt.Errorf("%w: entity file %s: column %q row %d: timestamp %d%s is out of range", ErrInvalidInput, path, name, row+int64(i)+1, a.Value(i), unit)
			}
			b.Append(arrow.Timestamp(us))
		}
		return b.NewArray(), nil
	}
}

// normalizePlan works out the conversions a schema needs: integer join keys of another width
// and timestamps not in microseconds UTC. It returns nil when none are needed, and the
// schema the converted batches have.
func (e EntityFile) normalizePlan(schema *arrow.Schema) (map[int]columnConv, *arrow.Schema, error) {
	convs := map[int]columnConv{}
	fields := schema.Fields()
	declared := map[string]definitions.Type{}
	for _, k := range e.Keys {
		declared[k.Name] = k.Type
	}
	for i, f := range fields {
		want, isKey := declared[f.Name]
		switch {
		case isKey && !want.Array && (want.Elem == definitions.Int32 || want.Elem == definitions.Int64) && isInteger(f.Type):
			t, _ := offline.ArrowType(want)
			if arrow.TypeEqual(f.Type, t) {
				continue
			}
			convs[i] = intConv(e.Path, f.Name, want.Elem)
			fields[i].Type = t
		case isKey && coercible(f.Type, want):
			t, _ := offline.ArrowType(want)
			convs[i] = coerceConv(e.Path, f.Name, want)
			fields[i].Type = t
		case f.Type.ID() == arrow.TIMESTAMP && (f.Name == EventTimestampColumn || (isKey && want.Elem == definitions.Timestamp && !want.Array)):
			ts := f.Type.(*arrow.TimestampType)
			if ts.TimeZone == "" && e.RejectNaiveTimestamps {
				return nil, nil, fmt.Errorf("%w: entity file %s: column %q is %s, a timestamp without a time zone; write it with a time zone (UTC), or leave out --reject-naive-timestamps to read it as UTC",
					ErrInvalidInput, e.Path, f.Name, f.Type)
			}
			if arrow.TypeEqual(f.Type, offline.TimestampType) {
				continue
			}
			convs[i] = timestampConv(e.Path, f.Name, ts.Unit)
			fields[i].Type = offline.TimestampType
		}
	}
	if len(convs) == 0 {
		return nil, schema, nil
	}
	md := schema.Metadata()
	return convs, arrow.NewSchema(fields, &md), nil
}

// duplicateColumns names the columns that appear more than once.
func duplicateColumns(schema *arrow.Schema) []string {
	seen := map[string]int{}
	var dups []string
	for _, f := range schema.Fields() {
		if seen[f.Name]++; seen[f.Name] == 2 {
			dups = append(dups, fmt.Sprintf("%q", f.Name))
		}
	}
	return dups
}

func duplicatesError(path string, dups []string) error {
	return fmt.Errorf("%w: entity file %s has column %s more than once; column names must be unique", ErrInvalidInput, path, strings.Join(dups, ", "))
}

// normalizingReader applies a plan's conversions to every batch.
type normalizingReader struct {
	refs   atomic.Int64
	src    array.RecordReader
	schema *arrow.Schema
	convs  map[int]columnConv
	row    int64
	cur    arrow.RecordBatch
	err    error
}

func newNormalizingReader(src array.RecordReader, schema *arrow.Schema, convs map[int]columnConv) *normalizingReader {
	r := &normalizingReader{src: src, schema: schema, convs: convs}
	r.refs.Store(1)
	return r
}

func (r *normalizingReader) Retain() { r.refs.Add(1) }

func (r *normalizingReader) Release() {
	if r.refs.Add(-1) == 0 {
		if r.cur != nil {
			r.cur.Release()
			r.cur = nil
		}
		r.src.Release()
	}
}

func (r *normalizingReader) Schema() *arrow.Schema { return r.schema }

func (r *normalizingReader) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil || !r.src.Next() {
		return false
	}
	in := r.src.RecordBatch()
	cols := make([]arrow.Array, in.NumCols())
	var made []arrow.Array
	defer func() {
		for _, a := range made {
			a.Release()
		}
	}()
	for i, c := range in.Columns() {
		conv, ok := r.convs[i]
		if !ok {
			cols[i] = c
			continue
		}
		out, err := conv(c, r.row)
		if err != nil {
			r.err = err
			return false
		}
		made = append(made, out)
		cols[i] = out
	}
	r.row += in.NumRows()
	r.cur = array.NewRecordBatch(r.schema, cols, in.NumRows())
	return true
}

func (r *normalizingReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch.
//
// Deprecated: use RecordBatch.
func (r *normalizingReader) Record() arrow.RecordBatch { return r.cur }

func (r *normalizingReader) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.src.Err()
}
