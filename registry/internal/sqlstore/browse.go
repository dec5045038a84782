package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"github.com/quiverfs/quiver/registry"
)

// runSorts maps registry.TrainingRunSorts to ORDER BY clauses; each ends with a unique key
// so that pages never overlap.
var runSorts = map[string]string{
	registry.SortStartedDesc: `started_at DESC, id DESC`,
	registry.SortStartedAsc:  `started_at, id`,
	registry.SortJob:         `job, started_at DESC, id DESC`,
	registry.SortStatus:      `status, started_at DESC, id DESC`,
}

// PageTrainingRuns implements registry.BrowseStore.
func (s *Store) PageTrainingRuns(ctx context.Context, p registry.TrainingRunPage) ([]registry.TrainingRun, int64, error) {
	sort := p.Sort
	if sort == "" {
		sort = registry.SortStartedDesc
	}
	order, ok := runSorts[sort]
	if !ok {
		return nil, 0, fmt.Errorf("page training runs: unknown sort %q (valid: %v): %w", p.Sort, registry.TrainingRunSorts, registry.ErrInvalid)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	where := ` FROM training_runs WHERE project = ?`
	args := []any{p.Project}
	if p.Job != "" {
		where += ` AND job = ?`
		args = append(args, p.Job)
	}
	if p.Status != "" {
		where += ` AND status = ?`
		args = append(args, string(p.Status))
	}
	if p.Tag.Key != "" {
		where += ` AND EXISTS (SELECT 1 FROM training_run_tags t WHERE t.run_id = training_runs.id AND t.name = ?`
		args = append(args, p.Tag.Key)
		if p.Tag.Value != "" {
			where += ` AND t.value = ?`
			args = append(args, p.Tag.Value)
		}
		where += `)`
	}
	var total int64
	if err := s.q().row(ctx, `SELECT COUNT(*)`+where, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("page training runs: %w", err)
	}
	rows, err := s.q().query(ctx, `SELECT `+trainingRunColumns+where+` ORDER BY `+order+` LIMIT ? OFFSET ?`,
		append(slices.Clone(args), limit, max(p.Offset, 0))...)
	if err != nil {
		return nil, 0, fmt.Errorf("page training runs: %w", err)
	}
	defer rows.Close()
	var out []registry.TrainingRun
	for rows.Next() {
		r, err := scanTrainingRun(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("page training runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("page training runs: %w", err)
	}
	return out, total, nil
}

// MetricSeries implements registry.BrowseStore. It reads by index seeks only: the first
// maxPoints+1 points (to learn whether there are more), then one seek per sampled step, so
// its cost does not grow with the number of points.
func (s *Store) MetricSeries(ctx context.Context, id registry.TrainingRunID, name string, maxPoints int) ([]registry.Metric, error) {
	if maxPoints <= 0 {
		maxPoints = 500
	}
	maxPoints = max(maxPoints, 2)
	if err := runExists(ctx, s.q(), id); err != nil {
		return nil, fmt.Errorf("read metric series: %w", err)
	}
	out, err := s.metricRows(ctx, `SELECT `+metricColumns+` FROM training_run_metrics
		WHERE run_id = ? AND name = ? ORDER BY step, seq LIMIT ?`, string(id), name, maxPoints+1)
	if err != nil || len(out) <= maxPoints {
		return out, err
	}
	last, err := scanMetric(s.q().row(ctx, `SELECT `+metricColumns+` FROM training_run_metrics
		WHERE run_id = ? AND name = ? ORDER BY step DESC, seq DESC LIMIT 1`, string(id), name))
	if err != nil {
		return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
	}
	first := out[0].Step
	// maxPoints-1 sample steps first, first+stride, ...; each takes the first point at or
	// after it (several may take the same point); the last point ends the series.
	stride := (last.Step-first)/int64(maxPoints-1) + 1
	out, err = s.metricRows(ctx, `WITH RECURSIVE b(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM b WHERE i + 1 < ?)
		SELECT `+metricColumns+` FROM training_run_metrics WHERE seq IN (
			SELECT (SELECT m.seq FROM training_run_metrics m WHERE m.run_id = ? AND m.name = ? AND m.step >= CAST(? AS BIGINT) + b.i * CAST(? AS BIGINT)
				ORDER BY m.step, m.seq LIMIT 1) FROM b)
		ORDER BY step, seq`, maxPoints-1, string(id), name, first, stride)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 || out[len(out)-1].Seq != last.Seq {
		out = append(out, last)
	}
	return out, nil
}

func (s *Store) metricRows(ctx context.Context, query string, args ...any) ([]registry.Metric, error) {
	rows, err := s.q().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read metric series: %w", err)
	}
	defer rows.Close()
	var out []registry.Metric
	for rows.Next() {
		m, err := scanMetric(rows)
		if err != nil {
			return nil, fmt.Errorf("read metric series: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read metric series: %w", err)
	}
	return out, nil
}

// LatestMetrics implements registry.BrowseStore: it walks the metric names with index seeks
// (a skip scan), and reads each one's last point with one more.
func (s *Store) LatestMetrics(ctx context.Context, id registry.TrainingRunID) ([]registry.Metric, error) {
	if err := runExists(ctx, s.q(), id); err != nil {
		return nil, fmt.Errorf("read latest metrics: %w", err)
	}
	var out []registry.Metric
	name := ""
	for {
		var next sql.NullString
		if err := s.q().row(ctx, `SELECT MIN(name) FROM training_run_metrics WHERE run_id = ? AND name > ?`, string(id), name).Scan(&next); err != nil {
			return nil, fmt.Errorf("read latest metrics of training run %s: %w", id, err)
		}
		if !next.Valid {
			return out, nil
		}
		name = next.String
		m, err := scanMetric(s.q().row(ctx, `SELECT `+metricColumns+` FROM training_run_metrics
			WHERE run_id = ? AND name = ? ORDER BY step DESC, seq DESC LIMIT 1`, string(id), name))
		if err != nil {
			return nil, fmt.Errorf("read latest metric %q of training run %s: %w", name, id, err)
		}
		out = append(out, m)
	}
}

// ModelAliasEvents implements registry.BrowseStore.
func (s *Store) ModelAliasEvents(ctx context.Context, project, name string, limit int) ([]registry.AliasEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.q().query(ctx, `SELECT alias, from_version, to_version, changed_at, changed_by FROM model_alias_events
		WHERE project = ? AND name = ? ORDER BY id DESC LIMIT ?`, project, name, limit)
	if err != nil {
		return nil, fmt.Errorf("read alias history of model %s: %w", name, err)
	}
	defer rows.Close()
	var out []registry.AliasEvent
	for rows.Next() {
		e := registry.AliasEvent{Project: project, Name: name}
		var from, to sql.NullInt64
		if err := rows.Scan(&e.Alias, &from, &to, dbTime{&e.ChangedAt}, &e.ChangedBy); err != nil {
			return nil, fmt.Errorf("read alias history of model %s: %w", name, err)
		}
		e.FromVersion, e.ToVersion = int(from.Int64), int(to.Int64)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read alias history of model %s: %w", name, err)
	}
	return out, nil
}
