// Package fold folds canonical batches of a feature view (the offline layout: join keys,
// event_ts, created_ts, features) into the latest row per entity and writes those rows to an
// online store through its stale-write guard. It is the online half of every write: a
// materialization run, a push and a stream all write online through it.
package fold

import (
	"context"
	"fmt"
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

	rows map[online.EntityKey]int // entity key -> index into buf
	byID map[int64]int            // the same, for a view keyed by one int64 join key (fast path)
	buf  []online.Row

	keyBuf  []byte
	keyVals []online.Value
}

// New returns a fold of view v (whose canonical schema is vs) into w, holding at most
// maxEntities rows before it flushes, written batchSize rows per call.
func New(v *online.View, vs offline.ViewSchema, w online.Writer, maxEntities, batchSize int) *Fold {
	return &Fold{
		view: v, schema: vs, writer: w, maxEntities: maxEntities, batchSize: batchSize,
		rows:    make(map[online.EntityKey]int),
		byID:    make(map[int64]int),
		keyVals: make([]online.Value, len(vs.JoinKeys)),
	}
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
	feats := make([]func(int) online.Value, len(l.schema.Features))
	for i, c := range l.schema.Features {
		col := rec.Column(nk + 2 + i)
		if list, ok := col.(*array.List); ok && list.ListValues().NullN() > 0 {
			return fmt.Errorf("feature %q: an array holds a null element; online arrays cannot hold nulls (make the whole array null instead)", c.Name)
		}
		r, err := value.ColumnReader(col, c.Type)
		if err != nil {
			return fmt.Errorf("feature %q: %w", c.Name, err)
		}
		feats[i] = r
	}
	// A view keyed by one int64 join key (the common case) looks rows up by the id itself:
	// no key encoding and no string hashing per source row, only per entity kept.
	var ids *array.Int64
	if nk == 1 && l.Only == nil && !l.schema.JoinKeys[0].Type.Array && l.schema.JoinKeys[0].Type.Elem == definitions.Int64 {
		ids, _ = rec.Column(0).(*array.Int64)
	}
	eventUnit := eventCol.DataType().(*arrow.TimestampType).Unit
	createdUnit := createdCol.DataType().(*arrow.TimestampType).Unit

	n := int(rec.NumRows())
	for i := 0; i < n; i++ {
		if i%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		eventTS := eventCol.Value(i).ToTime(eventUnit).UTC()
		if eventTS.Before(l.Since) {
			continue
		}
		var createdTS time.Time
		if !createdCol.IsNull(i) {
			createdTS = createdCol.Value(i).ToTime(createdUnit).UTC()
		}
		var idx int
		var seen bool
		fast := ids != nil && ids.IsValid(i)
		if fast {
			idx, seen = l.byID[ids.Value(i)]
		} else {
			kb, err := l.keyOf(keys, i)
			if err != nil {
				return err
			}
			if l.Only != nil {
				if _, ok := l.Only[online.EntityKey(kb)]; !ok {
					continue
				}
			}
			idx, seen = l.rows[online.EntityKey(kb)] // no allocation: only kept keys are copied
		}
		if seen {
			cur := &l.buf[idx]
			if eventTS.Before(cur.EventTS) || (eventTS.Equal(cur.EventTS) && createdTS.Before(cur.CreatedTS)) {
				continue // older than what we hold
			}
		} else {
			if len(l.buf) >= l.maxEntities {
				if err := l.Flush(ctx); err != nil {
					return err
				}
			}
			kb, err := l.keyOf(keys, i)
			if err != nil {
				return err
			}
			key := online.EntityKey(kb)
			idx = len(l.buf)
			l.buf = append(l.buf, online.Row{Key: key, Values: make([]online.Value, len(feats))})
			if fast {
				l.byID[ids.Value(i)] = idx
			} else {
				l.rows[key] = idx
			}
		}
		row := &l.buf[idx]
		row.EventTS, row.CreatedTS = eventTS, createdTS
		for f := range feats {
			row.Values[f] = feats[f](i)
		}
	}
	return nil
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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(onlineWriters)
	var written, stale atomic.Int64
	kw, counts := l.writer.(online.KeptWriter)
	for start := 0; start < len(l.buf); start += l.batchSize {
		batch := l.buf[start:min(start+l.batchSize, len(l.buf))]
		g.Go(func() error {
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
	clear(l.byID)
	l.buf = l.buf[:0]
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
