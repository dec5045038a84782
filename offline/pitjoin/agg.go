package pitjoin

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/internal/aggfn"
)

// Aggregation functions (the same names as definitions.AggFunc; the kernel is aggfn's).
const (
	AggCount         = string(aggfn.Count)
	AggSum           = string(aggfn.Sum)
	AggMean          = string(aggfn.Mean)
	AggMin           = string(aggfn.Min)
	AggMax           = string(aggfn.Max)
	AggLast          = string(aggfn.Last)
	AggCountDistinct = string(aggfn.CountDistinct)
)

// Aggregation is one windowed aggregation feature of a View: Function of the event column
// Column over the events with the entity row's keys and T - Window < event_ts <= T (and, with
// Options.CreatedCutoff, created_ts <= T). Null values are ignored; no events gives count and
// count_distinct 0 and null for the other functions. Events with identical (keys, event_ts,
// created_ts) are one event, the last one read winning, as in the offline store.
type Aggregation struct {
	// Name is the output column ("amount_sum_1d").
	Name     string
	Column   string
	Function string
	Window   time.Duration
}

// aggState is what a view with aggregations keeps: the spec per output, the event column each
// reads, and the output values per entity row.
type aggState struct {
	specs  []Aggregation
	col    []int // per spec: index into vj.fields (the event columns read)
	win    []int // per spec: index into wins
	wins   []int64
	kinds  []valKind // per event column
	out    []arrow.DataType
	vals   [][]uint64 // per spec, per entity row: int64 or float64 bits
	strs   [][]string // per spec of last of a string column (else nil), per entity row
	valid  [][]bool
	hasDis []bool // per event column: some spec counts its distinct values
	hasStr []bool // per event column: a string column some spec takes the last of
}

type valKind uint8

const (
	valInt valKind = iota
	valFloat
	valBool
	valBytes // strings and bytes: only count and count_distinct
	valOther
)

// aggColumns returns the distinct event columns the aggregations read, in first-use order.
func aggColumns(aggs []Aggregation) []string {
	var cols []string
	for _, a := range aggs {
		if !slices.Contains(cols, a.Column) {
			cols = append(cols, a.Column)
		}
	}
	return cols
}

// outputNames are the view's output columns: its aggregations' names, or its features.
func (v *View) outputNames() []string {
	if len(v.Aggregations) == 0 {
		return v.Features
	}
	out := make([]string, len(v.Aggregations))
	for i, a := range v.Aggregations {
		out[i] = a.Name
	}
	return out
}

