package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/registry"
)

const runColumns = `id, project, feature_view, interval_start, interval_end, status, rows_read, rows_written,
	started_at, finished_at, error, offline_snapshot_id`

func scanRun(sc interface{ Scan(...any) error }) (registry.MaterializationRun, error) {
	var r registry.MaterializationRun
	var status string
	err := sc.Scan(&r.ID, &r.Project, &r.View, dbTime{&r.Start}, dbTime{&r.End}, &status, &r.RowsRead, &r.RowsWritten,
		dbTime{&r.StartedAt}, dbTime{&r.FinishedAt}, &r.Error, &r.OfflineSnapshotID)
	r.Status = registry.RunStatus(status)
	return r, err
}

// StartRun implements registry.MaterializationStore.
func (s *Store) StartRun(ctx context.Context, project, view string, start, end time.Time) (registry.MaterializationRun, error) {
	if project == "" || view == "" {
		return registry.MaterializationRun{}, fmt.Errorf("start materialization run: empty project or view name: %w", registry.ErrInvalid)
	}
	if start.IsZero() || end.IsZero() || !start.Before(end) {
		return registry.MaterializationRun{}, fmt.Errorf("start materialization run of %q: interval [%s, %s) is empty: %w",
			view, start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), registry.ErrInvalid)
	}
	var id registry.RunID
	now := Now()
	err := s.q().row(ctx, `INSERT INTO materialization_runs
		(project, feature_view, interval_start, interval_end, status, started_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		project, view, s.d.encTime(start), s.d.encTime(end), string(registry.RunRunning), s.d.encTime(now)).Scan(&id)
	if err != nil {
		return registry.MaterializationRun{}, fmt.Errorf("start materialization run of %q: %w", view, err)
	}
	return s.GetRun(ctx, id)
}

// FinishRun implements registry.MaterializationStore.
func (s *Store) FinishRun(ctx context.Context, id registry.RunID, result registry.RunResult) (registry.MaterializationRun, error) {
	if result.Status != registry.RunSucceeded && result.Status != registry.RunFailed {
		return registry.MaterializationRun{}, fmt.Errorf("finish materialization run %d: status %q is not SUCCEEDED or FAILED: %w",
			id, result.Status, registry.ErrInvalid)
	}
	res, err := s.q().exec(ctx, `UPDATE materialization_runs
		SET status = ?, rows_read = ?, rows_written = ?, finished_at = ?, error = ?, offline_snapshot_id = ?
		WHERE id = ? AND status = ?`,
		string(result.Status), result.RowsRead, result.RowsWritten, s.d.encTime(Now()), result.Error, result.OfflineSnapshotID,
		id, string(registry.RunRunning))
	if err != nil {
		return registry.MaterializationRun{}, fmt.Errorf("finish materialization run %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return registry.MaterializationRun{}, fmt.Errorf("finish materialization run %d: %w", id, err)
	}
	if n == 0 {
		r, err := s.GetRun(ctx, id)
		if err != nil {
			return registry.MaterializationRun{}, err
		}
		return registry.MaterializationRun{}, fmt.Errorf("finish materialization run %d: already %s: %w", id, r.Status, registry.ErrConflict)
	}
	return s.GetRun(ctx, id)
}

// GetRun implements registry.MaterializationStore.
func (s *Store) GetRun(ctx context.Context, id registry.RunID) (registry.MaterializationRun, error) {
	r, err := scanRun(s.q().row(ctx, `SELECT `+runColumns+` FROM materialization_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return registry.MaterializationRun{}, fmt.Errorf("run %d: %w", id, registry.ErrRunNotFound)
	}
	if err != nil {
		return registry.MaterializationRun{}, fmt.Errorf("read materialization run %d: %w", id, err)
	}
	return r, nil
}

// ListRuns implements registry.MaterializationStore.
func (s *Store) ListRuns(ctx context.Context, f registry.RunFilter) ([]registry.MaterializationRun, error) {
	query := `SELECT ` + runColumns + ` FROM materialization_runs WHERE 1 = 1`
	var args []any
	if f.Project != "" {
		query += ` AND project = ?`
		args = append(args, f.Project)
	}
	if f.View != "" {
		query += ` AND feature_view = ?`
		args = append(args, f.View)
	}
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	query += ` ORDER BY id DESC`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.q().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list materialization runs: %w", err)
	}
	defer rows.Close()
	var out []registry.MaterializationRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list materialization runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list materialization runs: %w", err)
	}
	return out, nil
}

