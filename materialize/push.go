package materialize

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// WriteLatest writes the latest row per entity of canonical batches (join keys, event_ts,
// created_ts, features) to the online store through its stale-write guard: a row older than
// the stored one is dropped. It is the online half of push and stream ingestion, and folds
// rows exactly as a materialization run does. It returns the number of entity rows written.
func WriteLatest(ctx context.Context, w online.Writer, v *online.View, vs offline.ViewSchema, recs ...arrow.RecordBatch) (int64, error) {
	acc := newLatest(v, vs, w, 1_000_000, 2048)
	for _, rec := range recs {
		if err := acc.add(ctx, rec); err != nil {
			return acc.written, err
		}
	}
	if err := acc.flush(ctx); err != nil {
		return acc.written, err
	}
	return acc.written, nil
}

// ColumnValues returns a reader of an Arrow column of declared type t, laid out as the
// offline package's canonical schema lays it out, as online values (null for a null slot).
func ColumnValues(col arrow.Array, t definitions.Type) (func(i int) online.Value, error) {
	r, err := columnReader(col, t)
	if err != nil {
		return nil, err
	}
	return r, nil
}