// initAgg checks the aggregations against the bound event columns and allocates the outputs.
func (vj *viewJoin) initAgg() error {
	st := &aggState{specs: vj.v.Aggregations}
	for _, f := range vj.fields {
		k := valOther
		switch f.Type.ID() {
		case arrow.INT32, arrow.INT64, arrow.TIMESTAMP:
			k = valInt
		case arrow.FLOAT32, arrow.FLOAT64:
			k = valFloat
		case arrow.BOOL:
			k = valBool
		case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY, arrow.LARGE_BINARY:
			k = valBytes
		}
		st.kinds = append(st.kinds, k)
	}
	st.hasDis = make([]bool, len(vj.fields))
	st.hasStr = make([]bool, len(vj.fields))
	for _, a := range st.specs {
		if a.Window <= 0 {
			return vj.errorf("aggregation %q: window %s must be positive: %w", a.Name, a.Window, ErrInvalidInput)
		}
		ci := slices.Index(vj.v.Features, a.Column)
		k := st.kinds[ci]
		dt := vj.fields[ci].Type
		var out arrow.DataType
		switch a.Function {
		case AggCount:
			out = arrow.PrimitiveTypes.Int64
		case AggCountDistinct:
			if k == valOther || k == valFloat {
				return vj.errorf("aggregation %q: count_distinct does not accept column %q of type %s: %w", a.Name, a.Column, dt, ErrTypeMismatch)
			}
			out = arrow.PrimitiveTypes.Int64
			st.hasDis[ci] = true
		case AggSum:
			switch k {
			case valInt:
				if dt.ID() == arrow.TIMESTAMP {
					return vj.errorf("aggregation %q: sum does not accept timestamp column %q: %w", a.Name, a.Column, ErrTypeMismatch)
				}
				out = arrow.PrimitiveTypes.Int64
			case valFloat:
				out = arrow.PrimitiveTypes.Float64
			default:
				return vj.errorf("aggregation %q: sum does not accept column %q of type %s: %w", a.Name, a.Column, dt, ErrTypeMismatch)
			}
		case AggMean:
			if (k != valInt && k != valFloat) || dt.ID() == arrow.TIMESTAMP {
				return vj.errorf("aggregation %q: mean does not accept column %q of type %s: %w", a.Name, a.Column, dt, ErrTypeMismatch)
			}
			out = arrow.PrimitiveTypes.Float64
		case AggLast:
			if dt.ID() == arrow.STRING || dt.ID() == arrow.LARGE_STRING {
				out = arrow.BinaryTypes.String
				st.hasStr[ci] = true
				break
			}
			if k != valInt && k != valFloat && k != valBool {
				return vj.errorf("aggregation %q: last does not accept column %q of type %s: %w", a.Name, a.Column, dt, ErrTypeMismatch)
			}
			out = dt
		case AggMin, AggMax:
			if k != valInt && k != valFloat && (k != valBool || a.Function != AggLast) {
				return vj.errorf("aggregation %q: %s does not accept column %q of type %s: %w", a.Name, a.Function, a.Column, dt, ErrTypeMismatch)
			}
			out = dt
		default:
			return vj.errorf("aggregation %q: unknown function %q (valid: count, sum, mean, min, max, last, count_distinct): %w", a.Name, a.Function, ErrInvalidInput)
		}
		w := a.Window.Microseconds()
		wi := slices.Index(st.wins, w)
		if wi < 0 {
			wi = len(st.wins)
			st.wins = append(st.wins, w)
		}
		st.col = append(st.col, ci)
		st.win = append(st.win, wi)
		st.out = append(st.out, out)
		st.vals = append(st.vals, make([]uint64, vj.ent.n))
		var strs []string
		if a.Function == AggLast && out.ID() == arrow.STRING {
			strs = make([]string, vj.ent.n)
		}
		st.strs = append(st.strs, strs)
		valid := make([]bool, vj.ent.n)
		if a.Function == AggCount || a.Function == AggCountDistinct {
			for i := range valid {
				valid[i] = true // no events: 0
			}
		}
		st.valid = append(st.valid, valid)
	}
	vj.agg = st
	return nil
}

// swag is a sliding-window aggregator over a FIFO of partials (aggfn.State; two stacks): push at the back,
// pop at the front, query the whole window, each amortized O(1) without ever subtracting, so
// sums of floats carry no cancellation error from events that left the window.
type swag struct {
	float bool
	front []aggfn.State // suffix aggregates: front[i] = merge of front elements i..top (older first)
	back  []aggfn.State
	bagg  aggfn.State
}

func (s *swag) reset() { s.front, s.back, s.bagg = s.front[:0], s.back[:0], aggfn.State{} }

func (s *swag) push(p aggfn.State) {
	s.back = append(s.back, p)
	s.bagg = aggfn.Merge(s.bagg, p, s.float)
}

func (s *swag) pop() {
	if len(s.front) == 0 {
		// Move the back to the front, newest first, keeping aggregates of "this and newer".
		var acc aggfn.State
		for i := len(s.back) - 1; i >= 0; i-- {
			acc = aggfn.Merge(s.back[i], acc, s.float)
			s.front = append(s.front, acc)
		}
		s.back, s.bagg = s.back[:0], aggfn.State{}
	}
	s.front = s.front[:len(s.front)-1]
}

func (s *swag) query() aggfn.State {
	if len(s.front) == 0 {
		return s.bagg
	}
	return aggfn.Merge(s.front[len(s.front)-1], s.bagg, s.float)
}

// aggEvent is one deduplicated event of a key, in (event_ts, created_ts) order.
type aggEvent struct {
	ev, cr int64
	c, l   int32
}