const watermarkColumns = `project, feature_view, watermark, run_id, updated_at`

func scanWatermark(sc interface{ Scan(...any) error }) (registry.Watermark, error) {
	var w registry.Watermark
	err := sc.Scan(&w.Project, &w.View, dbTime{&w.Time}, &w.RunID, dbTime{&w.UpdatedAt})
	return w, err
}

// Watermark implements registry.MaterializationStore.
func (s *Store) Watermark(ctx context.Context, project, view string) (registry.Watermark, error) {
	return s.watermark(ctx, s.q(), project, view)
}

func (s *Store) watermark(ctx context.Context, c q, project, view string) (registry.Watermark, error) {
	w, err := scanWatermark(c.row(ctx, `SELECT `+watermarkColumns+` FROM watermarks WHERE project = ? AND feature_view = ?`, project, view))
	if errors.Is(err, sql.ErrNoRows) {
		return registry.Watermark{}, fmt.Errorf("view %q: %w", view, registry.ErrWatermarkNotFound)
	}
	if err != nil {
		return registry.Watermark{}, fmt.Errorf("read watermark of view %q: %w", view, err)
	}
	return w, nil
}

// ListWatermarks implements registry.MaterializationStore.
func (s *Store) ListWatermarks(ctx context.Context, project string) ([]registry.Watermark, error) {
	rows, err := s.q().query(ctx, `SELECT `+watermarkColumns+` FROM watermarks WHERE project = ? ORDER BY feature_view`, project)
	if err != nil {
		return nil, fmt.Errorf("list watermarks of project %q: %w", project, err)
	}
	defer rows.Close()
	var out []registry.Watermark
	for rows.Next() {
		w, err := scanWatermark(rows)
		if err != nil {
			return nil, fmt.Errorf("list watermarks of project %q: %w", project, err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list watermarks of project %q: %w", project, err)
	}
	return out, nil
}

// AdvanceWatermark implements registry.MaterializationStore.
func (s *Store) AdvanceWatermark(ctx context.Context, u registry.WatermarkUpdate) (registry.Watermark, error) {
	if u.Project == "" || u.View == "" || u.To.IsZero() {
		return registry.Watermark{}, fmt.Errorf("advance watermark: empty project, view or time: %w", registry.ErrInvalid)
	}
	to := u.To.UTC().Truncate(time.Microsecond)
	var out registry.Watermark
	err := s.inTx(ctx, func(tx q) error {
		// The project row lock serializes watermark updates of the project, so the compare
		// below and the write are atomic on both backends.
		if _, err := lockProject(ctx, tx, u.Project); err != nil {
			return err
		}
		if u.Generation > 0 {
			gen, _, err := generationOf(ctx, tx, u.Project, u.View)
			if err != nil {
				return err
			}
			if gen != u.Generation {
				return fmt.Errorf("view %q wrote generation %d, now at %d: %w", u.View, u.Generation, gen, registry.ErrGenerationChanged)
			}
		}
		cur, err := s.watermark(ctx, tx, u.Project, u.View)
		switch {
		case errors.Is(err, registry.ErrWatermarkNotFound):
		case err != nil:
			return err
		case cur.Time.Equal(to):
			out = cur
			return nil
		case to.Before(cur.Time) && !u.Force:
			return fmt.Errorf("view %q at %s, asked for %s (use force to move it back): %w", u.View,
				cur.Time.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), registry.ErrWatermarkBackwards)
		}
		out = registry.Watermark{Project: u.Project, View: u.View, Time: to, RunID: u.RunID, UpdatedAt: Now()}
		_, err = tx.exec(ctx, `INSERT INTO watermarks (`+watermarkColumns+`) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (project, feature_view) DO UPDATE
			SET watermark = excluded.watermark, run_id = excluded.run_id, updated_at = excluded.updated_at`,
			out.Project, out.View, tx.d.encTime(out.Time), out.RunID, tx.d.encTime(out.UpdatedAt))
		if err != nil {
			return fmt.Errorf("write watermark of view %q: %w", u.View, err)
		}
		return nil
	})
	if err != nil {
		return registry.Watermark{}, fmt.Errorf("advance watermark: %w", err)
	}
	return out, nil
}
