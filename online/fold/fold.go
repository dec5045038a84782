// Package fold folds canonical batches of a feature view (the offline layout: join keys,
// event_ts, created_ts, features) into the latest row per entity and writes those rows to an
// online store through its stale-write guard. It is the online half of every write: a
// materialization run, a push and a stream all write online through it.
package fold

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/value"
)

// Fold keeps, per entity key, the row with the greatest (event_ts, created_ts) seen so far,
// so the online store is written once per entity rather than once per source row. Its memory
// is bounded by maxEntities: when full, it flushes to the online store and starts over. The
// store itself never lets an older row replace a newer one, so flushing early changes how
// many writes are made, never the result.
//
// It is the per-source-row loop of a materialization, so it is built for speed: a source row
// costs one map lookup that also yields the held row's timestamps (no time.Time is made, no
// held row is touched unless the source row wins), and a winning row's fixed-width values go
// into flat, pointer-free arrays (no Value per feature, nothing for the GC to scan); the
// online rows are made at Flush, one batch at a time.
type Fold struct {
	view        *online.View
	schema      offline.ViewSchema
	writer      online.Writer
	maxEntities int
	batchSize   int

	// Only, when set, restricts the fold to these entities (others are skipped).
	Only map[online.EntityKey]struct{}
	// Since, when not zero, skips rows whose event time is before it.
	Since time.Time
	// Written is the number of entity rows sent to the store so far; Stale, of those, the
	// rows the store kept its newer row for (online.KeptWriter; 0 when it cannot tell).
	Written, Stale int64

	rows map[online.EntityKey]entry // entity key -> held row
	byID idTable                    // the same, for a view keyed by one int64 join key (fast path)
	buf  []online.Row               // held rows: Key only until Flush makes the rest

	kinds  []kind              // per feature
	varIdx []int               // per feature: its index among the variable-width ones
	nvar   int                 // variable-width features
	raw    []uint64            // held row idx, fixed-width feature f: raw[idx*nf+f] (bits)
	null   []bool              // the same: a null value
	vals   []online.Value      // held row idx, variable-width feature j: vals[idx*nvar+j]
	pool   chan []online.Value // Flush's value buffers, one per batch in flight

	keyBuf  []byte
	keyVals []online.Value
}

// entry is a held row's index in buf and its (event_ts, created_ts), compared without
// making a time.Time.
type entry struct {
	idx int32
	o   order
}

// order is a row's (event_ts, created_ts) as seconds and nanoseconds since the Unix epoch; a
// null created_ts is the zero time.Time's, as Add compared before (time.Time{}).
type order struct {
	es, cs int64
	en, cn int32
}

// zeroSec is time.Time{} in seconds since the Unix epoch.
var zeroSec = time.Time{}.Unix()

// before reports whether o sorts before p: an earlier event, or the same event created earlier.
func (o order) before(p order) bool {
	if o.es != p.es {
		return o.es < p.es
	}
	if o.en != p.en {
		return o.en < p.en
	}
	if o.cs != p.cs {
		return o.cs < p.cs
	}
	return o.cn < p.cn
}

// stamp splits a timestamp of unit u into seconds and nanoseconds (as ToTime(u) does).
func stamp(v int64, u arrow.TimeUnit) (int64, int32) {
	var per int64
	switch u {
	case arrow.Second:
		return v, 0
	case arrow.Millisecond:
		per = 1e3
	case arrow.Microsecond:
		per = 1e6
	default:
		per = 1e9
	}
	sec, frac := v/per, v%per
	if frac < 0 {
		sec, frac = sec-1, frac+per
	}
	return sec, int32(frac * (1e9 / per))
}