// aggChunks computes the aggregations for the entity rows of groups [g0, g1), whose candidate
// events are in chunks.
func (vj *viewJoin) aggChunks(ctx context.Context, chunks []*chunk, g0, g1 int32) error {
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
	cands := make([]cand, m)
	fill := slices.Clone(start[:ng])
	for ci, c := range chunks {
		for l, g := range c.group {
			k := fill[g-g0]
			fill[g-g0]++
			cands[k] = cand{ev: c.ev[l], cr: c.cr[l], seq: c.seq[l], c: int32(ci), l: c.featRow(l)}
		}
	}
	par := max(vj.opts.Parallelism, 1)
	bounds := []int{0}
	for w := 1; w < par; w++ {
		target := int32(int64(m) * int64(w) / int64(par))
		gi, _ := slices.BinarySearch(start, target)
		bounds = append(bounds, max(min(gi, ng), bounds[len(bounds)-1]))
	}
	bounds = append(bounds, ng)
	g, gctx := errgroup.WithContext(ctx)
	for w := range par {
		g.Go(func() error {
			a := newAggWorker(vj, chunks)
			for gi := bounds[w]; gi < bounds[w+1]; gi++ {
				if gi%4096 == 0 {
					if err := gctx.Err(); err != nil {
						return err
					}
				}
				a.group(int(g0)+gi, cands[start[gi]:start[gi+1]])
			}
			return nil
		})
	}
	return g.Wait()
}

// aggWorker computes one key group at a time, reusing its scratch space.
type aggWorker struct {
	vj     *viewJoin
	st     *aggState
	chunks []*chunk
	evs    []aggEvent
	vals   [][]uint64 // per event column, per event
	ok     [][]bool
	keys   [][]string
	prompt []int32 // events whose created_ts does not delay them (all of them without the cutoff)
	late   []int32
	sw     []swag              // per (column, window)
	dis    []map[string]int32  // per (column, window): distinct values in the prompt window
	seen   map[string]struct{} // scratch for the late events
	res    []aggfn.State       // per (column, window)
	dcount []int64             // per (column, window)
}

func newAggWorker(vj *viewJoin, chunks []*chunk) *aggWorker {
	st := vj.agg
	nc, nw := len(vj.fields), len(st.wins)
	a := &aggWorker{vj: vj, st: st, chunks: chunks,
		vals: make([][]uint64, nc), ok: make([][]bool, nc), keys: make([][]string, nc),
		sw: make([]swag, nc*nw), dis: make([]map[string]int32, nc*nw), seen: map[string]struct{}{},
		res: make([]aggfn.State, nc*nw), dcount: make([]int64, nc*nw)}
	for c := range nc {
		for w := range nw {
			a.sw[c*nw+w].float = st.kinds[c] == valFloat
			if st.hasDis[c] {
				a.dis[c*nw+w] = map[string]int32{}
			}
		}
	}
	return a
}

