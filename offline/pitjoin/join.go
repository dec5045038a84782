package pitjoin

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"
)

// Join attaches the requested features of every view to the entity rows, point-in-time correct.
// It reads the entity rows and every view's feature rows before returning; the Result then yields
// one output batch per entity batch, in the entity rows' order, with all entity columns followed
// by each view's features in order. The caller must Release the Result; that also removes its
// spill files. entities is read but not released. ctx also governs the Result's Next.
func Join(ctx context.Context, entities array.RecordReader, views []View, opts Options) (_ *Result, err error) {
	opts = opts.withDefaults()
	if entities == nil {
		return nil, fmt.Errorf("entity rows: nil reader: %w", ErrInvalidInput)
	}
	dir, err := os.MkdirTemp(opts.TempDir, "quiver-pitjoin-")
	if err != nil {
		return nil, fmt.Errorf("create spill directory: %w", err)
	}
	res := &Result{dir: dir, mem: opts.Allocator, refs: 1}
	defer func() {
		if err != nil {
			res.Release()
		}
	}()

	// The engine plans its live data at half the budget; the Go GC needs the rest as headroom.
	live := opts.MemoryBudget / 2
	ent, err := readEntities(ctx, entities, views, opts, dir, live/4)
	if err != nil {
		return nil, err
	}
	res.ent = ent

	fields := append([]arrow.Field(nil), ent.schema.Fields()...)
	seen := map[string]string{}
	for _, f := range fields {
		seen[f.Name] = "an entity column"
	}
	// Output names are known before any feature row is read: check them first.
	for _, v := range views {
		for _, f := range v.outputNames() {
			name := f
			if opts.FullFeatureNames {
				name = v.Name + "__" + f
			}
			if what, dup := seen[name]; dup {
				return nil, fmt.Errorf("view %q: output column %q would clash with %s (use full feature names): %w", v.Name, name, what, ErrDuplicateColumn)
			}
			seen[name] = fmt.Sprintf("a feature of view %q", v.Name)
		}
	}
	fixed := ent.memBytes + int64(8*len(ent.ts))
	for _, ix := range ent.indexes {
		fixed += ix.bytes()
	}
	par := min(opts.Parallelism, max(len(views), 1))
	perView := max((live-fixed)/int64(par)-int64(4*ent.n), 0)
	res.views = make([]*viewJoin, len(views))
	for i, v := range views {
		if len(v.Aggregations) > 0 {
			v.Features, v.TTL = aggColumns(v.Aggregations), 0
		}
		res.views[i] = &viewJoin{v: v, opts: opts, ent: ent, ix: ent.indexes[indexKey(v.JoinKeys)], budget: perView, dir: dir}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for _, vj := range res.views {
		g.Go(func() error { return vj.run(gctx) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, vj := range res.views {
		for _, f := range vj.outFields() {
			name := f.Name
			if opts.FullFeatureNames {
				name = vj.v.Name + "__" + f.Name
			}
			fields = append(fields, arrow.Field{Name: name, Type: f.Type, Nullable: true, Metadata: f.Metadata})
		}
	}
	md := ent.schema.Metadata()
	res.schema = arrow.NewSchema(fields, &md)
	res.ctx = compute.WithAllocator(ctx, opts.Allocator)
	res.par = opts.Parallelism
	return res, nil
}

// Stats describe what a Join did, for logs and benchmarks.
type Stats struct {
	EntityRows      int64 // entity rows read (= output rows)
	EntitiesSpilled bool  // entity rows were kept on disk until output
	CandidateRows   int64 // feature rows that could match some entity row, over all views
	SpilledViews    int   // views whose candidates went to disk
	SpillFiles      int   // spill files written for views, repartitions included
	SpilledBytes    int64 // bytes of candidate rows written to spill files
	FoldedViews     int   // views joined by folding, without candidates (Options.Fold)
}

// Stats reports what the join did.
func (r *Result) Stats() Stats {
	s := Stats{EntityRows: int64(r.ent.n), EntitiesSpilled: r.ent.spill != nil}
	for _, vj := range r.views {
		s.CandidateRows += vj.stats.CandidateRows
		s.SpilledViews += vj.stats.SpilledViews
		s.SpillFiles += vj.stats.SpillFiles
		s.SpilledBytes += vj.stats.SpilledBytes
		s.FoldedViews += vj.stats.FoldedViews
	}
	return s
}

// Result yields the joined rows. It implements array.RecordReader. It is not safe for
// concurrent use.
type Result struct {
	refs   int64
	ctx    context.Context
	dir    string
	mem    memory.Allocator
	schema *arrow.Schema
	ent    *entitySide
	views  []*viewJoin
	par    int
	next   int
	cur    arrow.RecordBatch
	err    error
}

var _ array.RecordReader = (*Result)(nil)

// Schema is the output schema: the entity columns, then the features.
func (r *Result) Schema() *arrow.Schema { return r.schema }

// NumRows is the number of output rows: always the number of entity rows.
func (r *Result) NumRows() int64 { return int64(r.ent.n) }

// Retain adds a reference.
func (r *Result) Retain() { atomic.AddInt64(&r.refs, 1) }

// Release drops a reference; the last one frees the memory and removes the spill files.
func (r *Result) Release() {
	if atomic.AddInt64(&r.refs, -1) != 0 {
		return
	}
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	for _, vj := range r.views {
		if vj != nil {
			vj.release()
		}
	}
	if r.ent != nil {
		r.ent.release()
	}
	os.RemoveAll(r.dir)
}

// Err is the error that stopped Next, if any.
func (r *Result) Err() error { return r.err }

// RecordBatch is the current batch, valid until the next call to Next.
func (r *Result) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch.
//
// Deprecated: use RecordBatch.
func (r *Result) Record() arrow.RecordBatch { return r.cur }

// Next assembles the next output batch.
func (r *Result) Next() bool {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.err != nil || r.next >= len(r.ent.offsets)-1 {
		return false
	}
	if err := r.ctx.Err(); err != nil {
		r.err = err
		return false
	}
	i := r.next
	r.next++
	var rec arrow.RecordBatch
	if r.ent.spill != nil {
		var err error
		if rec, err = r.ent.spill.batch(i); err != nil {
			r.err = fmt.Errorf("entity rows: %w", err)
			return false
		}
	} else {
		rec = r.ent.batches[i]
		rec.Retain()
	}
	defer rec.Release()
	r0, r1 := r.ent.offsets[i], r.ent.offsets[i+1]
	cols := make([]arrow.Array, 0, r.schema.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	for _, c := range rec.Columns() {
		c.Retain()
		cols = append(cols, c)
	}
	// Gather every view's features for these rows, features in parallel.
	base := len(cols)
	cols = append(cols, make([]arrow.Array, r.schema.NumFields()-base)...)
	g, gctx := errgroup.WithContext(r.ctx)
	g.SetLimit(r.par)
	var idxs []arrow.Array
	defer func() {
		for _, a := range idxs {
			a.Release()
		}
	}()
	k := base
	for _, vj := range r.views {
		if vj.agg != nil {
			for f := range vj.agg.specs {
				cols[k] = array.NewSlice(vj.store[f], int64(r0), int64(r1))
				k++
			}
			continue
		}
		if vj.fold != nil {
			out := cols[k : k+len(vj.fields)]
			k += len(vj.fields)
			g.Go(func() error {
				copy(out, vj.fold.columns(r.mem, vj.fields, vj.dense, r0, r1))
				return nil
			})
			continue
		}
		idx, nulls := indexArray(r.mem, vj.pos[r0:r1])
		idxs = append(idxs, idx)
		for f, field := range vj.fields {
			out := &cols[k]
			k++
			if vj.dense[f] != nil {
				*out = array.NewSlice(vj.store[f], int64(r0), int64(r1))
				continue
			}
			if nulls == r1-r0 {
				*out = array.MakeArrayOfNull(r.mem, field.Type, r1-r0)
				continue
			}
			g.Go(func() error {
				a, err := takeArray(gctx, vj.store[f], idx)
				if err != nil {
					return fmt.Errorf("view %q: gather feature %q: %w", vj.v.Name, field.Name, err)
				}
				*out = a
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		r.err = err
		return false
	}
	r.cur = array.NewRecordBatch(r.schema, cols, int64(r1-r0))
	return true
}

// indexArray turns store positions into Take indices, null where there is no match.
func indexArray(mem memory.Allocator, pos []int32) (arrow.Array, int) {
	nulls := 0
	for _, p := range pos {
		if p < 0 {
			nulls++
		}
	}
	vals := memory.NewResizableBuffer(mem)
	vals.Resize(4 * len(pos))
	v := arrow.Int32Traits.CastFromBytes(vals.Bytes())
	var valid *memory.Buffer
	if nulls > 0 {
		valid = memory.NewResizableBuffer(mem)
		valid.Resize(int(bitutil.BytesForBits(int64(len(pos)))))
		bits := valid.Bytes()
		clear(bits)
		for i, p := range pos {
			if p >= 0 {
				bitutil.SetBit(bits, i)
				v[i] = p
			} else {
				v[i] = 0
			}
		}
	} else {
		copy(v, pos)
	}
	d := array.NewData(arrow.PrimitiveTypes.Int32, len(pos), []*memory.Buffer{valid, vals}, nil, nulls, 0)
	vals.Release()
	if valid != nil {
		valid.Release()
	}
	defer d.Release()
	return array.MakeFromData(d), nulls
}
