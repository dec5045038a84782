package pitjoin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"
)

// candBytes is the join's working memory per candidate feature row on top of its values.
const candBytes = 32 + 28

// spillFanout is how many partitions a spilling view's candidates are split into at once.
const spillFanout = 16

// maxSpillDepth bounds repartitioning of partitions that are still over budget.
const maxSpillDepth = 4

// minPartitionBytes: a partition this small is joined in memory whatever the budget, so that a
// tiny budget cannot split the data into a file per key.
var minPartitionBytes int64 = 4 << 20

// chunk is a set of candidate feature rows: rows whose key occurs in the entity rows and whose
// timestamps can match at least one of that key's entity rows.
type chunk struct {
	group       []int32
	ev, cr, seq []int64
	feats       []arrow.Array
	// rows maps candidate k to its row in feats; nil means feats hold exactly the candidates.
	// A batch most of whose rows are candidates is kept whole rather than copied.
	rows []int32
	rec  arrow.RecordBatch // backing batch when read from a spill file
}

// featRow is the row of feats holding candidate k.
func (c *chunk) featRow(k int) int32 {
	if c.rows != nil {
		return c.rows[k]
	}
	return int32(k)
}

func (c *chunk) len() int { return len(c.group) }

func (c *chunk) bytes() int64 {
	n := int64(c.len()) * candBytes
	for _, f := range c.feats {
		n += dataBytes(f.Data())
	}
	return n
}

func (c *chunk) release() {
	for _, f := range c.feats {
		f.Release()
	}
	c.feats = nil
	if c.rec != nil {
		c.rec.Release()
		c.rec = nil
	}
}

// record wraps the chunk as a spill batch without copying the timestamp and group slices.
func (c *chunk) record(schema *arrow.Schema) arrow.RecordBatch {
	cols := make([]arrow.Array, 0, 4+len(c.feats))
	cols = append(cols, int32Array(c.group), int64Array(c.ev), int64Array(c.cr), int64Array(c.seq))
	cols = append(cols, c.feats...)
	rec := array.NewRecordBatch(schema, cols, int64(c.len()))
	for _, a := range cols[:4] {
		a.Release()
	}
	return rec
}

func chunkFromRecord(rec arrow.RecordBatch) *chunk {
	c := &chunk{
		group: rec.Column(0).(*array.Int32).Int32Values(),
		ev:    rec.Column(1).(*array.Int64).Int64Values(),
		cr:    rec.Column(2).(*array.Int64).Int64Values(),
		seq:   rec.Column(3).(*array.Int64).Int64Values(),
		rec:   rec,
	}
	for _, a := range rec.Columns()[4:] {
		a.Retain()
		c.feats = append(c.feats, a)
	}
	return c
}

