package materialize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/value"
)

// tilesLookback is how far before a run's end an aggregation view's events can still reach a
// read at or after the end: the longest window plus one tile.
func tilesLookback(v *online.View) time.Duration {
	return v.MaxWindow() + v.MaxWindow()/online.TilesPerWindow
}

// rebuildTiles rewrites the online tiles of every entity of an aggregation view that has events
// in [end - lookback, end) of the offline table at snapshot snap, from those events. Tiles are a
// function of the offline table, so re-running a run writes the same tiles (idempotent), and
// a late or corrected event reaches the tiles on the next run whose lookback covers it. The
// rows carry the entity's newest event time and the rebuild's wall-clock time as created_ts,
// so a rebuild replaces the tiles an earlier rebuild of the same events wrote. It returns the
// entities written. Memory holds the lookback's events of the view.
// A zero snap reads the latest snapshot; a zero end reads every event from the look-back on
// (--online-only). The look-back is measured from the earlier of the end and now, since reads
// happen at or after both.
func rebuildTiles(ctx context.Context, job Job, end time.Time, snap int64, batch int) (int64, error) {
	if job.OfflineReader == nil {
		return 0, fmt.Errorf("online tiles need the offline store's reader")
	}
	// Reads happen at or after now (or the end, when it is in the past): the look-back is
	// measured from the earlier of the two.
	now := time.Now().UTC()
	from := now
	if !end.IsZero() && end.Before(now) {
		from = end
	}
	rng := offline.Range{Start: from.Add(-tilesLookback(job.OnlineView)), End: end}
	if end.IsZero() {
		rng.End = now.AddDate(100, 0, 0)
	}
	s, err := job.OfflineReader.Scan(ctx, job.Schema.View, offline.ScanRequest{SnapshotID: snap, Range: rng, Generation: job.Schema.Generation})
	if err != nil {
		return 0, fmt.Errorf("read offline events for tiles: %w", err)
	}
	defer s.Close()
	events := map[online.EntityKey][]online.AggEvent{}
	var order []online.EntityKey
	nk := len(job.Schema.JoinKeys)
	keyVals := make([]online.Value, nk)
	var keyBuf []byte
	for {
		rec, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("read offline events for tiles: %w", err)
		}
		err = func() error {
			defer rec.Release()
			keys := make([]func(int) online.Value, nk)
			for i, c := range job.Schema.JoinKeys {
				if keys[i], err = value.ColumnReader(rec.Column(i), c.Type); err != nil {
					return fmt.Errorf("join key %q: %w", c.Name, err)
				}
			}
			evCol, ok1 := rec.Column(nk).(*array.Timestamp)
			crCol, ok2 := rec.Column(nk + 1).(*array.Timestamp)
			if !ok1 || !ok2 {
				return fmt.Errorf("offline table of %q: event_ts and created_ts must be timestamps", job.Schema.View)
			}
			cols := make([]func(int) online.Value, len(job.Schema.Features))
			for i, c := range job.Schema.Features {
				if cols[i], err = value.ColumnReader(rec.Column(nk+2+i), c.Type); err != nil {
					return fmt.Errorf("column %q: %w", c.Name, err)
				}
			}
			for i := range int(rec.NumRows()) {
				if evCol.IsNull(i) {
					continue
				}
				for k := range keys {
					keyVals[k] = keys[k](i)
				}
				key, err := job.OnlineView.AppendKey(keyBuf, keyVals...)
				if err != nil {
					continue // a null join key: the row belongs to no entity
				}
				e := online.AggEvent{EventTS: time.UnixMicro(int64(evCol.Value(i))).UTC(), Values: make([]online.Value, len(cols))}
				if !crCol.IsNull(i) {
					e.CreatedTS = time.UnixMicro(int64(crCol.Value(i))).UTC()
				}
				for c := range cols {
					e.Values[c] = cols[c](i)
				}
				if _, seen := events[key]; !seen {
					order = append(order, key)
				}
				events[key] = append(events[key], e)
			}
			return nil
		}()
		if err != nil {
			return 0, err
		}
	}
	var written int64
	rows := make([]online.Row, 0, batch)
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if err := job.Online.Write(ctx, job.OnlineView, rows); err != nil {
			return fmt.Errorf("write online tiles: %w", err)
		}
		written += int64(len(rows))
		rows = rows[:0]
		return nil
	}
	for _, key := range order {
		blob, latest, err := job.OnlineView.BuildTiles(events[key], from)
		if err != nil {
			return written, err
		}
		rows = append(rows, online.Row{Key: key, EventTS: latest, CreatedTS: now, Values: []online.Value{online.Bytes(blob)}})
		if len(rows) >= batch {
			if err := flush(); err != nil {
				return written, err
			}
		}
	}
	return written, flush()
}
