// Package materialize moves a time range of a feature view from its source into the offline
// store (one atomic Iceberg commit per run) and the online store (the latest row per entity),
// records each run in the registry, and advances the view's watermark only after both stores
// have committed.
//
// A run is idempotent: the offline commit replaces the interval's rows, and the online store
// never lets an older row replace a newer one, so running an interval again — after a success,
// a failure or a kill -9 — leaves the same rows and values.
package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/online/fold"
	"github.com/quiverfs/quiver/registry"
)

// Runs is the part of the registry materialization needs.
type Runs interface {
	StartRun(ctx context.Context, project, view string, start, end time.Time) (registry.MaterializationRun, error)
	FinishRun(ctx context.Context, id registry.RunID, result registry.RunResult) (registry.MaterializationRun, error)
	Watermark(ctx context.Context, project, view string) (registry.Watermark, error)
	AdvanceWatermark(ctx context.Context, u registry.WatermarkUpdate) (registry.Watermark, error)
	HeartbeatRun(ctx context.Context, id registry.RunID) error
	RecordAudit(ctx context.Context, e registry.AuditEvent) (registry.AuditEvent, error)
}

// Job is one view to materialize and the stores it goes to.
type Job struct {
	Project string
	Schema  offline.ViewSchema
	Source  offline.Source
	Offline offline.Writer
	// Online is where the latest row per entity goes; nil for a view with online: false.
	Online     online.Writer
	OnlineView *online.View
	// OfflineReader reads the view's offline table back; needed by SyncOnline and by Run
	// with Options.ReplaceOnline, unused otherwise.
	OfflineReader offline.Reader
	// TTL is the view's TTL.
	TTL time.Duration
}

// Options tune a run. The zero value is usable.
type Options struct {
	// OnlineBatch is the number of rows per online write; default 2048.
	OnlineBatch int
	// OnlineMaxEntities bounds how many entities' latest rows are held before flushing to the
	// online store; default 1,000,000.
	OnlineMaxEntities int
	// Progress, if set, is called after every source batch with the rows read so far.
	Progress func(rowsRead int64)
	Logger   *slog.Logger
	// Heartbeat is how often a running run tells the registry it is alive (see
	// registry.RecoveryStore); default registry.HeartbeatInterval(registry.DefaultLease).
	Heartbeat time.Duration
	// ReplaceOnline makes the online store exactly what the offline table says for every
	// entity the interval held before or holds after the run: each gets the latest row of
	// the whole table, written over whatever the store held (newer or not), and an entity
	// with no row left is removed. Without it, the online store only ever moves forward.
	ReplaceOnline bool
	// Actor names who ran a correction, for the registry's audit trail.
	Actor string
	// OnlineSince, when not zero, keeps rows whose event time is before it out of the online
	// store (they still go offline): a first incremental run loads the source's history
	// offline but only live values online (Interval.OnlineFrom).
	OnlineSince time.Time
	// OnlineWorkers, when > 0, loads the online store after the offline commit, from the
	// interval's committed rows, with this many workers over disjoint entity-key ranges
	// (fanout.go), instead of folding the rows on their way to the offline store. Plain views
	// only: an aggregation view's tiles, and ReplaceOnline, are loaded as without it.
	OnlineWorkers int
}

// Result describes a finished run.
type Result struct {
	RunID       registry.RunID
	View        string
	Start, End  time.Time
	RowsRead    int64
	OfflineRows int64 // rows in the interval after the commit (duplicates collapsed)
	OnlineRows  int64 // entity rows written to the online store
	// OnlineDeleted counts the entities removed from the online store (ReplaceOnline only).
	OnlineDeleted int64
	SnapshotID    int64 // the offline snapshot committed; 0 when NoCommit
	// NoCommit reports that the run had nothing to load and the offline table nothing to
	// replace in the interval, so no offline snapshot was committed.
	NoCommit bool
	Duration time.Duration
	// SourceTime, OfflineTime and OnlineTime split Duration between reading the source,
	// writing the offline store (sorting, de-duplicating, Parquet, the commit) and folding and
	// writing the latest rows to the online store.
	SourceTime, OfflineTime, OnlineTime time.Duration
	// Watermark is the view's watermark after the run (zero if it has none).
	Watermark time.Time
	// Conflicts counts source rows collapsed into a later row with the same (join keys,
	// event_ts, created_ts) but other feature values: distinct events of which the offline
	// store keeps only the last. ConflictExample names one. The run logs a warning when
	// Conflicts > 0.
	Conflicts       int64
	ConflictExample string
}

