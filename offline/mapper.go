package offline

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/quiverfs/quiver/definitions"
)

// Fields names the source columns that hold a view's timestamps.
type Fields struct {
	// Timestamp is the source's timestamp field, read as EventTS. Required.
	Timestamp string
	// Created is the source's created timestamp field, read as CreatedTS; empty when the
	// source declares none, and then CreatedTS is null.
	Created string
}

// Mapper turns batches of a source's own columns into canonical batches of a view: it picks
// and renames the columns, converts readable types (see Readable), and drops rows whose event
// time is null or outside the range. Sources build one per Read.
type Mapper struct {
	source  string
	out     *arrow.Schema
	columns []mappedColumn
	tsCol   int // index of EventTS in out
	start   int64
	end     int64
	mem     memory.Allocator
}

type mappedColumn struct {
	srcName string // "" for a null column
	declare definitions.Type
}

// NewMapper checks the source schema against vs and returns a mapper. source names the source
// in errors. A missing column gives ErrColumnNotFound, an unreadable type a *ColumnTypeError.
func NewMapper(source string, src *arrow.Schema, vs ViewSchema, f Fields, r Range, mem memory.Allocator) (*Mapper, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if f.Timestamp == "" {
		return nil, fmt.Errorf("%s: %w: no timestamp field", source, ErrInvalidSource)
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	m := &Mapper{source: source, out: vs.Arrow(), mem: mem}
	m.start, m.end = r.Micros()
	for i, c := range vs.Columns() {
		srcName := c.Name
		switch c.Name {
		case EventTS:
			srcName = f.Timestamp
			m.tsCol = i
		case CreatedTS:
			srcName = f.Created
		}
		mc := mappedColumn{srcName: srcName, declare: c.Type}
		if srcName != "" {
			idx := src.FieldIndices(srcName)
			if len(idx) == 0 {
				return nil, fmt.Errorf("%s: %w: %q (needed as %s)", source, ErrColumnNotFound, srcName, c.Name)
			}
			dt := src.Field(idx[0]).Type
			_, ok := Readable(dt, c.Type)
			if !ok {
				return nil, &ColumnTypeError{Source: source, Column: srcName, Actual: dt.String(), Declared: c.Type.String()}
			}
		}
		m.columns = append(m.columns, mc)
	}
	return m, nil
}

// Schema is the canonical schema of the mapped batches.
func (m *Mapper) Schema() *arrow.Schema { return m.out }

// SourceColumns lists the distinct source columns the mapper reads, for projection.
func (m *Mapper) SourceColumns() []string {
	var names []string
	seen := map[string]bool{}
	for _, c := range m.columns {
		if c.srcName != "" && !seen[c.srcName] {
			seen[c.srcName] = true
			names = append(names, c.srcName)
		}
	}
	return names
}

// Map converts one source batch. The result may have zero rows; the caller owns it. The input
// batch is not released.
func (m *Mapper) Map(ctx context.Context, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	n := rec.NumRows()
	cols := make([]arrow.Array, 0, len(m.columns))
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	for i, c := range m.columns {
		if c.srcName == "" {
			cols = append(cols, array.MakeArrayOfNull(m.mem, m.out.Field(i).Type, int(n)))
			continue
		}
		idx := rec.Schema().FieldIndices(c.srcName)
		if len(idx) == 0 {
			return nil, fmt.Errorf("%s: %w: %q", m.source, ErrColumnNotFound, c.srcName)
		}
		arr := rec.Column(idx[0])
		want := m.out.Field(i).Type
		if arrow.TypeEqual(arr.DataType(), want) {
			arr.Retain()
			cols = append(cols, arr)
			continue
		}
		// Engines may hand back another physical type than their schema said (large
		// strings, list element names): check every batch, not only the schema.
		if _, ok := Readable(arr.DataType(), c.declare); !ok {
			return nil, &ColumnTypeError{Source: m.source, Column: c.srcName, Actual: arr.DataType().String(), Declared: c.declare.String()}
		}
		conv, err := Convert(ctx, arr, want, m.mem)
		if err != nil {
			return nil, fmt.Errorf("%s: convert column %q from %s to %s: %w", m.source, c.srcName, arr.DataType(), c.declare, err)
		}
		cols = append(cols, conv)
	}
	out := array.NewRecordBatch(m.out, cols, n)
	keep, all := m.timeMask(cols[m.tsCol].(*array.Timestamp))
	if all {
		return out, nil
	}
	defer out.Release()
	defer keep.Release()
	filtered, err := compute.FilterRecordBatch(compute.WithAllocator(ctx, m.mem), out, keep, compute.DefaultFilterOptions())
	if err != nil {
		return nil, fmt.Errorf("%s: filter rows by %s: %w", m.source, EventTS, err)
	}
	return filtered, nil
}

// timeMask marks the rows in range; all is true (and the mask nil) when every row is.
func (m *Mapper) timeMask(ts *array.Timestamp) (mask *array.Boolean, all bool) {
	vals := ts.Values()
	all = true
	for i, v := range vals {
		if ts.IsNull(i) || int64(v) < m.start || int64(v) >= m.end {
			all = false
			break
		}
	}
	if all {
		return nil, true
	}
	b := array.NewBooleanBuilder(m.mem)
	defer b.Release()
	b.Reserve(len(vals))
	for i, v := range vals {
		b.UnsafeAppend(ts.IsValid(i) && int64(v) >= m.start && int64(v) < m.end)
	}
	return b.NewBooleanArray(), false
}
