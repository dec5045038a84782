package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// StatusRegistry is what Status reads from the registry.
type StatusRegistry interface {
	Watermark(ctx context.Context, project, view string) (registry.Watermark, error)
	ListRuns(ctx context.Context, filter registry.RunFilter) ([]registry.MaterializationRun, error)
}

// ViewStatus is how fresh one view is.
type ViewStatus struct {
	View   string
	Source string // the source kind: parquet, iceberg, trino, push, kafka
	// Watermark is how far batch materialization has gone (zero: never).
	Watermark time.Time
	// LastMaterialization is when the last successful materialization run finished (zero:
	// none).
	LastMaterialization time.Time
	// LastPush and LastStream are when pushed or streamed rows were last committed to the
	// offline table (zero: never).
	LastPush, LastStream time.Time
	// OfflineSnapshots is the number of snapshots of the view's current table.
	OfflineSnapshots int
	// RowsOnline is the number of the view's rows in the online store; -1 when the store
	// cannot count cheaply (Redis scans every key: only with countOnline).
	RowsOnline int64
}

// Status reads a view's freshness from the registry, its current generation's offline table's
// snapshot summaries and, when counter is not nil and the view is online, the online store.
func Status(ctx context.Context, reg StatusRegistry, off Offline, counter online.Counter, project string, v *catalog.View) (ViewStatus, error) {
	view, generation, ov := v.Name, v.Generation, v.Online
	st := ViewStatus{View: view, Source: v.Source.SourceType(), RowsOnline: -1}
	wm, err := reg.Watermark(ctx, project, view)
	switch {
	case err == nil:
		st.Watermark = wm.Time
	case !errors.Is(err, registry.ErrNotFound):
		return st, err
	}
	runs, err := reg.ListRuns(ctx, registry.RunFilter{Project: project, View: view, Status: registry.RunSucceeded, Limit: 1})
	if err != nil {
		return st, err
	}
	if len(runs) > 0 {
		st.LastMaterialization = runs[0].FinishedAt
	}
	snaps, err := off.Snapshots(ctx, view, generation)
	if err != nil && !errors.Is(err, offline.ErrTableNotFound) {
		return st, err
	}
	st.OfflineSnapshots = len(snaps)
	for _, s := range snaps {
		if s.Pushed() {
			st.LastPush = later(st.LastPush, s.Committed)
		}
		if s.Streamed() {
			st.LastStream = later(st.LastStream, s.Committed)
		}
	}
	if counter != nil && ov != nil {
		if n, err := counter.CountView(ctx, ov); err == nil {
			st.RowsOnline = n
		}
	}
	return st, nil
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
