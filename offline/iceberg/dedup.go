package iceberg

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// dedupBuffer collects the rows of one interval write and yields them with duplicate
// (join keys, event_ts, created_ts) collapsed, the last row added winning.
//
// Rows stay in memory until they exceed budget bytes; from then on every row is spilled to
// one of nBuckets Arrow IPC files on disk, chosen by a hash of its dedup key, so rows that
// may collide share a bucket and each bucket is de-duplicated on its own. Peak memory is
// about max(budget, spilled bytes / nBuckets) plus one key per row of the largest bucket.
type dedupBuffer struct {
	schema   *arrow.Schema
	keyCols  []int
	budget   int64
	nBuckets int
	spillDir string
	// spillPrefix begins the name of the spill folder (SpillPrefix of the store's namespace).
	spillPrefix string
	mem         memory.Allocator
	seed        maphash.Seed

	recs    []arrow.RecordBatch // in memory, before spilling
	size    int64
	dir     string // spill directory, "" until spilling
	files   []*os.File
	writers []*ipc.Writer
	rowsIn  int64
}

func newDedupBuffer(schema *arrow.Schema, keyCols []int, budget int64, nBuckets int, spillDir, spillPrefix string, mem memory.Allocator) *dedupBuffer {
	return &dedupBuffer{
		schema: schema, keyCols: keyCols, budget: budget, nBuckets: nBuckets,
		spillDir: spillDir, spillPrefix: spillPrefix, mem: mem, seed: maphash.MakeSeed(),
	}
}

// SpillPrefix begins the names of the spill folders of writes to namespace's tables:
// quiver-write-NAMESPACE-, so that gc finds a project's own (namespaces hold no '-').
func SpillPrefix(namespace string) string { return "quiver-write-" + namespace + "-" }

func (d *dedupBuffer) spilled() bool { return d.dir != "" }

// add takes a reference to rec (the caller keeps its own).
func (d *dedupBuffer) add(ctx context.Context, rec arrow.RecordBatch) error {
	d.rowsIn += rec.NumRows()
	if !d.spilled() {
		rec.Retain()
		d.recs = append(d.recs, rec)
		d.size += recordSize(rec)
		if d.size <= d.budget {
			return nil
		}
		if err := d.startSpill(); err != nil {
			return err
		}
		recs := d.recs
		d.recs, d.size = nil, 0
		defer func() {
			for _, r := range recs {
				r.Release()
			}
		}()
		for _, r := range recs {
			if err := d.spill(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}
	return d.spill(ctx, rec)
}

func (d *dedupBuffer) startSpill() error {
	dir, err := os.MkdirTemp(d.spillDir, d.spillPrefix+"*")
	if err != nil {
		return fmt.Errorf("create spill directory: %w", err)
	}
	d.dir = dir
	for i := range d.nBuckets {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("bucket-%04d.arrows", i)))
		if err != nil {
			return fmt.Errorf("create spill file: %w", err)
		}
		d.files = append(d.files, f)
		d.writers = append(d.writers, ipc.NewWriter(f, ipc.WithSchema(d.schema), ipc.WithAllocator(d.mem), ipc.WithLZ4()))
	}
	return nil
}

// spill splits rec by bucket and appends each part to its bucket file.
func (d *dedupBuffer) spill(ctx context.Context, rec arrow.RecordBatch) error {
	n := int(rec.NumRows())
	idx := make([][]int32, d.nBuckets)
	var key []byte
	for i := range n {
		key = appendRowKey(key[:0], rec, d.keyCols, i)
		b := int(maphash.Bytes(d.seed, key) % uint64(d.nBuckets))
		idx[b] = append(idx[b], int32(i))
	}
	for b, rows := range idx {
		if len(rows) == 0 {
			continue
		}
		part, err := d.take(ctx, rec, rows)
		if err != nil {
			return fmt.Errorf("split rows for spilling: %w", err)
		}
		err = d.writers[b].Write(part)
		part.Release()
		if err != nil {
			return fmt.Errorf("spill rows to %s: %w", d.files[b].Name(), err)
		}
	}
	return nil
}