func stampTime(sec int64, nsec int32) time.Time {
	if sec == zeroSec && nsec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// kind is how the fold stores a feature's values: fixed-width kinds as bits in raw.
type kind uint8

const (
	kindVar kind = iota // a Value in vals
	kindInt32
	kindInt64
	kindFloat32
	kindFloat64
	kindBool
)

// New returns a fold of view v (whose canonical schema is vs) into w, holding at most
// maxEntities rows before it flushes, written batchSize rows per call.
func New(v *online.View, vs offline.ViewSchema, w online.Writer, maxEntities, batchSize int) *Fold {
	l := &Fold{
		view: v, schema: vs, writer: w, maxEntities: maxEntities, batchSize: batchSize,
		rows:    make(map[online.EntityKey]entry),
		keyVals: make([]online.Value, len(vs.JoinKeys)),
		kinds:   make([]kind, len(vs.Features)),
		varIdx:  make([]int, len(vs.Features)),
		pool:    make(chan []online.Value, onlineWriters),
	}
	for i, c := range vs.Features {
		k := kindVar
		if !c.Type.Array {
			switch c.Type.Elem {
			case definitions.Int32:
				k = kindInt32
			case definitions.Int64:
				k = kindInt64
			case definitions.Float32:
				k = kindFloat32
			case definitions.Float64:
				k = kindFloat64
			case definitions.Bool:
				k = kindBool
			}
		}
		l.kinds[i] = k
		if k == kindVar {
			l.varIdx[i] = l.nvar
			l.nvar++
		}
	}
	return l
}

// column is one feature column of a batch, read the way its kind is stored.
type column struct {
	kind  kind
	arr   arrow.Array
	nulls bool // the column has nulls
	i32   []int32
	i64   []int64
	f32   []float32
	f64   []float64
	b     *array.Boolean
	read  func(int) online.Value // kindVar (and the reader every column is checked with)
}

// Add folds one canonical batch (join keys, event_ts, created_ts, features) into the latest
// rows, flushing when the entity bound is reached.
func (l *Fold) Add(ctx context.Context, rec arrow.RecordBatch) error {
	nk := len(l.schema.JoinKeys)
	keys := make([]func(int) online.Value, nk)
	for i, c := range l.schema.JoinKeys {
		r, err := value.ColumnReader(rec.Column(i), c.Type)
		if err != nil {
			return fmt.Errorf("join key %q: %w", c.Name, err)
		}
		keys[i] = r
	}
	eventCol, ok := rec.Column(nk).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("event_ts column is %s, want a timestamp", rec.Column(nk).DataType())
	}
	createdCol, ok := rec.Column(nk + 1).(*array.Timestamp)
	if !ok {
		return fmt.Errorf("created_ts column is %s, want a timestamp", rec.Column(nk+1).DataType())
	}
	cols := make([]column, len(l.schema.Features))
	for i, c := range l.schema.Features {
		col := rec.Column(nk + 2 + i)
		if list, ok := col.(*array.List); ok && list.ListValues().NullN() > 0 {
			return fmt.Errorf("feature %q: an array holds a null element; online arrays cannot hold nulls (make the whole array null instead)", c.Name)
		}
		r, err := value.ColumnReader(col, c.Type)
		if err != nil {
			return fmt.Errorf("feature %q: %w", c.Name, err)
		}
		fc := column{kind: l.kinds[i], arr: col, nulls: col.NullN() > 0, read: r}
		switch a := col.(type) {
		case *array.Int32:
			fc.i32 = a.Int32Values()
		case *array.Int64:
			fc.i64 = a.Int64Values()
		case *array.Float32:
			fc.f32 = a.Float32Values()
		case *array.Float64:
			fc.f64 = a.Float64Values()
		case *array.Boolean:
			fc.b = a
		default:
			fc.kind = kindVar // (ColumnReader accepted it: only variable-width kinds get here)
		}
		if fc.kind != l.kinds[i] {
			return fmt.Errorf("feature %q: column is %s, want %s", c.Name, col.DataType(), c.Type)
		}
		cols[i] = fc
	}
	// A view keyed by one int64 join key (the common case) looks rows up by the id itself:
	// no key encoding and no string hashing per source row, only per entity kept.
	var ids *array.Int64
	if nk == 1 && l.Only == nil && !l.schema.JoinKeys[0].Type.Array && l.schema.JoinKeys[0].Type.Elem == definitions.Int64 {
		ids, _ = rec.Column(0).(*array.Int64)
	}
	var idv []int64
	idNulls := false
	if ids != nil {
		idv, idNulls = ids.Int64Values(), ids.NullN() > 0
	}
	eventUnit := eventCol.DataType().(*arrow.TimestampType).Unit
	createdUnit := createdCol.DataType().(*arrow.TimestampType).Unit
	events, createds := eventCol.TimestampValues(), createdCol.TimestampValues()
	createdNulls := createdCol.NullN() > 0
	var since order
	since.es, since.en = l.Since.Unix(), int32(l.Since.Nanosecond())
	nf := len(cols)

	n := int(rec.NumRows())
	for i := 0; i < n; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		var o order
		o.es, o.en = stamp(int64(events[i]), eventUnit)
		if o.es < since.es || (o.es == since.es && o.en < since.en) {
			continue
		}
		if createdNulls && createdCol.IsNull(i) {
			o.cs = zeroSec
		} else {
			o.cs, o.cn = stamp(int64(createds[i]), createdUnit)
		}
		var e entry
		var seen bool
		fast := ids != nil && (!idNulls || ids.IsValid(i))
		var kb []byte
		var slot *idSlot
		if fast {
			if slot, seen = l.byID.find(idv[i]); seen {
				e = entry{idx: slot.e.idx - 1, o: slot.e.o}
			}
		} else {
			var err error
			if kb, err = l.keyOf(keys, i); err != nil {
				return err
			}
			if l.Only != nil {
				if _, ok := l.Only[online.EntityKey(kb)]; !ok {
					continue
				}
			}
			e, seen = l.rows[online.EntityKey(kb)] // no allocation: only kept keys are copied
		}
		if seen {
			if o.before(e.o) {
				continue // older than what we hold
			}
		} else {
			if len(l.buf) >= l.maxEntities {
				if err := l.Flush(ctx); err != nil {
					return err
				}
			}
			if fast {
				var err error
				if kb, err = l.keyOf(keys, i); err != nil {
					return err
				}
			}
			e.idx = int32(len(l.buf))
			l.buf = append(l.buf, online.Row{Key: online.EntityKey(kb)})
			l.raw = append(l.raw, make([]uint64, nf)...)
			l.null = append(l.null, make([]bool, nf)...)
			l.vals = append(l.vals, make([]online.Value, l.nvar)...)
		}
		e.o = o
		switch {
		case fast && seen:
			slot.e.o = o
		case fast:
			l.byID.insert(idv[i], e)
		default:
			l.rows[l.buf[e.idx].Key] = e // the held key: assigning string(kb) would allocate
		}
		base := int(e.idx) * nf
		raw, null := l.raw[base:base+nf:base+nf], l.null[base:base+nf:base+nf]
		for f := range cols {
			c := &cols[f]
			if c.kind == kindVar {
				l.vals[int(e.idx)*l.nvar+l.varIdx[f]] = c.read(i)
				continue
			}
			if c.nulls && c.arr.IsNull(i) {
				null[f] = true
				continue
			}
			null[f] = false
			switch c.kind {
			case kindInt64:
				raw[f] = uint64(c.i64[i])
			case kindFloat64:
				raw[f] = math.Float64bits(c.f64[i])
			case kindInt32:
				raw[f] = uint64(c.i32[i])
			case kindFloat32:
				raw[f] = uint64(math.Float32bits(c.f32[i]))
			case kindBool:
				if c.b.Value(i) {
					raw[f] = 1
				} else {
					raw[f] = 0
				}
			}
		}
	}
	return nil
}