func (a *aggWorker) group(g int, fs []cand) {
	vj, st := a.vj, a.st
	ents := vj.ix.order[vj.ix.start[g]:vj.ix.start[g+1]]
	if len(fs) == 0 || len(ents) == 0 {
		return
	}
	cutoff := vj.opts.CreatedCutoff
	sortCands(fs, false) // (event_ts, created_ts, read order) ascending
	a.evs = a.evs[:0]
	for i := range fs {
		if i+1 < len(fs) && fs[i+1].ev == fs[i].ev && fs[i+1].cr == fs[i].cr {
			continue // a duplicate (keys, event_ts, created_ts): the last one read wins
		}
		a.evs = append(a.evs, aggEvent{ev: fs[i].ev, cr: fs[i].cr, c: fs[i].c, l: fs[i].l})
	}
	n := len(a.evs)
	for c := range vj.fields {
		a.vals[c] = slices.Grow(a.vals[c][:0], n)[:n]
		a.ok[c] = slices.Grow(a.ok[c][:0], n)[:n]
		if st.hasDis[c] || st.hasStr[c] {
			a.keys[c] = slices.Grow(a.keys[c][:0], n)[:n]
		}
		for i, e := range a.evs {
			arr := a.chunks[e.c].feats[c]
			l := int(e.l)
			if arr.IsNull(l) {
				a.ok[c][i] = false
				continue
			}
			a.ok[c][i] = true
			a.vals[c][i] = valueBits(arr, l)
			if st.hasDis[c] || st.hasStr[c] {
				a.keys[c][i] = distinctKey(arr, l)
			}
		}
	}
	a.prompt, a.late = a.prompt[:0], a.late[:0]
	for i, e := range a.evs {
		if cutoff && e.cr > e.ev {
			a.late = append(a.late, int32(i))
		} else {
			a.prompt = append(a.prompt, int32(i))
		}
	}
	nw := len(st.wins)
	nc := len(vj.fields)
	for k := range a.sw {
		a.sw[k].reset()
		if a.dis[k] != nil {
			clear(a.dis[k])
		}
	}
	// Per window: prompt events [lo, hi) are in it; late events [llo, lhi) may be.
	lo := make([]int, nw)
	hi := 0
	llo := make([]int, nw)
	lhi := 0
	ts := vj.ent.ts
	for _, r := range ents {
		t := ts[r]
		for hi < len(a.prompt) && a.evs[a.prompt[hi]].ev <= t {
			e := int(a.prompt[hi])
			for c := range nc {
				p := a.single(c, e)
				for w := range nw {
					a.sw[c*nw+w].push(p)
					if d := a.dis[c*nw+w]; d != nil && a.ok[c][e] {
						d[a.keys[c][e]]++
					}
				}
			}
			hi++
		}
		for lhi < len(a.late) && a.evs[a.late[lhi]].ev <= t {
			lhi++
		}
		for w := range nw {
			from := satSub(t, st.wins[w]) // events with ev <= from have left
			for lo[w] < hi && a.evs[a.prompt[lo[w]]].ev <= from {
				e := int(a.prompt[lo[w]])
				for c := range nc {
					a.sw[c*nw+w].pop()
					if d := a.dis[c*nw+w]; d != nil && a.ok[c][e] {
						k := a.keys[c][e]
						if d[k]--; d[k] == 0 {
							delete(d, k)
						}
					}
				}
				lo[w]++
			}
			for llo[w] < lhi && a.evs[a.late[llo[w]]].ev <= from {
				llo[w]++
			}
			for c := range nc {
				k := c*nw + w
				a.res[k] = a.sw[k].query()
				if a.dis[k] != nil {
					a.dcount[k] = int64(len(a.dis[k]))
				}
				if llo[w] == lhi {
					continue
				}
				clear(a.seen)
				for _, e := range a.late[llo[w]:lhi] {
					if a.evs[e].cr > t {
						continue // created after T: not known at T
					}
					// Partials whose events interleave in time: Last compares timestamps.
					a.res[k] = aggfn.Merge(a.res[k], a.single(c, int(e)), a.sw[k].float)
					if a.dis[k] != nil && a.ok[c][e] {
						key := a.keys[c][e]
						if _, in := a.dis[k][key]; !in {
							if _, dup := a.seen[key]; !dup {
								a.seen[key] = struct{}{}
								a.dcount[k]++
							}
						}
					}
				}
			}
		}
		for s, spec := range st.specs {
			k := st.col[s]*nw + st.win[s]
			a.emit(s, spec.Function, st.kinds[st.col[s]], a.res[k], a.dcount[k], int(r))
		}
	}
}

// single is the partial of one event's value of column c.
func (a *aggWorker) single(c, e int) aggfn.State {
	var p aggfn.State
	switch {
	case !a.ok[c][e]:
	case a.st.hasStr[c]: // its values are strings: count and last
		p.AddString(a.keys[c][e], a.evs[e].ev, a.evs[e].cr)
	default:
		p.Add(a.vals[c][e], a.evs[e].ev, a.evs[e].cr, a.st.kinds[c] == valFloat)
	}
	return p
}

