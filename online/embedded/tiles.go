package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/quiverfs/quiver/online"
)

var _ online.TileFolder = (*Store)(nil)

// FoldEvents implements online.TileFolder in one transaction, which takes the write lock at
// BEGIN (Open's _txlock=immediate): every entity's row is read, folded at the store's clock
// and written back with no other writer in between, in this process or another.
func (s *Store) FoldEvents(ctx context.Context, v *online.View, entities []online.EntityEvents) (online.FoldStats, error) {
	var total online.FoldStats
	if !v.IsAggregation() {
		return total, fmt.Errorf("fold events: view %q has no aggregations: %w", v.Name, online.ErrInvalidArgument)
	}
	for _, e := range entities {
		if e.Key == "" {
			return total, fmt.Errorf("fold events of view %q: empty entity key: %w", v.Name, online.ErrInvalidArgument)
		}
	}
	if len(entities) == 0 {
		return total, nil
	}
	op := fmt.Sprintf("fold events of view %q", v.Name)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return total, s.wrap(op, err)
	}
	defer func() { _ = tx.Rollback() }()
	get, err := tx.PrepareContext(ctx, `SELECT value FROM online_rows WHERE project = ? AND view = ? AND entity_key = ?`)
	if err != nil {
		return total, s.wrap(op, err)
	}
	defer get.Close()
	put, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO online_rows (project, view, entity_key, event_ts, created_ts, value) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return total, s.wrap(op, err)
	}
	defer put.Close()
	now := s.now()
	for _, e := range entities {
		var old []byte
		if err := get.QueryRowContext(ctx, v.Project, v.StorageName(), []byte(e.Key)).Scan(&old); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return online.FoldStats{}, s.wrap(op, err)
		}
		row, st, err := v.FoldRow(string(old), e.Events, now)
		if err != nil {
			return online.FoldStats{}, fmt.Errorf("embedded online store %s: %w", s.path, err)
		}
		total.Add(st)
		if row == nil {
			continue
		}
		ev, cr, err := online.RowTimes(string(row))
		if err != nil {
			return online.FoldStats{}, err
		}
		if _, err := put.ExecContext(ctx, v.Project, v.StorageName(), []byte(e.Key), ev.UnixMicro(), cr.UnixMicro(), row); err != nil {
			return online.FoldStats{}, s.wrap(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return online.FoldStats{}, s.wrap(op+": commit", err)
	}
	return total, nil
}