func int32Array(v []int32) arrow.Array {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
	d := array.NewData(arrow.PrimitiveTypes.Int32, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func int64Array(v []int64) arrow.Array {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 8*len(v))
	d := array.NewData(arrow.PrimitiveTypes.Int64, len(v), []*memory.Buffer{nil, memory.NewBufferBytes(b)}, nil, 0, 0)
	defer d.Release()
	return array.MakeFromData(d)
}

func take(ctx context.Context, mem memory.Allocator, a arrow.Array, idx []int32) (arrow.Array, error) {
	ia := int32Array(idx)
	defer ia.Release()
	return takeArray(compute.WithAllocator(ctx, mem), a, ia)
}

// takeArray gathers a's values at idx (null indices give nulls). Indices are made by the engine
// and always in range, so the kernel's bounds check is skipped.
func takeArray(ctx context.Context, a, idx arrow.Array) (arrow.Array, error) {
	return compute.TakeArrayOpts(ctx, a, idx, compute.TakeOptions{BoundsCheck: false})
}

// viewJoin joins one view onto the entity rows.
type viewJoin struct {
	v        View
	opts     Options
	ent      *entitySide
	ix       *entityIndex
	budget   int64
	dir      string
	ttl      int64 // microseconds; 0: none
	keyCols  []int
	evCol    int
	crCol    int // -1: no created_ts column
	featCols []int
	fields   []arrow.Field // of the requested features
	spillSch *arrow.Schema

	stats Stats

	pos     []int32     // per entity row: index into store, -1 for no match
	dense   []*denseCol // per feature: fixed-width output in entity order, or nil
	matched []byte      // bitmap of entity rows with a match, when there are dense features
	ntaken  int         // features not dense: gathered into pieces, then taken at output
	pieces  [][]arrow.Array
	nstore  int32
	store   []arrow.Array
	agg     *aggState // set for a view with aggregations
	fold    *fold     // set for a folded view: its output is gathered from it (fold.go)
}

// outFields are the view's output columns: its features, or its aggregations.
func (vj *viewJoin) outFields() []arrow.Field {
	if vj.agg == nil {
		return vj.fields
	}
	out := make([]arrow.Field, len(vj.agg.specs))
	for i, a := range vj.agg.specs {
		out[i] = arrow.Field{Name: a.Name, Type: vj.agg.out[i], Nullable: true}
	}
	return out
}

func (vj *viewJoin) release() {
	for _, p := range vj.pieces {
		for _, a := range p {
			if a != nil {
				a.Release()
			}
		}
	}
	vj.pieces = nil
	for _, a := range vj.store {
		if a != nil {
			a.Release()
		}
	}
	vj.store = nil
	vj.fold = nil
}

func (vj *viewJoin) errorf(format string, args ...any) error {
	return fmt.Errorf("view %q: "+format, append([]any{vj.v.Name}, args...)...)
}

// bind resolves the feature rows' columns and checks their types against the entity rows'.
func (vj *viewJoin) bind(schema *arrow.Schema) error {
	col := func(name string) (int, bool) {
		ci := schema.FieldIndices(name)
		if len(ci) == 0 {
			return -1, false
		}
		return ci[0], true
	}
	vj.keyCols = vj.keyCols[:0]
	for j, name := range vj.v.JoinKeys {
		ci, ok := col(name)
		if !ok {
			return vj.errorf("feature rows have no join key column %q: %w", name, ErrMissingColumn)
		}
		dt := schema.Field(ci).Type
		kind, ok := keyKindOf(dt)
		entType := vj.ent.schema.Field(vj.ix.cols[j]).Type
		if !ok || kind != vj.ix.kinds[j] {
			return vj.errorf("join key %q is %s in the entity rows but %s in the feature rows: %w", name, entType, dt, ErrTypeMismatch)
		}
		vj.keyCols = append(vj.keyCols, ci)
	}
	ci, ok := col(EventTSColumn)
	if !ok {
		return vj.errorf("feature rows have no %q column: %w", EventTSColumn, ErrMissingColumn)
	}
	if dt := schema.Field(ci).Type; !checkTimestamp(dt) {
		return vj.errorf("column %q has type %s, want a timestamp: %w", EventTSColumn, dt, ErrTypeMismatch)
	}
	vj.evCol = ci
	vj.crCol = -1
	if ci, ok := col(CreatedTSColumn); ok {
		if dt := schema.Field(ci).Type; !checkTimestamp(dt) {
			return vj.errorf("column %q has type %s, want a timestamp: %w", CreatedTSColumn, dt, ErrTypeMismatch)
		}
		vj.crCol = ci
	}
	vj.featCols, vj.fields = vj.featCols[:0], vj.fields[:0]
	spill := []arrow.Field{
		{Name: "group", Type: arrow.PrimitiveTypes.Int32},
		{Name: "ev", Type: arrow.PrimitiveTypes.Int64},
		{Name: "cr", Type: arrow.PrimitiveTypes.Int64},
		{Name: "seq", Type: arrow.PrimitiveTypes.Int64},
	}
	for i, name := range vj.v.Features {
		ci, ok := col(name)
		if !ok {
			return vj.errorf("feature rows have no feature column %q: %w", name, ErrMissingColumn)
		}
		f := schema.Field(ci)
		vj.featCols = append(vj.featCols, ci)
		vj.fields = append(vj.fields, arrow.Field{Name: name, Type: f.Type, Nullable: true})
		spill = append(spill, arrow.Field{Name: fmt.Sprintf("f%d", i), Type: f.Type, Nullable: true})
	}
	vj.spillSch = arrow.NewSchema(spill, nil)
	return nil
}

// eventRange bounds the event_ts of the rows that can match.
func (vj *viewJoin) eventRange() EventRange {
	lo, hi := vj.ent.minT, vj.ent.maxT
	if lo > hi {
		return EventRange{Empty: true}
	}
	r := EventRange{To: time.UnixMicro(hi).UTC()}
	if vj.ttl > 0 {
		r.From = time.UnixMicro(satSub(lo, vj.ttl)).UTC()
	}
	return r
}

type batchJob struct {
	rec  arrow.RecordBatch
	base int64
}

// run streams the view's feature rows once, keeps the candidates (in memory, or spilled into
// key-range partitions once they pass the budget) and joins them.
func (vj *viewJoin) run(ctx context.Context) error {
	if vj.v.Open == nil {
		return vj.errorf("no feature rows (Open is nil): %w", ErrInvalidInput)
	}
	if vj.v.TTL > 0 {
		vj.ttl = max(vj.v.TTL.Microseconds(), 1)
	}
	for _, a := range vj.v.Aggregations { // only events inside the longest window can count
		vj.ttl = max(vj.ttl, a.Window.Microseconds(), 1)
	}
	rdr, err := vj.v.Open(ctx, vj.eventRange())
	if err != nil {
		return vj.errorf("open feature rows: %w", err)
	}
	defer rdr.Release()
	schema := rdr.Schema()
	if err := vj.bind(schema); err != nil {
		return err
	}
	vj.dense = make([]*denseCol, len(vj.fields))
	if len(vj.v.Aggregations) > 0 {
		if err := vj.initAgg(); err != nil {
			return err
		}
		vj.budget = max(vj.budget-int64(9*vj.ent.n*len(vj.agg.specs)), 0)
	}
	for f, field := range vj.fields {
		if vj.agg != nil {
			break
		}
		if w := denseWidth(field.Type); w > 0 {
			if vj.matched == nil {
				vj.matched = make([]byte, (vj.ent.n+7)/8)
			}
			vj.dense[f] = newDenseCol(field.Type, w, vj.ent.n)
			vj.budget = max(vj.budget-vj.dense[f].bytes(), 0)
		} else {
			vj.ntaken++
		}
	}

	if vj.canFold() {
		return vj.runFold(ctx, rdr, schema)
	}
	for _, d := range vj.dense {
		if d != nil {
			d.alloc()
		}
	}
	vj.pos = make([]int32, vj.ent.n)
	for i := range vj.pos {
		vj.pos[i] = -1
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan batchJob, vj.opts.Parallelism)
	out := make(chan *chunk, vj.opts.Parallelism)
	g.Go(func() error { return vj.feed(gctx, rdr, schema, jobs) })
	workers := errgroup.Group{}
	for range vj.opts.Parallelism {
		workers.Go(func() error {
			for job := range jobs {
				c, err := vj.extract(gctx, job.rec, job.base)
				job.rec.Release()
				if err != nil {
					cancel()
					return err
				}
				if c == nil {
					continue
				}
				select {
				case out <- c:
				case <-gctx.Done():
					c.release()
				}
			}
			return nil
		})
	}
	var werr error
	go func() {
		werr = workers.Wait()
		close(out)
	}()

	var (
		mem    []*chunk
		used   int64
		parts  *partitioner
		cerr   error
		toDisk = func(c *chunk) error {
			defer c.release()
			return parts.write(gctx, c)
		}
	)
	for c := range out {
		vj.stats.CandidateRows += int64(c.len())
		if cerr != nil {
			c.release()
			continue
		}
		if parts != nil {
			if cerr = toDisk(c); cerr != nil {
				cancel()
			}
			continue
		}
		mem = append(mem, c)
		used += c.bytes()
		if used > vj.budget {
			parts, cerr = newPartitioner(vj, 0, int32(vj.ix.table.len()), spillFanout, vj.opts.Allocator)
			for _, m := range mem {
				if cerr == nil {
					cerr = toDisk(m)
				} else {
					m.release()
				}
			}
			mem = nil
			if cerr != nil {
				cancel()
			}
		}
	}
	gerr := g.Wait()
	for job := range jobs {
		job.rec.Release()
	}
	defer func() {
		for _, m := range mem {
			m.release()
		}
		if parts != nil {
			parts.close()
		}
	}()
	if err := firstErr(cerr, werr, gerr); err != nil {
		return err
	}
	if parts == nil {
		if err := vj.joinChunks(ctx, mem, 0, int32(vj.ix.table.len())); err != nil {
			return err
		}
	} else {
		if err := parts.finish(); err != nil {
			return err
		}
		vj.stats.SpilledViews = 1
		for _, p := range parts.parts {
			if err := vj.joinPartition(ctx, p, 0); err != nil {
				return err
			}
		}
	}
	return vj.finish(ctx)
}

func firstErr(errs ...error) error {
	// Prefer a real failure over the cancellations it caused in other goroutines.
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// extract finds one batch's candidate rows.
func (vj *viewJoin) extract(ctx context.Context, rec arrow.RecordBatch, base int64) (*chunk, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	if n == 0 {
		return nil, nil
	}
	cols := make([]keyColumn, len(vj.keyCols))
	for j, ci := range vj.keyCols {
		var err error
		if cols[j], err = newKeyColumn(rec.Column(ci)); err != nil {
			return nil, vj.errorf("column %q: %w", vj.v.JoinKeys[j], err)
		}
	}
	grp := make([]int32, n)
	vj.ix.table.groups(cols, n, false, grp)
	ev, err := tsMicros(rec.Column(vj.evCol), nil)
	if err != nil {
		return nil, vj.errorf("column %q: %w", EventTSColumn, err)
	}
	var cr []int64
	if vj.crCol >= 0 {
		if cr, err = tsMicros(rec.Column(vj.crCol), nil); err != nil {
			return nil, vj.errorf("column %q: %w", CreatedTSColumn, err)
		}
	}
	cutoff := vj.opts.CreatedCutoff && cr != nil
	minT, maxT := vj.ix.minT, vj.ix.maxT
	sel := make([]int32, 0, n)
	for i, g := range grp {
		if g < 0 || ev[i] == nullTS {
			continue
		}
		e := ev[i]
		if cutoff && cr[i] > e {
			e = cr[i]
		}
		if e > maxT[g] || (vj.ttl > 0 && ev[i] < satSub(minT[g], vj.ttl)) {
			continue
		}
		sel = append(sel, int32(i))
	}
	if len(sel) == 0 {
		return nil, nil
	}
	c := &chunk{
		group: make([]int32, len(sel)),
		ev:    make([]int64, len(sel)),
		cr:    make([]int64, len(sel)),
		seq:   make([]int64, len(sel)),
	}
	for k, i := range sel {
		c.group[k] = grp[i]
		c.ev[k] = ev[i]
		c.seq[k] = base + int64(i)
		if cr != nil {
			c.cr[k] = cr[i]
		} else {
			c.cr[k] = nullTS
		}
	}
	keepWhole := 2*len(sel) >= n
	if keepWhole && len(sel) < n {
		c.rows = sel
	}
	for j, ci := range vj.featCols {
		a := rec.Column(ci)
		if keepWhole {
			a.Retain()
		} else if a, err = take(ctx, vj.opts.Allocator, a, sel); err != nil {
			c.release()
			return nil, vj.errorf("select rows of feature %q: %w", vj.v.Features[j], err)
		}
		c.feats = append(c.feats, a)
	}
	return c, nil
}

// cand is one candidate feature row in the merge: its timestamps, its ingestion order and where
// its values are (chunk c, row l).
type cand struct {
	ev, cr, seq int64
	c, l        int32
}

// joinChunks joins the candidates of groups [g0, g1) held in chunks, then gathers the matched
// feature values into a compact piece of the view's store.
func (vj *viewJoin) joinChunks(ctx context.Context, chunks []*chunk, g0, g1 int32) error {
	if vj.agg != nil {
		return vj.aggChunks(ctx, chunks, g0, g1)
	}
	ng := int(g1 - g0)
	start := make([]int32, ng+1)
	m := 0
	for _, c := range chunks {
		m += c.len()
		for _, g := range c.group {
			start[g-g0+1]++
		}
	}
	for i := 1; i <= ng; i++ {
		start[i] += start[i-1]
	}
	// Place the candidates into their key groups and merge each group, in parallel over
	// ranges of groups with about equal candidate counts. Each worker reads every chunk's
	// groups but writes only the candidates of its own range, so the random writes of the
	// placement (the costliest loop here) are split between the workers as well. Within a
	// group candidates stay in chunk and row order whatever the parallelism (and the merge
	// orders them fully by time and ingestion order anyway). Each worker records its matches
	// per chunk: the row in the chunk and the entity row.
	cands := make([]cand, m)
	fill := slices.Clone(start[:ng])
	par := max(vj.opts.Parallelism, 1)
	bounds := []int{0}
	for w := 1; w < par; w++ {
		target := int32(int64(m) * int64(w) / int64(par))
		gi, _ := slices.BinarySearch(start, target)
		bounds = append(bounds, max(min(gi, ng), bounds[len(bounds)-1]))
	}
	bounds = append(bounds, ng)
	takeIdx := make([][][]int32, par) // [worker][chunk]
	takeRow := make([][][]int32, par)
	g, gctx := errgroup.WithContext(ctx)
	for w := range par {
		takeIdx[w] = make([][]int32, len(chunks))
		takeRow[w] = make([][]int32, len(chunks))
		lo, hi := int32(bounds[w]), int32(bounds[w+1])
		if lo == hi {
			continue
		}
		g.Go(func() error {
			if par == 1 {
				placeAll(chunks, cands, fill, g0)
			} else {
				placeRange(chunks, cands, fill, g0+lo, g0+hi, g0)
			}
			return vj.mergeGroups(gctx, cands, start, g0, int(lo), int(hi), takeIdx[w], takeRow[w])
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	// Gather the matched values in parallel: fixed-width features are scattered straight into
	// entity-row order, one goroutine per feature; the others are taken chunk by chunk into
	// compact pieces.
	pieces := make([][]arrow.Array, len(chunks))
	idxs := make([][]int32, len(chunks))
	rows := make([][]int32, len(chunks))
	for ci := range chunks {
		for w := range par {
			idxs[ci] = append(idxs[ci], takeIdx[w][ci]...)
			rows[ci] = append(rows[ci], takeRow[w][ci]...)
		}
	}
	if vj.matched != nil {
		for ci := range chunks {
			for _, r := range rows[ci] {
				vj.matched[r>>3] |= 1 << (r & 7)
			}
		}
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(par)
	for f, d := range vj.dense {
		if d == nil {
			continue
		}
		g.Go(func() error {
			for ci, c := range chunks {
				if err := gctx.Err(); err != nil {
					return err
				}
				d.scatter(c.feats[f], idxs[ci], rows[ci])
			}
			return nil
		})
	}
	if vj.ntaken > 0 {
		for ci, c := range chunks {
			if len(idxs[ci]) == 0 {
				continue
			}
			piece := make([]arrow.Array, len(c.feats))
			pieces[ci] = piece
			g.Go(func() error {
				for f, a := range c.feats {
					if vj.dense[f] != nil {
						continue
					}
					t, err := take(gctx, vj.opts.Allocator, a, idxs[ci])
					if err != nil {
						return vj.errorf("gather feature %q: %w", vj.v.Features[f], err)
					}
					piece[f] = t
				}
				return nil
			})
		}
	}
	err := g.Wait()
	for ci, piece := range pieces {
		if piece == nil {
			continue
		}
		vj.pieces = append(vj.pieces, piece) // released by vj.release, also on error
		if err != nil {
			continue
		}
		for k, r := range rows[ci] {
			vj.pos[r] = vj.nstore + int32(k)
		}
		vj.nstore += int32(len(rows[ci]))
	}
	return err
}

// placeAll puts every chunk's candidates at their groups' next free slots.
func placeAll(chunks []*chunk, cands []cand, fill []int32, g0 int32) {
	for ci, c := range chunks {
		for l, g := range c.group {
			k := fill[g-g0]
			fill[g-g0]++
			cands[k] = cand{ev: c.ev[l], cr: c.cr[l], seq: c.seq[l], c: int32(ci), l: c.featRow(l)}
		}
	}
}

// placeRange is placeAll for the candidates whose group is in [lo, hi) only.
func placeRange(chunks []*chunk, cands []cand, fill []int32, lo, hi, g0 int32) {
	for ci, c := range chunks {
		for l, g := range c.group {
			if g < lo || g >= hi {
				continue
			}
			k := fill[g-g0]
			fill[g-g0]++
			cands[k] = cand{ev: c.ev[l], cr: c.cr[l], seq: c.seq[l], c: int32(ci), l: c.featRow(l)}
		}
	}
}

// mergeGroups runs the as-of merge for the groups gi in [lo, hi) (relative to g0): each key's
// candidates sorted by time, against its entity rows sorted by T, keeping the running best.
func (vj *viewJoin) mergeGroups(ctx context.Context, cands []cand, start []int32, g0 int32, lo, hi int, takeIdx, takeRow [][]int32) error {
	cutoff := vj.opts.CreatedCutoff
	ts := vj.ent.ts
	for gi := lo; gi < hi; gi++ {
		if gi%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		fs := cands[start[gi]:start[gi+1]]
		if len(fs) == 0 {
			continue
		}
		sortCands(fs, cutoff)
		g := int(g0) + gi
		ents := vj.ix.order[vj.ix.start[g]:vj.ix.start[g+1]]
		j, best := 0, -1
		for _, r := range ents {
			t := ts[r]
			for j < len(fs) && elig(&fs[j], cutoff) <= t {
				if best < 0 || later(&fs[j], &fs[best]) {
					best = j
				}
				j++
			}
			if best < 0 || (vj.ttl > 0 && fs[best].ev < satSub(t, vj.ttl)) {
				continue
			}
			b := &fs[best]
			takeIdx[b.c] = append(takeIdx[b.c], b.l)
			takeRow[b.c] = append(takeRow[b.c], r)
		}
	}
	return nil
}

func elig(c *cand, cutoff bool) int64 {
	if cutoff && c.cr > c.ev {
		return c.cr
	}
	return c.ev
}

// later reports whether a wins over b: greater event_ts, then greater created_ts, then read later.
func later(a, b *cand) bool {
	if a.ev != b.ev {
		return a.ev > b.ev
	}
	if a.cr != b.cr {
		return a.cr > b.cr
	}
	return a.seq > b.seq
}

func candLess(a, b *cand, cutoff bool) bool {
	if ea, eb := elig(a, cutoff), elig(b, cutoff); ea != eb {
		return ea < eb
	}
	return later(b, a)
}

func sortCands(fs []cand, cutoff bool) {
	if len(fs) <= 16 {
		for i := 1; i < len(fs); i++ {
			for j := i; j > 0 && candLess(&fs[j], &fs[j-1], cutoff); j-- {
				fs[j], fs[j-1] = fs[j-1], fs[j]
			}
		}
		return
	}
	slices.SortFunc(fs, func(a, b cand) int {
		if candLess(&a, &b, cutoff) {
			return -1
		}
		if candLess(&b, &a, cutoff) {
			return 1
		}
		return 0
	})
}

// joinPartition joins one spilled partition, splitting it again first if it is over budget.
func (vj *viewJoin) joinPartition(ctx context.Context, p *partFile, depth int) error {
	if p.file == nil {
		return nil
	}
	defer p.file.close()
	if err := ctx.Err(); err != nil {
		return err
	}
	f := p.file
	size := f.bytes + f.rows*candBytes
	if size > max(vj.budget, minPartitionBytes) && p.g1-p.g0 > 1 && depth < maxSpillDepth {
		fanout := min(size/max(vj.budget, minPartitionBytes, 1)+1, 64)
		sub, err := newPartitioner(vj, p.g0, p.g1, int(fanout), vj.opts.Allocator)
		if err != nil {
			return err
		}
		defer sub.close()
		for i := range f.numBatches() {
			rec, err := f.batch(i)
			if err != nil {
				return vj.errorf("%w", err)
			}
			c := chunkFromRecord(rec)
			err = sub.write(ctx, c)
			c.release()
			if err != nil {
				return err
			}
		}
		if err := sub.finish(); err != nil {
			return err
		}
		f.close()
		for _, sp := range sub.parts {
			if err := vj.joinPartition(ctx, sp, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	chunks := make([]*chunk, 0, f.numBatches())
	defer func() {
		for _, c := range chunks {
			c.release()
		}
	}()
	for i := range f.numBatches() {
		rec, err := f.batch(i)
		if err != nil {
			return vj.errorf("%w", err)
		}
		chunks = append(chunks, chunkFromRecord(rec))
	}
	return vj.joinChunks(ctx, chunks, p.g0, p.g1)
}

// finish concatenates the gathered pieces into the view's store.
func (vj *viewJoin) finish(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if vj.agg != nil {
		return vj.finishAgg()
	}
	vj.store = make([]arrow.Array, len(vj.fields))
	for f, field := range vj.fields {
		if d := vj.dense[f]; d != nil {
			vj.store[f] = d.array(vj.ent.n, vj.matched)
			continue
		}
		switch len(vj.pieces) {
		case 0:
			vj.store[f] = array.MakeArrayOfNull(vj.opts.Allocator, field.Type, 0)
		case 1:
			vj.store[f] = vj.pieces[0][f]
			vj.store[f].Retain()
		default:
			parts := make([]arrow.Array, len(vj.pieces))
			for i, p := range vj.pieces {
				parts[i] = p[f]
			}
			a, err := array.Concatenate(parts, vj.opts.Allocator)
			if err != nil {
				return vj.errorf("concatenate feature %q: %w", field.Name, err)
			}
			vj.store[f] = a
		}
		for _, p := range vj.pieces {
			p[f].Release()
			p[f] = nil
		}
	}
	vj.pieces = nil
	return nil
}

// feed sends the feature batches of rdr, each retained and numbered by its first row, to jobs
// until the reader ends or ctx is done; it closes jobs.
func (vj *viewJoin) feed(ctx context.Context, rdr array.RecordReader, schema *arrow.Schema, jobs chan<- batchJob) error {
	defer close(jobs)
	var base int64
	for rdr.Next() {
		rec := rdr.RecordBatch()
		if !rec.Schema().Equal(schema) {
			return vj.errorf("a feature batch's schema %s differs from the reader's %s: %w", rec.Schema(), schema, ErrInvalidInput)
		}
		rec.Retain()
		select {
		case jobs <- batchJob{rec: rec, base: base}:
		case <-ctx.Done():
			rec.Release()
			return ctx.Err()
		}
		base += rec.NumRows()
	}
	if err := rdr.Err(); err != nil {
		return vj.errorf("read feature rows: %w", err)
	}
	return nil
}
