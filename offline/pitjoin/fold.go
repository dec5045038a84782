package pitjoin

import (
	"context"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"
)

// foldMaxGroup is the most entity rows a key may have for its view to be folded: folding a
// feature row visits its key's entity rows, so the cost per row is bounded by it. A view whose
// entity side has a larger key takes the candidate path (merge per key, O((F+E) log F)).
const foldMaxGroup = 32

// fold is the as-of join of a view whose features are all fixed-width, done as the feature rows
// are read: every entity row keeps the best feature row seen so far (greatest event_ts, then
// created_ts, then read order, among those eligible for it) and its values. No candidate is
// kept, so the memory is the entity side's and the output's alone, and nothing spills. The
// winner of each entity row is the same as the merge's: the merge keeps the running best by the
// same order over the same eligible rows.
//
// The state is one slot per entity row in the index's order (a key's rows are adjacent, sorted
// by T), each slot words: the best row's event_ts (nullTS: none yet), created_ts and seq, the
// entity row's T, the validity bits of its values, then each value's bits. A feature row's key
// thus reads and writes one or two cache lines, not one per feature. The slots are the view's
// output: each output batch gathers its rows' values from them (columns), so no full-size
// output column is ever made.
type fold struct {
	mu     sync.Mutex
	stride int      // words a slot
	vw     int      // validity words a slot
	slots  []uint64 // len(order) slots
	slotOf []int32  // per entity row: its slot, -1 for none (null key or timestamp)
	sink   uint64   // keeps the loads ahead of the fold (foldBatch) from being optimized away
	// colSink is sink for columns, which output batches may call at once.
	colSink atomic.Uint64
}

const foldHead = 4 // ev, cr, seq, and the entity row's T

// foldWords is the fold's state per entity row, in 8-byte words.
func foldWords(features int) int { return foldHead + (features+63)/64 + features }

// canFold reports whether the view may be folded under the options and budget. The slots take
// the place of the dense columns (already taken off vj.budget), which a folded view never makes.
func (vj *viewJoin) canFold() bool {
	if !vj.opts.Fold || vj.agg != nil || vj.ntaken > 0 || len(vj.fields) == 0 {
		return false
	}
	avail := vj.budget
	for _, d := range vj.dense {
		avail += d.bytes()
	}
	if int64(8*foldWords(len(vj.fields))+8)*int64(vj.ent.n) > avail {
		return false
	}
	st := vj.ix.start
	for g := 1; g < len(st); g++ {
		if st[g]-st[g-1] > foldMaxGroup {
			return false
		}
	}
	return true
}

// foldScratch is one worker's buffers, reused from batch to batch: every slice is resliced to
// the batch's length and fully overwritten (tsMicros and keyTable.groups write every row), so
// nothing of an earlier batch is read for a later one.
type foldScratch struct {
	grp    []int32
	ev, cr []int64
	keys   []keyColumn
	cands  []foldCand
}

// foldCand is a feature row that can match some entity row of its key: the row and its key's
// slots [p0, p1).
type foldCand struct{ i, p0, p1 int32 }

func (s *foldScratch) groups(n int) []int32 {
	if cap(s.grp) < n {
		s.grp = make([]int32, n)
	}
	return s.grp[:n]
}

// runFold reads the view's feature rows and folds them (see fold).
func (vj *viewJoin) runFold(ctx context.Context, rdr array.RecordReader, schema *arrow.Schema) error {
	order := vj.ix.order
	nf := len(vj.fields)
	f := &fold{stride: foldWords(nf), vw: (nf + 63) / 64}
	f.slots = make([]uint64, f.stride*len(order))
	for p, r := range order {
		f.slots[p*f.stride] = 1 << 63 // nullTS: no match yet
		f.slots[p*f.stride+3] = uint64(vj.ent.ts[r])
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan batchJob, vj.opts.Parallelism)
	g.Go(func() error { return vj.feed(gctx, rdr, schema, jobs) })
	var cands int64
	for range vj.opts.Parallelism {
		g.Go(func() error {
			var s foldScratch
			for job := range jobs {
				k, err := vj.foldBatch(gctx, f, &s, job.rec, job.base)
				job.rec.Release()
				if err != nil {
					return err
				}
				f.mu.Lock()
				cands += k
				f.mu.Unlock()
			}
			return nil
		})
	}
	err := g.Wait()
	for job := range jobs { // left by a failed worker
		job.rec.Release()
	}
	if err != nil {
		return err
	}
	vj.stats.CandidateRows, vj.stats.FoldedViews = cands, 1
	f.slotOf = make([]int32, vj.ent.n)
	for r := range f.slotOf {
		f.slotOf[r] = -1
	}
	for p, r := range order {
		f.slotOf[r] = int32(p)
	}
	vj.fold = f
	return ctx.Err()
}

