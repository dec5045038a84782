package pitjoin

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var tsType = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

// buildColumn builds an Arrow array from Go values; nil is null. Timestamps are int64
// microseconds, lists []any, binaries []byte.
func buildColumn(mem memory.Allocator, dt arrow.DataType, vals []any) arrow.Array {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	for _, v := range vals {
		appendValue(b, v)
	}
	return b.NewArray()
}

func appendValue(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v.(int64))
	case *array.Int32Builder:
		b.Append(v.(int32))
	case *array.Float64Builder:
		b.Append(v.(float64))
	case *array.Float32Builder:
		b.Append(v.(float32))
	case *array.BooleanBuilder:
		b.Append(v.(bool))
	case *array.StringBuilder:
		b.Append(v.(string))
	case *array.BinaryBuilder:
		b.Append(v.([]byte))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.(int64)))
	case *array.ListBuilder:
		b.Append(true)
		for _, e := range v.([]any) {
			appendValue(b.ValueBuilder(), e)
		}
	default:
		panic(fmt.Sprintf("buildColumn: unsupported builder %T", b))
	}
}

// valueAt reads one value back as the Go value buildColumn takes.
func valueAt(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.Float32:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return append([]byte{}, a.Value(i)...)
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.List:
		lo, hi := a.ValueOffsets(i)
		out := []any{}
		for j := lo; j < hi; j++ {
			out = append(out, valueAt(a.ListValues(), int(j)))
		}
		return out
	}
	panic(fmt.Sprintf("valueAt: unsupported array %T", a))
}

// table is rows of Go values under a schema.
type table struct {
	schema *arrow.Schema
	rows   [][]any
}

// batches splits the table into batches at the given row counts (the rest goes in a last batch).
func (t table) batches(mem memory.Allocator, sizes []int) []arrow.RecordBatch {
	var out []arrow.RecordBatch
	lo := 0
	for lo < len(t.rows) || (lo == 0 && len(out) == 0) {
		n := len(t.rows) - lo
		if len(sizes) > 0 {
			n = min(n, sizes[0])
			sizes = sizes[1:]
		}
		cols := make([]arrow.Array, t.schema.NumFields())
		for c := range cols {
			vals := make([]any, n)
			for r := range n {
				vals[r] = t.rows[lo+r][c]
			}
			cols[c] = buildColumn(mem, t.schema.Field(c).Type, vals)
		}
		out = append(out, array.NewRecordBatch(t.schema, cols, int64(n)))
		for _, c := range cols {
			c.Release()
		}
		lo += n
		if n == 0 {
			break
		}
	}
	return out
}

func (t table) reader(mem memory.Allocator, sizes []int) array.RecordReader {
	bs := t.batches(mem, sizes)
	r, err := array.NewRecordReader(t.schema, bs)
	if err != nil {
		panic(err)
	}
	for _, b := range bs {
		b.Release()
	}
	return r
}

func (t table) open(mem memory.Allocator, sizes []int) OpenFunc {
	return func(context.Context, EventRange) (array.RecordReader, error) {
		return t.reader(mem, sizes), nil
	}
}

// collect reads a result into a table.
func collect(t *testing.T, r array.RecordReader) table {
	t.Helper()
	out := table{schema: r.Schema()}
	for r.Next() {
		rec := r.RecordBatch()
		for i := range int(rec.NumRows()) {
			row := make([]any, rec.NumCols())
			for c := range row {
				row[c] = valueAt(rec.Column(c), i)
			}
			out.rows = append(out.rows, row)
		}
	}
	if err := r.Err(); err != nil {
		t.Fatalf("read result: %v", err)
	}
	return out
}