// Run materializes [start, end) of one view. It records the run in the registry, streams the
// source through both stores with bounded memory, and advances the view's watermark to end
// when the interval continues it (or the view has none yet). On failure the run is marked
// FAILED with the error and the watermark is left where it was.
func Run(ctx context.Context, runs Runs, job Job, start, end time.Time, opts Options) (res Result, err error) {
	if opts.OnlineBatch <= 0 {
		opts.OnlineBatch = 2048
	}
	if opts.OnlineMaxEntities <= 0 {
		opts.OnlineMaxEntities = 1_000_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	view := job.Schema.View
	rng := offline.Range{Start: start, End: end}
	if err := rng.Validate(); err != nil {
		return Result{}, fmt.Errorf("materialize %q: %w", view, err)
	}
	began := time.Now()
	run, err := runs.StartRun(ctx, job.Project, view, start, end)
	if err != nil {
		return Result{}, fmt.Errorf("materialize %q: record run: %w", view, err)
	}
	res = Result{RunID: run.ID, View: view, Start: start, End: end}
	log := opts.Logger.With("view", view, "run", run.ID)
	log.Info("materialization started", "start", start, "end", end)
	stopBeat := heartbeat(ctx, opts.Heartbeat, func(ctx context.Context) error { return runs.HeartbeatRun(ctx, run.ID) }, log)
	defer stopBeat()

	defer func() {
		res.Duration = time.Since(began)
		result := registry.RunResult{Status: registry.RunSucceeded, RowsRead: res.RowsRead, RowsWritten: res.OfflineRows, OfflineSnapshotID: res.SnapshotID}
		if err != nil {
			result.Status = registry.RunFailed
			result.Error = err.Error()
		}
		// Record the outcome even when ctx was cancelled (Ctrl-C): use a fresh, short context.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, ferr := runs.FinishRun(fctx, run.ID, result); ferr != nil && err == nil {
			err = fmt.Errorf("materialize %q: record run result: %w", view, ferr)
		}
		if err != nil {
			err = errkind.Mark(errkind.Failed, err) // the run is recorded FAILED: it ran and failed
			log.Error("materialization failed", "err", err)
		} else {
			log.Info("materialization finished", "rows_read", res.RowsRead, "offline_rows", res.OfflineRows, "online_rows", res.OnlineRows, "duration", res.Duration)
		}
	}()

	if err := job.Offline.EnsureTable(ctx, job.Schema); err != nil {
		return res, fmt.Errorf("materialize %q: offline table: %w", view, err)
	}
	var src offline.Stream
	if st, ok := job.Source.(*StagedSource); ok { // the Trino engine stages the run's interval
		src, err = st.ReadRun(ctx, job.Schema, rng, run.ID)
	} else {
		src, err = job.Source.Read(ctx, job.Schema, rng)
	}
	if err != nil {
		return res, fmt.Errorf("materialize %q: read %s: %w", view, job.Source, err)
	}
	defer src.Close()

	// An aggregation view's online tiles are rebuilt from the offline table after the commit.
	tiles := job.Online != nil && job.OnlineView != nil && job.OnlineView.IsAggregation()
	replace := opts.ReplaceOnline && job.Online != nil && job.OnlineView != nil && !tiles
	var prevSnapshots []int64
	if replace {
		if job.OfflineReader == nil {
			return res, fmt.Errorf("materialize %q: replace-online needs the offline store's reader", view)
		}
		if prevSnapshots, err = overlappingSnapshots(ctx, job.OfflineReader, view, max(job.Schema.Generation, 1), rng); err != nil {
			return res, fmt.Errorf("materialize %q: %w", view, err)
		}
	}
	fanOut := opts.OnlineWorkers > 0 && job.Online != nil && job.OnlineView != nil && !replace && !tiles
	var acc *fold.Fold
	if job.Online != nil && job.OnlineView != nil && !replace && !tiles && !fanOut {
		acc = fold.New(job.OnlineView, job.Schema, job.Online, opts.OnlineMaxEntities, opts.OnlineBatch)
		acc.Since = opts.OnlineSince
	}
	// The offline writer pulls batches through tee, which folds each into the online
	// accumulator on the way, so the source is read once.
	var sourceErr error
	tee := offline.NewFuncStream(src.Schema(), func(ctx context.Context) (arrow.RecordBatch, error) {
		t0 := time.Now()
		rec, err := src.Next(ctx)
		t1 := time.Now()
		res.SourceTime += t1.Sub(t0)
		if acc != nil {
			defer func() { res.OnlineTime += time.Since(t1) }()
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				sourceErr = fmt.Errorf("read %s: %w", job.Source, err)
				return nil, sourceErr
			}
			return nil, err
		}
		res.RowsRead += rec.NumRows()
		if acc != nil {
			if err := acc.Add(ctx, rec); err != nil {
				rec.Release()
				sourceErr = err
				return nil, err
			}
		}
		if opts.Progress != nil {
			opts.Progress(res.RowsRead)
		}
		return rec, nil
	}, src.Close)

	offlineStart := time.Now()
	wr, err := job.Offline.WriteInterval(ctx, job.Schema, rng, tee, strconv.FormatInt(int64(run.ID), 10))
	res.OfflineTime = time.Since(offlineStart) - res.SourceTime - res.OnlineTime
	if err != nil {
		if sourceErr != nil {
			return res, fmt.Errorf("materialize %q: %w", view, sourceErr)
		}
		return res, fmt.Errorf("materialize %q: write offline store: %w", view, err)
	}
	res.OfflineRows, res.SnapshotID, res.NoCommit = wr.RowsWritten, wr.SnapshotID, wr.NoOp
	res.Conflicts, res.ConflictExample = wr.Conflicts, wr.ConflictExample
	if wr.Conflicts > 0 {
		log.Warn("distinct events with the same join keys, event_ts and created_ts were collapsed; only the last of each was kept",
			"conflicts", wr.Conflicts, "example", wr.ConflictExample)
	}
	if replace {
		onlineStart := time.Now()
		rep, err := replaceOnline(ctx, job, rng, prevSnapshots, wr.SnapshotID, opts)
		res.OnlineTime += time.Since(onlineStart)
		res.OnlineRows, res.OnlineDeleted = rep.written, rep.deleted
		if err != nil {
			return res, fmt.Errorf("materialize %q: replace online rows: %w", view, err)
		}
		if err := audit(ctx, runs, registry.AuditEvent{Project: job.Project, Actor: opts.Actor, Action: registry.AuditReplaceOnline, Target: view}, map[string]any{
			"run_id": strconv.FormatInt(int64(run.ID), 10), "start": start, "end": end, "snapshot_id": strconv.FormatInt(wr.SnapshotID, 10),
			"entities": rep.entities, "written": rep.written, "deleted": rep.deleted,
		}); err != nil {
			return res, fmt.Errorf("materialize %q: %w", view, err)
		}
	}
	if tiles && wr.SnapshotID != 0 {
		t0 := time.Now()
		n, err := rebuildTiles(ctx, job, end, wr.SnapshotID, opts.OnlineBatch)
		res.OnlineTime += time.Since(t0)
		res.OnlineRows = n
		if err != nil {
			return res, fmt.Errorf("materialize %q: %w", view, err)
		}
	}
	if fanOut && wr.SnapshotID != 0 {
		t0 := time.Now()
		n, err := fanOutOnline(ctx, job, wr.SnapshotID, rng, opts.OnlineWorkers, Shard{}, opts)
		res.OnlineTime += time.Since(t0)
		res.OnlineRows = n
		if err != nil {
			return res, fmt.Errorf("materialize %q: load online store: %w", view, err)
		}
	}
	if acc != nil {
		flushStart := time.Now()
		err := acc.Flush(ctx)
		res.OnlineTime += time.Since(flushStart)
		if err != nil {
			return res, fmt.Errorf("materialize %q: %w", view, err)
		}
		res.OnlineRows = acc.Written
	}

	wm, err := runs.Watermark(ctx, job.Project, view)
	switch {
	case errors.Is(err, registry.ErrNotFound) || (err == nil && !start.After(wm.Time) && end.After(wm.Time)):
		wm, err = runs.AdvanceWatermark(ctx, registry.WatermarkUpdate{Project: job.Project, View: view, To: end, RunID: run.ID,
			Generation: max(job.Schema.Generation, 1)})
		if err != nil {
			return res, fmt.Errorf("materialize %q: advance watermark: %w", view, err)
		}
	case err != nil:
		return res, fmt.Errorf("materialize %q: read watermark: %w", view, err)
	}
	res.Watermark = wm.Time
	return res, nil
}

