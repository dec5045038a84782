package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/fold"
	"github.com/quiverfs/quiver/value"
)

// foldAggregates folds the events of canonical batches of aggregation view v into the
// entities' online tiles (online.TileFolder: one atomic read-modify-write per entity, each
// event counted once; docs/aggregations.md). Written counts the events, Stale those the tiles
// ignored: duplicates of events they already hold and late events no window reaches.
func foldAggregates(ctx context.Context, w online.Writer, v *View, recs ...arrow.RecordBatch) (fold.Result, error) {
	f, ok := w.(online.TileFolder)
	if !ok {
		return fold.Result{}, fmt.Errorf("view %q has aggregations, and the online store %T cannot fold events into tiles: %w", v.Name, w, online.ErrInvalidArgument)
	}
	ents, err := AggEvents(v.Online, v.Schema, recs...)
	if err != nil {
		return fold.Result{}, fmt.Errorf("view %q: %w", v.Name, err)
	}
	st, err := f.FoldEvents(ctx, v.Online, ents)
	return fold.Result{Written: st.Folded + st.Duplicates + st.Late, Stale: st.Duplicates + st.Late}, err
}

// AggEvents groups the rows of canonical batches of an aggregation view (join keys, event_ts,
// created_ts, the view's columns) into events per entity, entities in order of first
// appearance and each entity's events in row order.
func AggEvents(ov *online.View, vs offline.ViewSchema, recs ...arrow.RecordBatch) ([]online.EntityEvents, error) {
	var out []online.EntityEvents
	index := map[online.EntityKey]int{}
	nk := len(vs.JoinKeys)
	keyVals := make([]online.Value, nk)
	var keyBuf []byte
	for _, rec := range recs {
		keys := make([]func(int) online.Value, nk)
		var err error
		for i, c := range vs.JoinKeys {
			if keys[i], err = value.ColumnReader(rec.Column(i), c.Type); err != nil {
				return nil, fmt.Errorf("join key %q: %w", c.Name, err)
			}
		}
		evCol, ok1 := rec.Column(nk).(*array.Timestamp)
		crCol, ok2 := rec.Column(nk + 1).(*array.Timestamp)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("event_ts and created_ts must be timestamp columns")
		}
		cols := make([]func(int) online.Value, len(vs.Features))
		for i, c := range vs.Features {
			if cols[i], err = value.ColumnReader(rec.Column(nk+2+i), c.Type); err != nil {
				return nil, fmt.Errorf("column %q: %w", c.Name, err)
			}
		}
		for i := range int(rec.NumRows()) {
			if evCol.IsNull(i) {
				continue // no event time: in no window (the offline join skips it too)
			}
			for k := range keys {
				keyVals[k] = keys[k](i)
			}
			kb, err := ov.AppendKeyBytes(keyBuf, keyVals...)
			if err != nil {
				return nil, err
			}
			keyBuf = kb
			e := online.AggEvent{EventTS: time.UnixMicro(int64(evCol.Value(i))).UTC(), Values: make([]online.Value, len(cols))}
			if !crCol.IsNull(i) {
				e.CreatedTS = time.UnixMicro(int64(crCol.Value(i))).UTC()
			}
			for c := range cols {
				e.Values[c] = cols[c](i)
			}
			j, seen := index[online.EntityKey(kb)]
			if !seen {
				j = len(out)
				key := online.EntityKey(kb)
				index[key] = j
				out = append(out, online.EntityEvents{Key: key})
			}
			out[j].Events = append(out[j].Events, e)
		}
	}
	return out, nil
}
