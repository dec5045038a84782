package materialize

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// Resumable backfills (materialize --chunk D --parallel K): [start, end) of a view is split
// into chunks (Chunks), recorded in the registry with each chunk's state
// (registry.BackfillStore), and each chunk not yet DONE is one materialization run. A re-run
// of the same backfill runs only the chunks not DONE — a chunk left RUNNING by a killed
// process is loaded again, which is safe since a run is idempotent. Runs of chunks finish in
// any order, so the watermark is moved after the last chunk (FinishBackfill).

// Chunks splits [start, end) into the registry's chunks of length chunk from start, the
// last one ending at end.
func Chunks(start, end time.Time, chunk time.Duration) ([]registry.BackfillChunk, error) {
	if chunk <= 0 {
		return nil, fmt.Errorf("chunk size %s is not positive", chunk)
	}
	if !start.Before(end) {
		return nil, fmt.Errorf("interval [%s, %s) is empty", start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	const maxChunks = 100_000
	if n := end.Sub(start) / chunk; n >= maxChunks {
		return nil, fmt.Errorf("chunks of %s split [%s, %s) into more than %d chunks; use larger chunks", chunk, start.Format(time.RFC3339), end.Format(time.RFC3339), maxChunks)
	}
	var out []registry.BackfillChunk
	for at := start; at.Before(end); at = at.Add(chunk) {
		out = append(out, registry.BackfillChunk{Seq: len(out), Start: at, End: minTime(at.Add(chunk), end)})
	}
	return out, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// FinishBackfill moves the view's watermark to end after every chunk of a backfill of
// [start, end) is DONE, when the backfill continues it (the watermark is within [start, end),
// or the view has none): what one run of [start, end) would have done. runID is the run
// recorded as having moved it (the last chunk's).
func FinishBackfill(ctx context.Context, runs Runs, project, view string, generation int, start, end time.Time, runID registry.RunID) (time.Time, error) {
	wm, err := runs.Watermark(ctx, project, view)
	switch {
	case errors.Is(err, registry.ErrNotFound) || (err == nil && !start.After(wm.Time) && end.After(wm.Time)):
		wm, err = runs.AdvanceWatermark(ctx, registry.WatermarkUpdate{Project: project, View: view, To: end, RunID: runID, Generation: max(generation, 1)})
		if err != nil {
			return time.Time{}, fmt.Errorf("backfill of %q: advance watermark: %w", view, err)
		}
	case err != nil:
		return time.Time{}, fmt.Errorf("backfill of %q: read watermark: %w", view, err)
	}
	return wm.Time, nil
}