// take returns the given rows of rec (all of them shares rec's columns).
func (d *dedupBuffer) take(ctx context.Context, rec arrow.RecordBatch, rows []int32) (arrow.RecordBatch, error) {
	if len(rows) == int(rec.NumRows()) {
		rec.Retain()
		return rec, nil
	}
	ib := array.NewInt32Builder(d.mem)
	ib.AppendValues(rows, nil)
	indices := ib.NewInt32Array()
	ib.Release()
	defer indices.Release()
	cols := make([]arrow.Array, 0, rec.NumCols())
	defer func() {
		for _, c := range cols {
			c.Release()
		}
	}()
	cctx := compute.WithAllocator(ctx, d.mem)
	for _, c := range rec.Columns() {
		t, err := compute.TakeArray(cctx, c, indices)
		if err != nil {
			return nil, err
		}
		cols = append(cols, t)
	}
	return array.NewRecordBatch(rec.Schema(), cols, int64(len(rows))), nil
}

// finish ends adding; after it, reader may be called.
func (d *dedupBuffer) finish() error {
	for i, w := range d.writers {
		if err := w.Close(); err != nil {
			return fmt.Errorf("finish spill file %s: %w", d.files[i].Name(), err)
		}
	}
	d.writers = nil
	return nil
}

// close releases memory and removes spill files.
func (d *dedupBuffer) close() error {
	for _, r := range d.recs {
		r.Release()
	}
	d.recs = nil
	for _, w := range d.writers {
		_ = w.Close()
	}
	d.writers = nil
	var errs []error
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	d.files = nil
	if d.dir != "" {
		errs = append(errs, os.RemoveAll(d.dir))
		d.dir = ""
	}
	return errors.Join(errs...)
}

// group returns group i of the rows that may hold duplicates of each other, in the order
// they were added: all rows when in memory, else bucket i. The caller owns the batches. Groups
// can be read any number of times (a retried commit reads them again).
func (d *dedupBuffer) group(ctx context.Context, i int) ([]arrow.RecordBatch, error) {
	if !d.spilled() {
		recs := make([]arrow.RecordBatch, len(d.recs))
		for i, r := range d.recs {
			r.Retain()
			recs[i] = r
		}
		return recs, nil
	}
	f := d.files[i]
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read spill file %s: %w", f.Name(), err)
	}
	r, err := ipc.NewReader(f, ipc.WithAllocator(d.mem), ipc.WithSchema(d.schema))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("read spill file %s: %w", f.Name(), err)
	}
	defer r.Release()
	var recs []arrow.RecordBatch
	for r.Next() {
		if err := ctx.Err(); err != nil {
			releaseAll(recs)
			return nil, err
		}
		rec := r.RecordBatch()
		rec.Retain()
		recs = append(recs, rec)
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		releaseAll(recs)
		return nil, fmt.Errorf("read spill file %s: %w", f.Name(), err)
	}
	return recs, nil
}

func (d *dedupBuffer) numGroups() int {
	if !d.spilled() {
		return 1
	}
	return d.nBuckets
}

// conflicts counts, across the groups of one write, the rows collapsed into a later row whose
// other columns differ (distinct events of which only the last is kept), and names one.
type conflicts struct {
	n       int64
	example string
}