// columns makes the view's output columns for entity rows [r0, r1) from the slots, in one pass
// over the rows.
func (f *fold) columns(mem memory.Allocator, fields []arrow.Field, dense []*denseCol, r0, r1 int) []arrow.Array {
	n := r1 - r0
	type out struct {
		vals, valid *memory.Buffer
		data, bits  []byte
		nulls       int
	}
	outs := make([]out, len(fields))
	for j, d := range dense {
		o := &outs[j]
		o.vals, o.valid = memory.NewResizableBuffer(mem), memory.NewResizableBuffer(mem)
		o.vals.Resize(d.width * n)
		o.valid.Resize(int(bitutil.BytesForBits(int64(n))))
		o.data, o.bits = o.vals.Bytes(), o.valid.Bytes()
		clear(o.data)
		clear(o.bits)
	}
	stride, vw := f.stride, f.vw
	var touch uint64
	for b := 0; b < n; b += foldBlock {
		e := min(b+foldBlock, n)
		for _, p := range f.slotOf[r0+b : r0+e] { // load the block's slots first (foldBatch)
			if p >= 0 {
				touch += f.slots[int(p)*stride] + f.slots[int(p+1)*stride-1]
			}
		}
		for k := b; k < e; k++ {
			p := f.slotOf[r0+k]
			if p < 0 || int64(f.slots[int(p)*stride]) == nullTS {
				for j := range outs {
					outs[j].nulls++
				}
				continue
			}
			s := f.slots[int(p)*stride : int(p+1)*stride]
			valid, vals := s[foldHead:foldHead+vw], s[foldHead+vw:]
			for j, d := range dense {
				o := &outs[j]
				if valid[j/64]&(1<<(j%64)) != 0 {
					o.bits[k>>3] |= 1 << (k & 7)
				} else {
					o.nulls++
				}
				v := vals[j]
				if w := d.width; w == 8 {
					*(*uint64)(unsafe.Pointer(&o.data[k*8])) = v
				} else {
					copy(o.data[k*w:(k+1)*w], (*[8]byte)(unsafe.Pointer(&v))[:w])
				}
			}
		}
	}
	f.colSink.Add(touch)
	cols := make([]arrow.Array, len(fields))
	for j, o := range outs {
		d := array.NewData(fields[j].Type, n, []*memory.Buffer{o.valid, o.vals}, nil, o.nulls, 0)
		cols[j] = array.MakeFromData(d)
		d.Release()
		o.vals.Release()
		o.valid.Release()
	}
	return cols
}

// foldSrc is one feature column of a batch as raw fixed-width values.
type foldSrc struct {
	w     int    // value width in bytes
	raw   []byte // nil: every value is null
	vbits []byte // nil: no nulls
	off   int
}

