package materialize

import (
	"context"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// OnlineWrite reports a WriteLatest.
type OnlineWrite struct {
	// Written is the number of entity rows sent to the store: the latest row per entity.
	Written int64
	// Stale is how many of those the store ignored because it held a newer row (0 when the
	// store cannot tell: it does not implement online.KeptWriter).
	Stale int64
}

// WriteLatest writes the latest row per entity of canonical batches (join keys, event_ts,
// created_ts, features) to the online store through its stale-write guard: a row older than
// the stored one is dropped. It is the online half of push and stream ingestion, and folds
// rows exactly as a materialization run does.
func WriteLatest(ctx context.Context, w online.Writer, v *online.View, vs offline.ViewSchema, recs ...arrow.RecordBatch) (OnlineWrite, error) {
	acc := newLatest(v, vs, w, 1_000_000, 2048)
	for _, rec := range recs {
		if err := acc.add(ctx, rec); err != nil {
			return OnlineWrite{acc.written, acc.stale}, err
		}
	}
	err := acc.flush(ctx)
	return OnlineWrite{acc.written, acc.stale}, err
}
