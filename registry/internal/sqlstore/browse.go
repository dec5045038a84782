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

// MetricSeries implements registry.BrowseStore.
func (s *Store) MetricSeries(ctx context.Context, id registry.TrainingRunID, name string, maxPoints int) ([]registry.Metric, error) {
	if maxPoints <= 0 {
		maxPoints = 500
	}
	if err := runExists(ctx, s.q(), id); err != nil {
		return nil, fmt.Errorf("read metric series: %w", err)
	}
	var (
		n          int64
		first, end *int64
	)
	if err := s.q().row(ctx, `SELECT COUNT(*), MIN(step), MAX(step) FROM training_run_metrics WHERE run_id = ? AND name = ?`,
		string(id), name).Scan(&n, &first, &end); err != nil {
		return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
	}
	if n == 0 {
		return nil, nil
	}
	var out []registry.Metric
	if n <= int64(maxPoints) {
		rows, err := s.q().query(ctx, `SELECT `+metricColumns+` FROM training_run_metrics
			WHERE run_id = ? AND name = ? ORDER BY step, seq`, string(id), name)
		if err != nil {
			return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMetric(rows)
			if err != nil {
				return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
			}
			out = append(out, m)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
		}
		return out, nil
	}
	// Bucket b of step is (step-first)*maxPoints/width, in 0..maxPoints-1; the covering index
	// (run_id, name, step, value) answers this without reading the table.
	width := *end - *first + 1
	rows, err := s.q().query(ctx, `SELECT MAX(step), AVG(value) FROM training_run_metrics
		WHERE run_id = ? AND name = ? GROUP BY (step - ?) * ? / ? ORDER BY 1`,
		string(id), name, *first, int64(maxPoints), width)
	if err != nil {
		return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
	}
	defer rows.Close()
	for rows.Next() {
		m := registry.Metric{Name: name}
		if err := rows.Scan(&m.Step, &m.Value); err != nil {
			return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read metric %q of training run %s: %w", name, id, err)
	}
	return out, nil
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