// foldBatch folds one batch of feature rows and returns how many could match some entity row.
// The batch is prepared (keys, timestamps) without the lock; the fold itself holds it.
func (vj *viewJoin) foldBatch(ctx context.Context, f *fold, s *foldScratch, rec arrow.RecordBatch, base int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := int(rec.NumRows())
	if n == 0 {
		return 0, nil
	}
	s.keys = s.keys[:0]
	for j, ci := range vj.keyCols {
		kc, err := newKeyColumn(rec.Column(ci))
		if err != nil {
			return 0, vj.errorf("column %q: %w", vj.v.JoinKeys[j], err)
		}
		s.keys = append(s.keys, kc)
	}
	grp := s.groups(n)
	vj.ix.table.groups(s.keys, n, false, grp)
	var err error
	if s.ev, err = tsMicros(rec.Column(vj.evCol), s.ev[:0]); err != nil {
		return 0, vj.errorf("column %q: %w", EventTSColumn, err)
	}
	ev := s.ev
	var cr []int64
	if vj.crCol >= 0 {
		if s.cr, err = tsMicros(rec.Column(vj.crCol), s.cr[:0]); err != nil {
			return 0, vj.errorf("column %q: %w", CreatedTSColumn, err)
		}
		cr = s.cr
	}
	srcs := make([]foldSrc, len(vj.featCols))
	for j, ci := range vj.featCols {
		sd := rec.Column(ci).Data()
		d := vj.dense[j]
		src := foldSrc{w: d.width, off: sd.Offset()}
		if b := sd.Buffers()[1]; b != nil && b.Len() >= (src.off+sd.Len())*d.width {
			src.raw = b.Bytes()
		}
		if b := sd.Buffers()[0]; b != nil && sd.NullN() > 0 {
			src.vbits = b.Bytes()
		}
		srcs[j] = src
	}

	cutoff := vj.opts.CreatedCutoff && cr != nil
	ttl := vj.ttl
	// Find the candidates without the lock: the rows whose key has an entity row they can match.
	start, minT, maxT := vj.ix.start, vj.ix.minT, vj.ix.maxT
	cands := s.cands[:0]
	for i, gi := range grp {
		if gi < 0 || ev[i] == nullTS {
			continue
		}
		el := ev[i]
		if cutoff && cr[i] > el {
			el = cr[i]
		}
		if el > maxT[gi] || (ttl > 0 && ev[i] < satSub(minT[gi], ttl)) {
			continue
		}
		cands = append(cands, foldCand{i: int32(i), p0: start[gi], p1: start[gi+1]})
	}
	s.cands = cands

	stride, vw := f.stride, f.vw
	f.mu.Lock()
	defer f.mu.Unlock()
	slots := f.slots
	var touch uint64
	for b := 0; b < len(cands); b += foldBlock {
		block := cands[b:min(b+foldBlock, len(cands))]
		// Load every cache line of the block's slots first: the loads are independent, so their
		// cache misses overlap instead of stalling the fold one by one.
		for _, fc := range block {
			end := int(fc.p1) * stride
			for w := int(fc.p0) * stride; w < end; w += 8 { // one word in every 64 bytes
				touch += slots[w]
			}
			touch += slots[end-1]
		}
		for _, fc := range block {
			i := int(fc.i)
			e, c := ev[i], int64(nullTS)
			if cr != nil {
				c = cr[i]
			}
			el := e
			if cutoff && c > el {
				el = c
			}
			seq := base + int64(i)
			for p := int(fc.p0); p < int(fc.p1); p++ { // sorted by T
				s := slots[p*stride : (p+1)*stride : (p+1)*stride]
				t := int64(s[3])
				if t < el {
					continue
				}
				if ttl > 0 && e < satSub(t, ttl) {
					break // too old for this and every later entity row
				}
				if be := int64(s[0]); be != nullTS {
					bc := int64(s[1])
					if be > e || (be == e && (bc > c || (bc == c && int64(s[2]) > seq))) {
						continue // the held row wins
					}
				}
				s[0], s[1], s[2] = uint64(e), uint64(c), uint64(seq)
				valid, vals := s[foldHead:foldHead+vw], s[foldHead+vw:]
				clear(valid)
				for j := range srcs {
					srcs[j].put(valid, vals, j, i)
				}
			}
		}
	}
	f.sink += touch
	return int64(len(cands)), nil
}

// foldBlock is how many candidates' slots are loaded ahead of their fold.
const foldBlock = 64

// put writes row i of the source into value j of a slot: its bits, and its validity.
func (s *foldSrc) put(valid, vals []uint64, j, i int) {
	if s.raw == nil {
		vals[j] = 0
		return // every value is null
	}
	if s.vbits == nil || bitutil.BitIsSet(s.vbits, s.off+i) {
		valid[j/64] |= 1 << (j % 64)
	}
	w := s.w
	if w == 8 {
		vals[j] = *(*uint64)(unsafe.Pointer(&s.raw[(s.off+i)*8]))
		return
	}
	var v uint64
	copy((*[8]byte)(unsafe.Pointer(&v))[:w], s.raw[(s.off+i)*w:(s.off+i+1)*w])
	vals[j] = v
}