// idTable maps an int64 join key to its held row: open addressing with linear probing, each
// slot holding the key and the entry side by side, so a lookup is about one cache miss and an
// update is a store through the slot (a Go map costs a second lookup to update, and more
// misses). A slot's entry holds idx+1; 0 is an empty slot.
type idTable struct {
	slots []idSlot // a power of two
	n     int
	shift uint8
}

type idSlot struct {
	key int64
	e   entry
}

func (t *idTable) home(key int64) int {
	return int((uint64(key) * 0x9E3779B97F4A7C15) >> t.shift)
}

// find returns key's slot and true, or false when key is not held.
func (t *idTable) find(key int64) (*idSlot, bool) {
	if t.n == 0 {
		return nil, false
	}
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.e.idx == 0 {
			return nil, false
		}
		if s.key == key {
			return s, true
		}
	}
}

// insert adds key, which is not held, with e (whose idx is the held row's index).
func (t *idTable) insert(key int64, e entry) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow()
	}
	mask := len(t.slots) - 1
	i := t.home(key)
	for t.slots[i].e.idx != 0 {
		i = (i + 1) & mask
	}
	e.idx++
	t.slots[i] = idSlot{key: key, e: e}
	t.n++
}

func (t *idTable) grow() {
	old := t.slots
	size := max(1024, 2*len(old))
	t.slots = make([]idSlot, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	t.n = 0
	for _, s := range old {
		if s.e.idx != 0 {
			s.e.idx--
			t.insert(s.key, s.e)
		}
	}
}

// reset forgets every key, keeping the table's size.
func (t *idTable) reset() {
	if t.n > 0 {
		clear(t.slots)
		t.n = 0
	}
}

// keyOf encodes row i's entity key into l.keyBuf and returns it (valid until the next call).
func (l *Fold) keyOf(keys []func(int) online.Value, i int) ([]byte, error) {
	for k := range keys {
		l.keyVals[k] = keys[k](i)
	}
	kb, err := l.view.AppendKeyBytes(l.keyBuf, l.keyVals...)
	if err != nil {
		return nil, fmt.Errorf("row %d: %w", i, err)
	}
	l.keyBuf = kb
	return kb, nil
}

// onlineWriters is how many batches flush has in flight at once: while the store applies one
// batch (Redis runs its stale-write script), the next is encoded and sent, so the client's
// work and the store's overlap instead of taking turns.
const onlineWriters = 2

// Flush writes every held row to the online store in batches and forgets them.
func (l *Fold) Flush(ctx context.Context) error {
	// The held rows' timestamps live in the maps.
	for i := range l.byID.slots {
		if e := &l.byID.slots[i].e; e.idx > 0 {
			r := &l.buf[e.idx-1]
			r.EventTS, r.CreatedTS = stampTime(e.o.es, e.o.en), stampTime(e.o.cs, e.o.cn)
		}
	}
	for _, e := range l.rows {
		r := &l.buf[e.idx]
		r.EventTS, r.CreatedTS = stampTime(e.o.es, e.o.en), stampTime(e.o.cs, e.o.cn)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(onlineWriters)
	var written, stale atomic.Int64
	kw, counts := l.writer.(online.KeptWriter)
	nf := len(l.kinds)
	for start := 0; start < len(l.buf); start += l.batchSize {
		end := min(start+l.batchSize, len(l.buf))
		batch := l.buf[start:end]
		g.Go(func() error {
			// The batch's values are made here, into a buffer reused once the write returns.
			var vb []online.Value
			select {
			case vb = <-l.pool:
			default:
			}
			if cap(vb) < len(batch)*nf {
				vb = make([]online.Value, len(batch)*nf)
			}
			vb = vb[:len(batch)*nf]
			defer func() { l.pool <- vb }()
			for j := range batch {
				idx := start + j
				vals := vb[j*nf : (j+1)*nf : (j+1)*nf]
				raw, null := l.raw[idx*nf:(idx+1)*nf], l.null[idx*nf:(idx+1)*nf]
				for f, k := range l.kinds {
					switch {
					case k == kindVar:
						vals[f] = l.vals[idx*l.nvar+l.varIdx[f]]
					case null[f]:
						vals[f] = value.Null()
					case k == kindInt64:
						vals[f] = value.NewInt64(int64(raw[f]))
					case k == kindFloat64:
						vals[f] = value.NewFloat64(math.Float64frombits(raw[f]))
					case k == kindInt32:
						vals[f] = value.NewInt32(int32(raw[f]))
					case k == kindFloat32:
						vals[f] = value.NewFloat32(math.Float32frombits(uint32(raw[f])))
					case k == kindBool:
						vals[f] = value.NewBool(raw[f] != 0)
					}
				}
				batch[j].Values = vals
			}
			if counts {
				kept, err := kw.WriteKept(gctx, l.view, batch)
				if err != nil {
					return fmt.Errorf("write online store: %w", err)
				}
				stale.Add(int64(len(batch)) - kept)
			} else if err := l.writer.Write(gctx, l.view, batch); err != nil {
				return fmt.Errorf("write online store: %w", err)
			}
			written.Add(int64(len(batch)))
			return nil
		})
	}
	err := g.Wait()
	l.Written += written.Load()
	l.Stale += stale.Load()
	if err != nil {
		return err
	}
	clear(l.rows)
	l.byID.reset()
	clear(l.buf) // drop the keys and values they hold
	clear(l.vals)
	l.buf, l.raw, l.null, l.vals = l.buf[:0], l.raw[:0], l.null[:0], l.vals[:0]
	return nil
}

// Holds reports whether the fold holds a row of entity key.
func (l *Fold) Holds(key online.EntityKey) bool {
	_, ok := l.rows[key]
	return ok
}

// Result reports a WriteLatest.
type Result struct {
	// Written is the number of entity rows sent to the store: the latest row per entity.
	Written int64
	// Stale is how many of those the store ignored because it held a newer row (0 when the
	// store cannot tell: it does not implement online.KeptWriter).
	Stale int64
}

// WriteLatest writes the latest row per entity of canonical batches to the online store
// through its stale-write guard: a row older than the stored one is dropped. It folds rows
// exactly as a materialization run does.
func WriteLatest(ctx context.Context, w online.Writer, v *online.View, vs offline.ViewSchema, recs ...arrow.RecordBatch) (Result, error) {
	acc := New(v, vs, w, 1_000_000, 2048)
	for _, rec := range recs {
		if err := acc.Add(ctx, rec); err != nil {
			return Result{acc.Written, acc.Stale}, err
		}
	}
	err := acc.Flush(ctx)
	return Result{acc.Written, acc.Stale}, err
}
