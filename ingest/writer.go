package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/fold"
)

// Writer is the one write path of pushed and streamed rows into both stores: a canonical
// batch of a view goes online as the latest row per entity, through the stale-write guard
// (online/fold), and offline in one atomic append that records its commit token (offline's
// vocabulary: a push log's sequence number, a direct push's batch id, a stream's offsets),
// holding the warehouse lock. The Ingester (pushes through its log), PushDirect (quiver push)
// and stream consumers all write through one.
type Writer struct {
	// Online is the online store; nil writes nothing online (views with online: false).
	Online online.Writer
	// Offline is the offline store.
	Offline Offline
	// Lock, when set, is held around every offline commit (the warehouse lock that keeps
	// quiver gc from removing files being committed).
	Lock func(ctx context.Context) (unlock func(), err error)
}

// WriteOnline writes the latest row per entity of recs, batches of v, to the online store;
// nothing for a view with online: false or a Writer without one. An aggregation view's events
// are folded into its entities' tiles instead (aggregate.go).
func (w *Writer) WriteOnline(ctx context.Context, v *View, recs ...arrow.RecordBatch) (fold.Result, error) {
	if v.Online == nil || w.Online == nil {
		return fold.Result{}, nil
	}
	if v.Online.IsAggregation() {
		return foldAggregates(ctx, w.Online, v, recs...)
	}
	return fold.WriteLatest(ctx, w.Online, v.Online, v.Schema, recs...)
}

// Commit appends recs to the offline table of schema vs (its view's generation) in one atomic
// commit that records token. It takes ownership of recs.
func (w *Writer) Commit(ctx context.Context, vs offline.ViewSchema, recs []arrow.RecordBatch, token offline.Token) (offline.WriteResult, error) {
	if w.Lock != nil {
		unlock, err := w.Lock(ctx)
		if err != nil {
			for _, r := range recs {
				r.Release()
			}
			return offline.WriteResult{}, err
		}
		defer unlock()
	}
	return w.Offline.Append(ctx, vs, offline.NewSliceStream(recs[0].Schema(), recs...), token)
}

// Commits lists the commits of a view generation's table, oldest first; none when the table
// does not exist yet.
func (w *Writer) Commits(ctx context.Context, view string, generation int) ([]offline.Snapshot, error) {
	snaps, err := w.Offline.Snapshots(ctx, view, generation)
	if errors.Is(err, offline.ErrTableNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read commits of %q: %w", view, err)
	}
	return snaps, nil
}
