package pitjoin

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// entityIndex groups the entity rows by one view's join keys. Views with the same key list share
// one index.
type entityIndex struct {
	keys  []string
	cols  []int
	kinds []keyKind
	table *keyTable
	group []int32 // per entity row; -1: a null key or a null timestamp, never matches
	// After finish: the rows of group g are order[start[g]:start[g+1]], sorted by (T, row).
	start      []int32
	order      []int32
	minT, maxT []int64
}

// entitySide is everything the join keeps about the entity rows.
type entitySide struct {
	schema   *arrow.Schema
	tsCol    int
	n        int
	ts       []int64 // per row, microseconds; nullTS for null
	minT     int64   // over non-null ts; minT > maxT when there is none
	maxT     int64
	batches  []arrow.RecordBatch
	offsets  []int // first row of each batch, plus n at the end
	spill    *batchFile
	memBytes int64
	indexes  map[string]*entityIndex
}

func indexKey(keys []string) string { return strings.Join(keys, "\x00") }

func (e *entitySide) release() {
	for _, b := range e.batches {
		b.Release()
	}
	e.batches = nil
	if e.spill != nil {
		e.spill.close()
	}
}

// readEntities reads all entity rows, indexing them for every view's join keys. Batches stay in
// memory until they pass limit bytes; from then on all of them go to an IPC file in dir.
func readEntities(ctx context.Context, rdr array.RecordReader, views []View, opts Options, dir string, limit int64) (_ *entitySide, err error) {
	schema := rdr.Schema()
	e := &entitySide{schema: schema, indexes: map[string]*entityIndex{}, offsets: []int{0}}
	defer func() {
		if err != nil {
			e.release()
		}
	}()
	tsIdx := schema.FieldIndices(opts.EventTimestampColumn)
	if len(tsIdx) == 0 {
		return nil, fmt.Errorf("entity rows: no %q column: %w", opts.EventTimestampColumn, ErrMissingColumn)
	}
	e.tsCol = tsIdx[0]
	if dt := schema.Field(e.tsCol).Type; !checkTimestamp(dt) {
		return nil, fmt.Errorf("entity rows: column %q has type %s, want a timestamp: %w", opts.EventTimestampColumn, dt, ErrTypeMismatch)
	}
	for _, v := range views {
		if len(v.JoinKeys) == 0 {
			return nil, fmt.Errorf("view %q: no join keys: %w", v.Name, ErrInvalidInput)
		}
		k := indexKey(v.JoinKeys)
		if e.indexes[k] != nil {
			continue
		}
		ix := &entityIndex{keys: v.JoinKeys}
		for _, name := range v.JoinKeys {
			ci := schema.FieldIndices(name)
			if len(ci) == 0 {
				return nil, fmt.Errorf("view %q: entity rows have no join key column %q: %w", v.Name, name, ErrMissingColumn)
			}
			dt := schema.Field(ci[0]).Type
			kind, ok := keyKindOf(dt)
			if !ok {
				return nil, fmt.Errorf("view %q: entity join key %q has unsupported type %s (want an integer, string or binary): %w", v.Name, name, dt, ErrTypeMismatch)
			}
			ix.cols = append(ix.cols, ci[0])
			ix.kinds = append(ix.kinds, kind)
		}
		ix.table = newKeyTable(len(ix.kinds) == 1 && ix.kinds[0] != kindString && ix.kinds[0] != kindBinary, 1024)
		e.indexes[k] = ix
	}
	var groups []int32
	for rdr.Next() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := rdr.RecordBatch()
		if !rec.Schema().Equal(schema) {
			return nil, fmt.Errorf("entity rows: a batch's schema %s differs from the reader's %s: %w", rec.Schema(), schema, ErrInvalidInput)
		}
		n := int(rec.NumRows())
		if e.n+n > math.MaxInt32-1 {
			return nil, fmt.Errorf("entity rows: more than %d rows: %w", math.MaxInt32-1, ErrInvalidInput)
		}
		base := len(e.ts)
		if e.ts, err = tsMicros(rec.Column(e.tsCol), e.ts); err != nil {
			return nil, fmt.Errorf("entity rows: column %q: %w", opts.EventTimestampColumn, err)
		}
		for _, ix := range e.indexes {
			cols := make([]keyColumn, len(ix.cols))
			for j, ci := range ix.cols {
				if cols[j], err = newKeyColumn(rec.Column(ci)); err != nil {
					return nil, fmt.Errorf("entity rows: column %q: %w", ix.keys[j], err)
				}
			}
			groups = slices.Grow(groups[:0], n)[:n]
			ix.table.groups(cols, n, true, groups)
			for i := range groups {
				if e.ts[base+i] == nullTS {
					groups[i] = -1
				}
			}
			ix.group = append(ix.group, groups...)
		}
		e.n += n
		e.offsets = append(e.offsets, e.n)
		if e.spill == nil {
			rec.Retain()
			e.batches = append(e.batches, rec)
			e.memBytes += recordBytes(rec)
			if e.memBytes > limit {
				f, err := newBatchFile(dir, "entities", schema, opts.Allocator)
				if err != nil {
					return nil, err
				}
				e.spill = f
				for _, b := range e.batches {
					if err := f.write(b); err != nil {
						return nil, err
					}
					b.Release()
				}
				e.batches, e.memBytes = nil, 0
			}
			continue
		}
		if err := e.spill.write(rec); err != nil {
			return nil, err
		}
	}
	if err := rdr.Err(); err != nil {
		return nil, fmt.Errorf("read entity rows: %w", err)
	}
	if e.spill != nil {
		if err := e.spill.finish(); err != nil {
			return nil, err
		}
	}
	for _, ix := range e.indexes {
		ix.finish(e.ts)
	}
	e.minT, e.maxT = math.MaxInt64, math.MinInt64
	for _, t := range e.ts {
		if t != nullTS {
			e.minT, e.maxT = min(e.minT, t), max(e.maxT, t)
		}
	}
	return e, nil
}