// Interval is what an incremental run of one view would cover.
type Interval struct {
	View       string
	Start, End time.Time
	// FromWatermark is false for a view never materialized: Start is then the beginning of
	// its source's history.
	FromWatermark bool
	// OnlineFrom, when not zero, is the earliest event time the run writes to the online
	// store (Options.OnlineSince): for a first run of a view with a TTL, End minus the TTL —
	// older values could only ever be served as OUTSIDE_MAX_AGE.
	OnlineFrom time.Time
	// UpToDate: the view's watermark (Start) is at or past End; there is nothing to run.
	UpToDate bool
}

// HistoryStart is where a first incremental run starts: the Unix epoch, so the offline store
// holds the source's whole history (every event since 1970) and datasets can join it.
var HistoryStart = time.Unix(0, 0).UTC()

// IncrementalInterval returns the interval an incremental run should cover: from the view's
// watermark to end; for a view never materialized, its source's whole history (HistoryStart
// to end) offline, and only what is still live (from end minus its TTL, OnlineFrom) online.
// UpToDate when the watermark is at or past end.
func IncrementalInterval(ctx context.Context, runs Runs, project, view string, ttl time.Duration, end time.Time) (Interval, error) {
	iv := Interval{View: view, End: end}
	wm, err := runs.Watermark(ctx, project, view)
	switch {
	case err == nil:
		iv.Start, iv.FromWatermark = wm.Time, true
	case errors.Is(err, registry.ErrNotFound):
		iv.Start = HistoryStart
		if ttl > 0 && end.Add(-ttl).After(iv.Start) {
			iv.OnlineFrom = end.Add(-ttl)
		}
	default:
		return iv, fmt.Errorf("read watermark of %q: %w", view, err)
	}
	iv.UpToDate = !iv.Start.Before(end)
	return iv, nil
}
