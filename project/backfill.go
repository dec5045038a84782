package project

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
)

// BackfillOptions split each interval into chunks (materialize --chunk, --parallel).
type BackfillOptions struct {
	RunOptions
	// Chunk is the length of each chunk; required.
	Chunk time.Duration
	// Parallel is how many chunks run at once; 0 means 1.
	Parallel int
}

// ParseChunk reads --chunk (a duration such as 1d, 6h or 30m; "" for no backfill) and checks
// --parallel (set: given on the command line) against it.
func ParseChunk(chunk string, parallel int, parallelSet bool) (time.Duration, error) {
	if chunk == "" {
		if parallelSet {
			return 0, errkind.New(errkind.Usage, "--parallel goes with --chunk D (a backfill in chunks)")
		}
		return 0, nil
	}
	d, err := definitions.ParseDuration(chunk)
	if err != nil || d <= 0 {
		return 0, errkind.Errorf(errkind.Usage, "--chunk %q is not a positive duration; use e.g. 1d, 6h or 30m", chunk)
	}
	if parallel < 1 {
		return 0, errkind.Errorf(errkind.Usage, "--parallel %d: run at least 1 chunk at a time", parallel)
	}
	return time.Duration(d), nil
}

// Backfill runs each interval as a resumable backfill: split into chunks recorded in the
// registry, the chunks not DONE in an earlier run of the same backfill run, Parallel at once,
// and the view's watermark moved after the last (materialize.FinishBackfill). A chunk DONE
// earlier is reported as skipped. It stops at the first failed chunk, after the chunks
// running then have finished; a re-run resumes.
func (m *Materialization) Backfill(ctx context.Context, intervals []materialize.Interval, opts BackfillOptions, progress func(iv materialize.Interval) (func(int64), func())) (*MaterializeReport, error) {
	if opts.Chunk <= 0 {
		return &MaterializeReport{Runs: []RunReport{}}, errkind.New(errkind.Usage, "--chunk must be a positive duration (e.g. 1d, 6h)")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 1
	}
	if err := opts.Validate(); err != nil {
		return &MaterializeReport{Runs: []RunReport{}}, err
	}
	rep := &MaterializeReport{Runs: skipped(intervals)}
	reg, err := m.p.Registry(ctx)
	if err != nil {
		return rep, err
	}
	began := time.Now()
	defer func() { rep.seconds = time.Since(began).Seconds() }()
	for _, iv := range intervals {
		if iv.UpToDate {
			continue
		}
		if err := m.backfill(ctx, reg, iv, opts, rep, progress); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (m *Materialization) backfill(ctx context.Context, reg registry.Store, iv materialize.Interval, opts BackfillOptions, rep *MaterializeReport, progress func(iv materialize.Interval) (func(int64), func())) error {
	v, err := m.snap.View(iv.View)
	if err != nil {
		return err
	}
	chunks, err := materialize.Chunks(iv.Start, iv.End, opts.Chunk)
	if err != nil {
		return errkind.Errorf(errkind.Usage, "view %q: %v", iv.View, err)
	}
	b, err := reg.StartBackfill(ctx, registry.Backfill{Project: m.p.Name(), View: iv.View, Start: iv.Start, End: iv.End, Chunk: opts.Chunk, Chunks: chunks})
	if err != nil {
		return err
	}
	bid := strconv.FormatInt(int64(b.ID), 10)
	var todo []registry.BackfillChunk
	for _, c := range b.Chunks { // the chunks done are reported first
		if c.Status == registry.ChunkDone {
			rep.Runs = append(rep.Runs, RunReport{View: iv.View, Start: c.Start, End: c.End, RunID: id(int64(c.RunID)),
				Skipped: "done in an earlier run of backfill " + bid})
			continue
		}
		todo = append(todo, c)
	}
	first := len(rep.Runs)
	pause := m.p.debugPause()
	var mu sync.Mutex
	var lastRun registry.RunID
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for _, c := range todo {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			if pause != nil {
				pause(gctx, "chunk-"+strconv.Itoa(c.Seq))
			}
			if err := reg.SetChunk(gctx, b.ID, c.Seq, registry.ChunkUpdate{Status: registry.ChunkRunning}); err != nil {
				return err
			}
			civ := materialize.Interval{View: iv.View, Start: c.Start, End: c.End}
			if !iv.OnlineFrom.IsZero() {
				civ.OnlineFrom = iv.OnlineFrom
			}
			o := opts.RunOptions
			done := func() {}
			if progress != nil {
				o.Progress, done = progress(civ)
			}
			res, err := m.run(gctx, civ, o)
			done()
			r := runReport(civ, res)
			u := registry.ChunkUpdate{Status: registry.ChunkDone, RunID: res.RunID}
			if err != nil {
				u.Status, u.Error, r.Error = registry.ChunkFailed, err.Error(), err.Error()
			}
			// Record the chunk's end even when ctx was cancelled by a sibling's failure.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(gctx), 10*time.Second)
			serr := reg.SetChunk(sctx, b.ID, c.Seq, u)
			cancel()
			mu.Lock()
			if err == nil || res.RunID != 0 {
				rep.Runs = append(rep.Runs, r)
			}
			if err == nil && res.RunID > lastRun {
				lastRun = res.RunID
			}
			mu.Unlock()
			if err != nil {
				return fmt.Errorf("backfill %s chunk %d [%s, %s): %w", bid, c.Seq, c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339), err)
			}
			return serr
		})
	}
	err = g.Wait()
	slices.SortStableFunc(rep.Runs[first:], func(a, b RunReport) int { return a.Start.Compare(b.Start) })
	if err != nil {
		m.cleanupFailedWrite(ctx, iceberg.TableName(iv.View, v.Generation))
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if lastRun == 0 { // every chunk was done earlier: take the last chunk's run
		lastRun = b.Chunks[len(b.Chunks)-1].RunID
	}
	_, err = materialize.FinishBackfill(ctx, reg, m.p.Name(), iv.View, v.Generation, iv.Start, iv.End, lastRun)
	return err
}
