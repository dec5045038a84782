package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// StartBackfill implements registry.BackfillStore.
func (s *Store) StartBackfill(ctx context.Context, b registry.Backfill) (registry.Backfill, error) {
	if err := b.Validate(); err != nil {
		return registry.Backfill{}, err
	}
	var id registry.BackfillID
	err := s.inTx(ctx, func(tx q) error {
		now := tx.d.encTime(Now())
		res, err := tx.exec(ctx, `INSERT INTO backfills (project, feature_view, range_start, range_end, chunk_micros, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (project, feature_view, range_start, range_end, chunk_micros) DO NOTHING`,
			b.Project, b.View, tx.d.encTime(b.Start), tx.d.encTime(b.End), b.Chunk.Microseconds(), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if err := tx.row(ctx, `SELECT id FROM backfills WHERE project = ? AND feature_view = ? AND range_start = ? AND range_end = ? AND chunk_micros = ?`,
			b.Project, b.View, tx.d.encTime(b.Start), tx.d.encTime(b.End), b.Chunk.Microseconds()).Scan(&id); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		for _, c := range b.Chunks {
			if _, err := tx.exec(ctx, `INSERT INTO backfill_chunks (backfill_id, seq, chunk_start, chunk_end, status, updated_at)
				VALUES (?, ?, ?, ?, ?, ?)`, id, c.Seq, tx.d.encTime(c.Start), tx.d.encTime(c.End), string(registry.ChunkPending), now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return registry.Backfill{}, fmt.Errorf("start backfill of %q: %w", b.View, err)
	}
	got, err := s.GetBackfill(ctx, id)
	if err != nil {
		return registry.Backfill{}, err
	}
	if len(got.Chunks) != len(b.Chunks) {
		return got, fmt.Errorf("backfill %d of %q: recorded with %d chunks, not %d: %w", id, b.View, len(got.Chunks), len(b.Chunks), registry.ErrConflict)
	}
	for i, c := range got.Chunks {
		if !c.Start.Equal(b.Chunks[i].Start) || !c.End.Equal(b.Chunks[i].End) {
			return got, fmt.Errorf("backfill %d of %q: chunk %d recorded as [%s, %s): %w", id, b.View, i,
				c.Start.Format(time.RFC3339), c.End.Format(time.RFC3339), registry.ErrConflict)
		}
	}
	return got, nil
}

// SetChunk implements registry.BackfillStore.
func (s *Store) SetChunk(ctx context.Context, id registry.BackfillID, seq int, u registry.ChunkUpdate) error {
	switch u.Status {
	case registry.ChunkRunning, registry.ChunkDone, registry.ChunkFailed, registry.ChunkPending:
	default:
		return fmt.Errorf("backfill %d chunk %d: status %q is not PENDING, RUNNING, DONE or FAILED: %w", id, seq, u.Status, registry.ErrInvalid)
	}
	res, err := s.q().exec(ctx, `UPDATE backfill_chunks SET status = ?, run_id = ?, error = ?, updated_at = ? WHERE backfill_id = ? AND seq = ?`,
		string(u.Status), int64(u.RunID), u.Error, s.d.encTime(Now()), id, seq)
	if err != nil {
		return fmt.Errorf("backfill %d chunk %d: %w", id, seq, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("backfill %d chunk %d: %w", id, seq, err)
	} else if n == 0 {
		return fmt.Errorf("backfill %d chunk %d: %w", id, seq, registry.ErrNotFound)
	}
	return nil
}

// GetBackfill implements registry.BackfillStore.
func (s *Store) GetBackfill(ctx context.Context, id registry.BackfillID) (registry.Backfill, error) {
	var b registry.Backfill
	var chunk int64
	err := s.readSnapshot(ctx, func(tx q) error {
		err := tx.row(ctx, `SELECT id, project, feature_view, range_start, range_end, chunk_micros, created_at FROM backfills WHERE id = ?`, id).
			Scan(&b.ID, &b.Project, &b.View, dbTime{&b.Start}, dbTime{&b.End}, &chunk, dbTime{&b.CreatedAt})
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("backfill %d: %w", id, registry.ErrNotFound)
		}
		if err != nil {
			return err
		}
		b.Chunk = time.Duration(chunk) * time.Microsecond
		rows, err := tx.query(ctx, `SELECT seq, chunk_start, chunk_end, status, run_id, error, updated_at FROM backfill_chunks WHERE backfill_id = ? ORDER BY seq`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c registry.BackfillChunk
			var status string
			if err := rows.Scan(&c.Seq, dbTime{&c.Start}, dbTime{&c.End}, &status, &c.RunID, &c.Error, dbTime{&c.UpdatedAt}); err != nil {
				return err
			}
			c.Status = registry.ChunkStatus(status)
			b.Chunks = append(b.Chunks, c)
		}
		return rows.Err()
	})
	if err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return registry.Backfill{}, err
		}
		return registry.Backfill{}, fmt.Errorf("read backfill %d: %w", id, err)
	}
	return b, nil
}