// finish sorts the rows by (group, T, row) with a counting sort on the group and small sorts
// within each group.
func (ix *entityIndex) finish(ts []int64) {
	ix.table.freeze()
	ng := ix.table.len()
	ix.start = make([]int32, ng+1)
	for _, g := range ix.group {
		if g >= 0 {
			ix.start[g+1]++
		}
	}
	for g := 1; g <= ng; g++ {
		ix.start[g] += ix.start[g-1]
	}
	ix.order = make([]int32, ix.start[ng])
	fill := slices.Clone(ix.start[:ng])
	for r, g := range ix.group {
		if g >= 0 {
			ix.order[fill[g]] = int32(r)
			fill[g]++
		}
	}
	ix.minT = make([]int64, ng)
	ix.maxT = make([]int64, ng)
	for g := range ng {
		rows := ix.order[ix.start[g]:ix.start[g+1]]
		if len(rows) == 0 { // every row of the key had a null timestamp
			ix.minT[g], ix.maxT[g] = math.MaxInt64, math.MinInt64
			continue
		}
		sortRowsByTS(rows, ts)
		ix.minT[g] = ts[rows[0]]
		ix.maxT[g] = ts[rows[len(rows)-1]]
	}
}

func sortRowsByTS(rows []int32, ts []int64) {
	if len(rows) <= 12 {
		for i := 1; i < len(rows); i++ {
			for j := i; j > 0 && ts[rows[j]] < ts[rows[j-1]]; j-- {
				rows[j], rows[j-1] = rows[j-1], rows[j]
			}
		}
		return
	}
	slices.SortStableFunc(rows, func(a, b int32) int {
		switch {
		case ts[a] < ts[b]:
			return -1
		case ts[a] > ts[b]:
			return 1
		}
		return 0
	})
}

// bytes estimates the index's memory.
func (ix *entityIndex) bytes() int64 {
	t := ix.table
	return int64(4*(cap(ix.group)+cap(ix.start)+cap(ix.order)+cap(t.direct)) + 16*cap(t.slots) + 8*(cap(ix.minT)+cap(ix.maxT)+cap(t.hashes)+cap(t.offs)) + cap(t.arena))
}

// recordBytes is the memory held by a batch's buffers.
func recordBytes(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataBytes(c.Data())
	}
	return n
}

func dataBytes(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataBytes(c)
	}
	return n
}