// collapse keeps, per dedup key, the last row of recs; it consumes recs and returns new
// batches in the same order. Each dropped row whose non-key columns differ from the kept
// row's is counted in c.
func collapse(ctx context.Context, recs []arrow.RecordBatch, keyCols []int, mem memory.Allocator, c *conflicts) ([]arrow.RecordBatch, error) {
	defer releaseAll(recs)
	rows := 0
	for _, r := range recs {
		rows += int(r.NumRows())
	}
	var valCols []int
	if len(recs) > 0 {
		for i := range int(recs[0].NumCols()) {
			if !slices.Contains(keyCols, i) {
				valCols = append(valCols, i)
			}
		}
	}
	seen := newKeySet(rows)
	keep := make([][]bool, len(recs))
	dropped := make([]bool, len(recs))
	var key, a, b []byte
	for r := len(recs) - 1; r >= 0; r-- {
		rec := recs[r]
		n := int(rec.NumRows())
		keep[r] = make([]bool, n)
		for i := n - 1; i >= 0; i-- {
			key = appendRowKey(key[:0], rec, keyCols, i)
			kr, ki, isNew := seen.add(key, r, i)
			if isNew {
				keep[r][i] = true
				continue
			}
			dropped[r] = true
			// Compared only when a duplicate turns up: rows without one cost nothing more.
			a = appendRowKey(a[:0], rec, valCols, i)
			b = appendRowKey(b[:0], recs[kr], valCols, ki)
			if !bytes.Equal(a, b) {
				c.n++
				if c.example == "" {
					c.example = describeKey(rec, keyCols, i)
				}
			}
		}
	}
	out := make([]arrow.RecordBatch, 0, len(recs))
	for r, rec := range recs {
		if !dropped[r] {
			rec.Retain()
			out = append(out, rec)
			continue
		}
		mb := array.NewBooleanBuilder(mem)
		mb.AppendValues(keep[r], nil)
		mask := mb.NewBooleanArray()
		mb.Release()
		f, err := compute.FilterRecordBatch(compute.WithAllocator(ctx, mem), rec, mask, compute.DefaultFilterOptions())
		mask.Release()
		if err != nil {
			releaseAll(out)
			return nil, fmt.Errorf("collapse duplicate rows: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// describeKey names row i by its dedup key columns: "user_id=7 event_ts=... created_ts=...".
func describeKey(rec arrow.RecordBatch, keyCols []int, i int) string {
	parts := make([]string, len(keyCols))
	for j, c := range keyCols {
		col := rec.Column(c)
		v := "null"
		switch {
		case col.IsNull(i):
		case col.DataType().ID() == arrow.TIMESTAMP:
			v = time.UnixMicro(int64(col.(*array.Timestamp).Value(i))).UTC().Format(time.RFC3339Nano)
		default:
			v = col.ValueStr(i)
		}
		parts[j] = rec.Schema().Field(c).Name + "=" + v
	}
	return strings.Join(parts, " ")
}

// keySet is a set of byte strings stored in one arena, so adding a row's key allocates
// nothing per row. Each key remembers where its row is (batch and row index).
type keySet struct {
	seed  maphash.Seed
	first map[uint64]int32 // hash → first entry with it
	next  []int32          // entry → next entry with the same hash, or -1
	ends  []int            // entry i's key is arena[ends[i-1]:ends[i]]
	at    [][2]int32       // entry → (batch, row) of its row
	arena []byte
}

func newKeySet(hint int) *keySet {
	return &keySet{seed: maphash.MakeSeed(), first: make(map[uint64]int32, hint), next: make([]int32, 0, hint), ends: make([]int, 0, hint), at: make([][2]int32, 0, hint)}
}

func (s *keySet) key(i int32) []byte {
	start := 0
	if i > 0 {
		start = s.ends[i-1]
	}
	return s.arena[start:s.ends[i]]
}

// add inserts key, of row (batch, row), and reports whether it was new; when it was not, it
// returns the batch and row the key was first added with.
func (s *keySet) add(key []byte, batch, row int) (int, int, bool) {
	h := maphash.Bytes(s.seed, key)
	head, ok := s.first[h]
	if ok {
		for e := head; e >= 0; e = s.next[e] {
			if string(s.key(e)) == string(key) {
				return int(s.at[e][0]), int(s.at[e][1]), false
			}
		}
	} else {
		head = -1
	}
	s.first[h] = int32(len(s.ends))
	s.next = append(s.next, head)
	s.arena = append(s.arena, key...)
	s.ends = append(s.ends, len(s.arena))
	s.at = append(s.at, [2]int32{int32(batch), int32(row)})
	return batch, row, true
}

func releaseAll(recs []arrow.RecordBatch) {
	for _, r := range recs {
		r.Release()
	}
}

// appendRowKey appends an unambiguous encoding of row i's values in cols.
func appendRowKey(b []byte, rec arrow.RecordBatch, cols []int, i int) []byte {
	for _, c := range cols {
		b = appendValue(b, rec.Column(c), i)
	}
	return b
}

func appendValue(b []byte, a arrow.Array, i int) []byte {
	if a.IsNull(i) {
		return append(b, 0)
	}
	b = append(b, 1)
	switch a := a.(type) {
	case *array.Int32:
		return binary.LittleEndian.AppendUint32(b, uint32(a.Value(i)))
	case *array.Int64:
		return binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.Timestamp:
		return binary.LittleEndian.AppendUint64(b, uint64(a.Value(i)))
	case *array.Float32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(a.Value(i)))
	case *array.Float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(a.Value(i)))
	case *array.Boolean:
		if a.Value(i) {
			return append(b, 1)
		}
		return append(b, 0)
	case *array.String:
		v := a.Value(i)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	case *array.Binary:
		v := a.Value(i)
		b = binary.AppendUvarint(b, uint64(len(v)))
		return append(b, v...)
	case *array.List:
		start, end := a.ValueOffsets(i)
		b = binary.AppendUvarint(b, uint64(end-start))
		for j := start; j < end; j++ {
			b = appendValue(b, a.ListValues(), int(j))
		}
		return b
	}
	// Canonical schemas hold only the types above; fall back to the value's text.
	v := a.ValueStr(i)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// recordSize approximates the memory a batch holds: the sum of its buffers' lengths.
func recordSize(rec arrow.RecordBatch) int64 {
	var n int64
	for _, c := range rec.Columns() {
		n += dataSize(c.Data())
	}
	return n
}

func dataSize(d arrow.ArrayData) int64 {
	var n int64
	for _, b := range d.Buffers() {
		if b != nil {
			n += int64(b.Len())
		}
	}
	for _, c := range d.Children() {
		n += dataSize(c)
	}
	return n
}

// sortedChunkRows is the most rows per batch handed to the table writer.
const sortedChunkRows = 256 << 10

// sortByTime merges a group's batches into batches of at most sortedChunkRows rows, ordered by
// the timestamp column tsCol. It consumes recs. The table is partitioned by day of that
// column, so sorted input reaches each partition's writer in a few large slices instead of
// thousands of small ones (which costs both time and memory in the Parquet writers).
func sortByTime(ctx context.Context, recs []arrow.RecordBatch, tsCol int, mem memory.Allocator) ([]arrow.RecordBatch, error) {
	defer func() { releaseAll(recs) }() // recs is set to nil once merged
	if len(recs) == 0 {
		return nil, nil
	}
	schema := recs[0].Schema()
	cols := make([]arrow.Array, schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for c := range cols {
		parts := make([]arrow.Array, len(recs))
		for i, r := range recs {
			parts[i] = r.Column(c)
		}
		merged, err := array.Concatenate(parts, mem)
		if err != nil {
			return nil, fmt.Errorf("merge rows: %w", err)
		}
		cols[c] = merged
	}
	releaseAll(recs)
	recs = nil
	ts := cols[tsCol].(*array.Timestamp).Values()
	order := make([]int32, len(ts))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return cmp.Compare(ts[a], ts[b]) })
	merged := array.NewRecordBatch(schema, cols, int64(len(ts)))
	defer merged.Release()
	var out []arrow.RecordBatch
	cctx := compute.WithAllocator(ctx, mem)
	for start := 0; start < len(order); start += sortedChunkRows {
		end := min(start+sortedChunkRows, len(order))
		ib := array.NewInt32Builder(mem)
		ib.AppendValues(order[start:end], nil)
		idx := ib.NewInt32Array()
		ib.Release()
		taken := make([]arrow.Array, len(cols))
		var err error
		for c, col := range merged.Columns() {
			if taken[c], err = compute.TakeArray(cctx, col, idx); err != nil {
				break
			}
		}
		idx.Release()
		if err != nil {
			for _, t := range taken {
				if t != nil {
					t.Release()
				}
			}
			releaseAll(out)
			return nil, fmt.Errorf("sort rows by time: %w", err)
		}
		rec := array.NewRecordBatch(schema, taken, int64(end-start))
		for _, t := range taken {
			t.Release()
		}
		out = append(out, rec)
	}
	return out, nil
}
