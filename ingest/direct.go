package ingest

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
)

// DirectResult reports a direct push.
type DirectResult struct {
	Rows int64
	// OnlineRows and StaleRows are as in Result: entity rows the online store took, and
	// those it ignored because it held a newer row.
	OnlineRows int64
	StaleRows  int64
	// OfflineRows is the number of rows the offline commit appended (0 when AlreadyCommitted).
	OfflineRows int64
	SnapshotID  int64
	// AlreadyCommitted reports that the offline table already held this batch (a re-run of
	// a push whose first run committed): nothing was appended again.
	AlreadyCommitted bool
}

// PushDirect writes canonical batches of one view to both stores synchronously, without a
// log: the latest row per entity online (stale-write guard kept), then one atomic offline
// append whose summary records batchID. If the table already holds a commit of batchID,
// the offline append is skipped, so re-running a push (after a failure or a kill) never
// commits its rows twice. It is what `quiver push` does without --server. It takes ownership
// of recs.
func PushDirect(ctx context.Context, v *View, on online.Writer, off Offline, recs []arrow.RecordBatch, batchID string) (DirectResult, error) {
	var res DirectResult
	defer func() {
		for _, r := range recs {
			if r != nil {
				r.Release()
			}
		}
	}()
	for _, r := range recs {
		res.Rows += r.NumRows()
	}
	if res.Rows == 0 {
		return res, invalidBatchf("view %q: no rows", v.Name)
	}
	w := &Writer{Online: on, Offline: off}
	ow, err := w.WriteOnline(ctx, v, recs...)
	if err != nil {
		return res, fmt.Errorf("push %q: %w", v.Name, err)
	}
	res.OnlineRows, res.StaleRows = ow.Written-ow.Stale, ow.Stale
	snaps, err := w.Commits(ctx, v.Name, v.Schema.Generation)
	if err != nil {
		return res, fmt.Errorf("push %q: %w", v.Name, err)
	}
	if s, ok := offline.PushBatchCommit(snaps, batchID); ok {
		res.AlreadyCommitted, res.SnapshotID = true, s.ID
		return res, nil
	}
	owned := recs
	recs = nil // the commit owns them
	wr, err := w.Commit(ctx, v.Schema, owned, offline.PushBatchToken(batchID))
	if err != nil {
		return res, fmt.Errorf("push %q: commit offline: %w", v.Name, err)
	}
	res.OfflineRows, res.SnapshotID = wr.RowsWritten, wr.SnapshotID
	return res, nil
}
