package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/value"
)

// Batch is a columnar batch of rows for one view, as the push API takes it: one column per
// join key and per feature of the view, all of the same length, and one event time per row
// (created times are optional: nil, or one per row with zero meaning none).
type Batch struct {
	Columns   map[string][]online.Value
	EventTS   []time.Time
	CreatedTS []time.Time
}

// Rows is the number of rows of the batch (the length of EventTS).
func (b Batch) Rows() int { return len(b.EventTS) }

// eventRange bounds the event times ingestion accepts: Iceberg's day partitions and
// microsecond timestamps hold these without overflow.
var (
	minEvent = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEvent = time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Build validates b against the view and returns it as a canonical Arrow batch (join keys,
// event_ts, created_ts, features). Every join key and feature of the view must be given and
// no other column; values must have the column's type or convert to it (value.Coerce); join
// keys and event times must not be null. The first fault found refuses the whole
// batch with ErrInvalidBatch, naming the column and row.
func (v *View) Build(b Batch, mem memory.Allocator) (arrow.RecordBatch, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	n := len(b.EventTS)
	if n == 0 {
		return nil, invalidBatchf("view %q: no rows (event_timestamps is empty)", v.Name)
	}
	if b.CreatedTS != nil && len(b.CreatedTS) != n {
		return nil, invalidBatchf("view %q: %d created timestamps for %d rows", v.Name, len(b.CreatedTS), n)
	}
	for name := range b.Columns {
		if _, ok := v.Schema.Column(name); !ok || name == offline.EventTS || name == offline.CreatedTS {
			return nil, invalidBatchf("view %q: unknown column %q (valid: %s)", v.Name, name, strings.Join(v.columnNames(), ", "))
		}
	}
	schema := v.Schema.Arrow()
	cols := make([]arrow.Array, 0, schema.NumFields())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	nk := len(v.Schema.JoinKeys)
	for i, c := range v.Schema.Columns() {
		switch i {
		case nk: // event_ts
			bld := array.NewTimestampBuilder(mem, offline.TimestampType.(*arrow.TimestampType))
			for r, t := range b.EventTS {
				if t.IsZero() {
					bld.Release()
					return nil, invalidBatchf("view %q: row %d: event timestamp missing", v.Name, r)
				}
				if t.Before(minEvent) || !t.Before(maxEvent) {
					bld.Release()
					return nil, invalidBatchf("view %q: row %d: event timestamp %s outside [%s, %s)", v.Name, r, t.UTC().Format(time.RFC3339Nano), minEvent.Format(time.DateOnly), maxEvent.Format(time.DateOnly))
				}
				bld.Append(arrow.Timestamp(t.UnixMicro()))
			}
			cols = append(cols, bld.NewArray())
			bld.Release()
		case nk + 1: // created_ts
			bld := array.NewTimestampBuilder(mem, offline.TimestampType.(*arrow.TimestampType))
			for r := range n {
				if b.CreatedTS == nil || b.CreatedTS[r].IsZero() {
					bld.AppendNull()
					continue
				}
				bld.Append(arrow.Timestamp(b.CreatedTS[r].UnixMicro()))
			}
			cols = append(cols, bld.NewArray())
			bld.Release()
		default:
			vals, ok := b.Columns[c.Name]
			what := "feature"
			if i < nk {
				what = "join key"
			}
			if !ok {
				return nil, invalidBatchf("view %q: %s column %q missing (every join key and feature is required; send nulls for unknown features)", v.Name, what, c.Name)
			}
			if len(vals) != n {
				return nil, invalidBatchf("view %q: column %q has %d values for %d rows", v.Name, c.Name, len(vals), n)
			}
			arr, err := buildColumn(mem, schema.Field(i).Type, c.Type, vals, i < nk)
			if err != nil {
				return nil, invalidBatchf("view %q: column %q: %w", v.Name, c.Name, err)
			}
			cols = append(cols, arr)
		}
	}
	return array.NewRecordBatch(schema, cols, int64(n)), nil
}

func (v *View) columnNames() []string {
	var out []string
	for _, c := range v.Schema.Columns() {
		if c.Name != offline.EventTS && c.Name != offline.CreatedTS {
			out = append(out, c.Name)
		}
	}
	return out
}

// buildColumn appends vals, each coerced to want (value.Coerce), to a new array of type dt.
func buildColumn(mem memory.Allocator, dt arrow.DataType, want definitions.Type, vals []online.Value, key bool) (arrow.Array, error) {
	bld := array.NewBuilder(mem, dt)
	defer bld.Release()
	for r, val := range vals {
		if val.IsNull() && key {
			return nil, fmt.Errorf("row %d: join key is null", r)
		}
		val, err := value.Coerce(val, want)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
		if err := value.Append(bld, val); err != nil {
			return nil, fmt.Errorf("row %d: %w", r, err)
		}
	}
	return bld.NewArray(), nil
}

// FromArrow validates a batch read from a pushed file — columns named like the view's join
// keys and features, the event time in the source's timestamp_field and the created time,
// if the file has it, in its created_timestamp_field — and returns it as a canonical batch.
// Types convert as materialization converts a source's; other columns, null join keys, null
// event times and null array elements refuse the batch, naming the column and row.
func (v *View) FromArrow(ctx context.Context, rec arrow.RecordBatch, firstRow int64, mem memory.Allocator) (arrow.RecordBatch, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	fields := v.Fields
	if fields.Timestamp == "" {
		fields.Timestamp = offline.EventTS
	}
	known := map[string]bool{fields.Timestamp: true}
	if fields.Created != "" {
		known[fields.Created] = true
		if len(rec.Schema().FieldIndices(fields.Created)) == 0 {
			fields.Created = ""
		}
	}
	for _, c := range v.columnNames() {
		known[c] = true
	}
	for _, f := range rec.Schema().Fields() {
		if !known[f.Name] {
			valid := slices.Sorted(func(yield func(string) bool) {
				for k := range known {
					if !yield(k) {
						return
					}
				}
			})
			return nil, invalidBatchf("view %q: unknown column %q (valid: %s)", v.Name, f.Name, strings.Join(valid, ", "))
		}
	}
	// Refuse rows without an event time before the mapper would drop them.
	if idx := rec.Schema().FieldIndices(fields.Timestamp); len(idx) > 0 {
		col := rec.Column(idx[0])
		for r := range col.Len() {
			if col.IsNull(r) {
				return nil, invalidBatchf("view %q: row %d: event time %q is null", v.Name, firstRow+int64(r), fields.Timestamp)
			}
		}
	}
	m, err := offline.NewMapper("view "+v.Name, rec.Schema(), v.Schema, fields, offline.Range{Start: minEvent, End: maxEvent}, mem)
	if err != nil {
		return nil, invalidBatch(err)
	}
	out, err := m.Map(ctx, rec)
	if err != nil {
		return nil, invalidBatch(err)
	}
	if out.NumRows() != rec.NumRows() {
		out.Release()
		return nil, invalidBatchf("view %q: some event times lie outside [%s, %s)", v.Name, minEvent.Format(time.DateOnly), maxEvent.Format(time.DateOnly))
	}
	if err := v.check(out, firstRow); err != nil {
		out.Release()
		return nil, err
	}
	return out, nil
}

// check refuses null join keys and null array elements, naming the row.
func (v *View) check(rec arrow.RecordBatch, firstRow int64) error {
	for i, k := range v.Schema.JoinKeys {
		col := rec.Column(i)
		if col.NullN() == 0 {
			continue
		}
		for r := range col.Len() {
			if col.IsNull(r) {
				return invalidBatchf("view %q: row %d: join key %q is null", v.Name, firstRow+int64(r), k.Name)
			}
		}
	}
	nk := len(v.Schema.JoinKeys)
	for i, f := range v.Schema.Features {
		list, ok := rec.Column(nk + 2 + i).(*array.List)
		if !ok || list.ListValues().NullN() == 0 {
			continue
		}
		for r := range list.Len() {
			if list.IsNull(r) {
				continue
			}
			s, e := list.ValueOffsets(r)
			for j := s; j < e; j++ {
				if list.ListValues().IsNull(int(j)) {
					return invalidBatchf("view %q: row %d: feature %q: an array holds a null element (make the whole array null instead)", v.Name, firstRow+int64(r), f.Name)
				}
			}
		}
	}
	return nil
}

// ToBatch turns canonical batches back into a columnar Batch (for sending to a server).
func (v *View) ToBatch(recs ...arrow.RecordBatch) (Batch, error) {
	b := Batch{Columns: map[string][]online.Value{}}
	nk := len(v.Schema.JoinKeys)
	hasCreated := false
	for _, rec := range recs {
		n := int(rec.NumRows())
		for i, c := range v.Schema.Columns() {
			col := rec.Column(i)
			switch i {
			case nk, nk + 1:
				ts, ok := col.(*array.Timestamp)
				if !ok {
					return b, fmt.Errorf("view %q: column %q is %s, want a timestamp", v.Name, c.Name, col.DataType())
				}
				unit := ts.DataType().(*arrow.TimestampType).Unit
				for r := range n {
					var t time.Time
					if !ts.IsNull(r) {
						t = ts.Value(r).ToTime(unit).UTC()
					}
					if i == nk {
						b.EventTS = append(b.EventTS, t)
					} else {
						hasCreated = hasCreated || !t.IsZero()
						b.CreatedTS = append(b.CreatedTS, t)
					}
				}
			default:
				read, err := value.ColumnReader(col, c.Type)
				if err != nil {
					return b, fmt.Errorf("view %q: column %q: %w", v.Name, c.Name, err)
				}
				for r := range n {
					b.Columns[c.Name] = append(b.Columns[c.Name], read(r))
				}
			}
		}
	}
	if !hasCreated {
		b.CreatedTS = nil
	}
	return b, nil
}

// Slice returns rows [from, to) of b.
func (b Batch) Slice(from, to int) Batch {
	out := Batch{Columns: make(map[string][]online.Value, len(b.Columns)), EventTS: b.EventTS[from:to]}
	for k, c := range b.Columns {
		out.Columns[k] = c[from:to]
	}
	if b.CreatedTS != nil {
		out.CreatedTS = b.CreatedTS[from:to]
	}
	return out
}