// emit stores aggregation s of entity row r.
func (a *aggWorker) emit(s int, fn string, k valKind, p aggfn.State, distinct int64, r int) {
	if strs := a.st.strs[s]; strs != nil { // last of a string column; the event's memory is not ours
		strs[r], a.st.valid[s][r] = strings.Clone(p.LastStr), p.N > 0
		return
	}
	a.st.vals[s][r], a.st.valid[s][r] = p.Result(aggfn.Func(fn), k == valFloat, distinct)
}

// valueBits is a non-null numeric or bool value as int64 bits (integers, timestamps in the
// column's unit, bools as 0/1) or float64 bits.
func valueBits(arr arrow.Array, l int) uint64 {
	switch a := arr.(type) {
	case *array.Int64:
		return uint64(a.Value(l))
	case *array.Int32:
		return uint64(int64(a.Value(l)))
	case *array.Timestamp:
		return uint64(int64(a.Value(l)))
	case *array.Float64:
		return math.Float64bits(a.Value(l))
	case *array.Float32:
		return math.Float64bits(float64(a.Value(l)))
	case *array.Boolean:
		if a.Value(l) {
			return 1
		}
	}
	return 0
}

// distinctKey is a value as a map key for count_distinct: exact, no hashing.
func distinctKey(arr arrow.Array, l int) string {
	switch a := arr.(type) {
	case *array.String:
		return a.Value(l)
	case *array.LargeString:
		return a.Value(l)
	case *array.Binary:
		return string(a.Value(l))
	case *array.LargeBinary:
		return string(a.Value(l))
	}
	return aggfn.DistinctKey(valueBits(arr, l))
}

// finishAgg turns the computed values into the view's output arrays, one per aggregation.
func (vj *viewJoin) finishAgg() error {
	st := vj.agg
	mem := vj.opts.Allocator
	vj.store = make([]arrow.Array, len(st.specs))
	for s := range st.specs {
		a, err := buildAggArray(mem, st.out[s], st.vals[s], st.strs[s], st.valid[s])
		if err != nil {
			return vj.errorf("aggregation %q: %w", st.specs[s].Name, err)
		}
		vj.store[s] = a
		st.vals[s], st.strs[s], st.valid[s] = nil, nil, nil
	}
	return nil
}

func buildAggArray(mem memory.Allocator, dt arrow.DataType, vals []uint64, strs []string, valid []bool) (arrow.Array, error) {
	b := array.NewBuilder(mem, dt)
	defer b.Release()
	b.Reserve(len(valid))
	switch bb := b.(type) {
	case *array.StringBuilder:
		for i, v := range strs {
			if valid[i] {
				bb.Append(v)
			} else {
				bb.AppendNull()
			}
		}
	case *array.Int64Builder:
		for i, v := range vals {
			if valid[i] {
				bb.UnsafeAppend(int64(v))
			} else {
				bb.UnsafeAppendBoolToBitmap(false)
			}
		}
	case *array.Int32Builder:
		for i, v := range vals {
			if valid[i] {
				bb.UnsafeAppend(int32(int64(v)))
			} else {
				bb.UnsafeAppendBoolToBitmap(false)
			}
		}
	case *array.Float64Builder:
		for i, v := range vals {
			if valid[i] {
				bb.UnsafeAppend(math.Float64frombits(v))
			} else {
				bb.UnsafeAppendBoolToBitmap(false)
			}
		}
	case *array.Float32Builder:
		for i, v := range vals {
			if valid[i] {
				bb.UnsafeAppend(float32(math.Float64frombits(v)))
			} else {
				bb.UnsafeAppendBoolToBitmap(false)
			}
		}
	case *array.TimestampBuilder:
		for i, v := range vals {
			if valid[i] {
				bb.UnsafeAppend(arrow.Timestamp(int64(v)))
			} else {
				bb.UnsafeAppendBoolToBitmap(false)
			}
		}
	case *array.BooleanBuilder:
		for i, v := range vals {
			if valid[i] {
				bb.UnsafeAppend(v != 0)
			} else {
				bb.UnsafeAppendBoolToBitmap(false)
			}
		}
	default:
		return nil, fmt.Errorf("output type %s: %w", dt, ErrTypeMismatch)
	}
	return b.NewArray(), nil
}
