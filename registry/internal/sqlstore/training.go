package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/quiverfs/quiver/registry"
)

const trainingRunColumns = `id, project, job, status, attempt, exit_code, dataset_name, dataset_version,
	dataset_content_id, git_commit, info, created_by, started_at, finished_at, error`

func scanTrainingRun(sc interface{ Scan(...any) error }) (registry.TrainingRun, error) {
	var (
		r          registry.TrainingRun
		id, status string
		info       string
		exitCode   sql.NullInt64
	)
	err := sc.Scan(&id, &r.Project, &r.Job, &status, &r.Attempt, &exitCode, &r.DatasetName, &r.DatasetVersion,
		&r.DatasetContentID, &r.GitCommit, &info, &r.CreatedBy, dbTime{&r.StartedAt}, dbTime{&r.FinishedAt}, &r.Error)
	r.ID, r.Status, r.ExitCode = registry.TrainingRunID(id), registry.TrainingStatus(status), int(exitCode.Int64)
	if info != "" {
		r.Info = json.RawMessage(info)
	}
	return r, err
}

func newRunID() (registry.TrainingRunID, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return registry.TrainingRunID(hex.EncodeToString(b[:])), nil
}

// CreateTrainingRun implements registry.TrainingStore.
func (s *Store) CreateTrainingRun(ctx context.Context, r registry.TrainingRun) (registry.TrainingRun, error) {
	if r.Project == "" || r.Job == "" {
		return registry.TrainingRun{}, fmt.Errorf("create training run: empty project or job: %w", registry.ErrInvalid)
	}
	if len(r.Info) > 0 && !json.Valid(r.Info) {
		return registry.TrainingRun{}, fmt.Errorf("create training run of %q: info is not valid JSON: %w", r.Job, registry.ErrInvalid)
	}
	if r.ID == "" {
		id, err := newRunID()
		if err != nil {
			return registry.TrainingRun{}, fmt.Errorf("create training run of %q: %w", r.Job, err)
		}
		r.ID = id
	}
	if r.Attempt <= 0 {
		r.Attempt = 1
	}
	r.Status, r.ExitCode, r.StartedAt, r.FinishedAt = registry.TrainingRunning, 0, Now(), time.Time{}
	err := s.inTx(ctx, func(tx q) error {
		var n int
		if err := tx.row(ctx, `SELECT COUNT(*) FROM training_runs WHERE id = ?`, string(r.ID)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("id %s is taken: %w", r.ID, registry.ErrConflict)
		}
		_, err := tx.exec(ctx, `INSERT INTO training_runs (`+trainingRunColumns+`)
			VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, NULL, '')`,
			string(r.ID), r.Project, r.Job, string(r.Status), r.Attempt, r.DatasetName, r.DatasetVersion,
			r.DatasetContentID, r.GitCommit, string(r.Info), r.CreatedBy, tx.d.encTime(r.StartedAt))
		return err
	})
	if err != nil {
		return registry.TrainingRun{}, fmt.Errorf("create training run of %q: %w", r.Job, err)
	}
	return r, nil
}

// FinishTrainingRun implements registry.TrainingStore.
func (s *Store) FinishTrainingRun(ctx context.Context, id registry.TrainingRunID, status registry.TrainingStatus, exitCode int) (registry.TrainingRun, error) {
	switch status {
	case registry.TrainingFinished, registry.TrainingFailed, registry.TrainingKilled:
	default:
		return registry.TrainingRun{}, fmt.Errorf("finish training run %s: status %q is not FINISHED, FAILED or KILLED: %w", id, status, registry.ErrInvalid)
	}
	res, err := s.q().exec(ctx, `UPDATE training_runs SET status = ?, exit_code = ?, finished_at = ? WHERE id = ? AND status = ?`,
		string(status), exitCode, s.d.encTime(Now()), string(id), string(registry.TrainingRunning))
	if err != nil {
		return registry.TrainingRun{}, fmt.Errorf("finish training run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return registry.TrainingRun{}, fmt.Errorf("finish training run %s: %w", id, err)
	} else if n == 0 {
		r, err := s.GetTrainingRun(ctx, id)
		if err != nil {
			return registry.TrainingRun{}, err
		}
		return registry.TrainingRun{}, fmt.Errorf("finish training run %s: already %s: %w", id, r.Status, registry.ErrConflict)
	}
	return s.GetTrainingRun(ctx, id)
}

// GetTrainingRun implements registry.TrainingStore.
func (s *Store) GetTrainingRun(ctx context.Context, id registry.TrainingRunID) (registry.TrainingRun, error) {
	r, err := scanTrainingRun(s.q().row(ctx, `SELECT `+trainingRunColumns+` FROM training_runs WHERE id = ?`, string(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return registry.TrainingRun{}, fmt.Errorf("%s: %w", id, registry.ErrTrainingRunNotFound)
	}
	if err != nil {
		return registry.TrainingRun{}, fmt.Errorf("read training run %s: %w", id, err)
	}
	return r, nil
}

// ListTrainingRuns implements registry.TrainingStore.
func (s *Store) ListTrainingRuns(ctx context.Context, f registry.TrainingRunFilter) ([]registry.TrainingRun, error) {
	query := `SELECT ` + trainingRunColumns + ` FROM training_runs WHERE 1 = 1`
	var args []any
	if f.Project != "" {
		query += ` AND project = ?`
		args = append(args, f.Project)
	}
	if f.Job != "" {
		query += ` AND job = ?`
		args = append(args, f.Job)
	}
	if f.Status != "" {
		query += ` AND status = ?`
		args = append(args, string(f.Status))
	}
	query += ` ORDER BY started_at DESC, id DESC`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.q().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list training runs: %w", err)
	}
	defer rows.Close()
	var out []registry.TrainingRun
	for rows.Next() {
		r, err := scanTrainingRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list training runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list training runs: %w", err)
	}
	return out, nil
}

// runExists fails with ErrTrainingRunNotFound for an unknown run.
func runExists(ctx context.Context, c q, id registry.TrainingRunID) error {
	var n int
	if err := c.row(ctx, `SELECT COUNT(*) FROM training_runs WHERE id = ?`, string(id)).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", id, registry.ErrTrainingRunNotFound)
	}
	return nil
}

// SetRunParams implements registry.TrainingStore.
func (s *Store) SetRunParams(ctx context.Context, id registry.TrainingRunID, params map[string]string) error {
	err := s.inTx(ctx, func(tx q) error {
		if err := runExists(ctx, tx, id); err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(params)) {
			var old string
			err := tx.row(ctx, `SELECT value FROM training_run_params WHERE run_id = ? AND name = ?`, string(id), k).Scan(&old)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if _, err := tx.exec(ctx, `INSERT INTO training_run_params (run_id, name, value) VALUES (?, ?, ?)`, string(id), k, params[k]); err != nil {
					return err
				}
			case err != nil:
				return err
			case old != params[k]:
				return fmt.Errorf("param %q is already %q, cannot set it to %q: %w", k, old, params[k], registry.ErrConflict)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set params of training run %s: %w", id, err)
	}
	return nil
}

// SetRunTags implements registry.TrainingStore.
func (s *Store) SetRunTags(ctx context.Context, id registry.TrainingRunID, tags map[string]string) error {
	err := s.inTx(ctx, func(tx q) error {
		if err := runExists(ctx, tx, id); err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			if _, err := tx.exec(ctx, `INSERT INTO training_run_tags (run_id, name, value) VALUES (?, ?, ?)
				ON CONFLICT (run_id, name) DO UPDATE SET value = excluded.value`, string(id), k, tags[k]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set tags of training run %s: %w", id, err)
	}
	return nil
}

// RunParams implements registry.TrainingStore.
func (s *Store) RunParams(ctx context.Context, id registry.TrainingRunID) (map[string]string, error) {
	return s.keyValues(ctx, "training_run_params", "params", id)
}

// RunTags implements registry.TrainingStore.
func (s *Store) RunTags(ctx context.Context, id registry.TrainingRunID) (map[string]string, error) {
	return s.keyValues(ctx, "training_run_tags", "tags", id)
}

func (s *Store) keyValues(ctx context.Context, table, what string, id registry.TrainingRunID) (map[string]string, error) {
	if err := runExists(ctx, s.q(), id); err != nil {
		return nil, fmt.Errorf("read %s of training run: %w", what, err)
	}
	rows, err := s.q().query(ctx, `SELECT name, value FROM `+table+` WHERE run_id = ?`, string(id))
	if err != nil {
		return nil, fmt.Errorf("read %s of training run %s: %w", what, id, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("read %s of training run %s: %w", what, id, err)
		}
		out[k] = v
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read %s of training run %s: %w", what, id, err)
	}
	return out, nil
}

// LogMetrics implements registry.TrainingStore.
func (s *Store) LogMetrics(ctx context.Context, id registry.TrainingRunID, points []registry.Metric) error {
	for _, p := range points {
		if p.Name == "" {
			return fmt.Errorf("log metrics of training run %s: a point has no name: %w", id, registry.ErrInvalid)
		}
	}
	err := s.inTx(ctx, func(tx q) error {
		if err := runExists(ctx, tx, id); err != nil {
			return err
		}
		now := Now()
		for _, p := range points {
			at := p.Time
			if at.IsZero() {
				at = now
			}
			if _, err := tx.exec(ctx, `INSERT INTO training_run_metrics (run_id, name, step, value, logged_at) VALUES (?, ?, ?, ?, ?)`,
				string(id), p.Name, p.Step, p.Value, tx.d.encTime(at)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("log metrics of training run %s: %w", id, err)
	}
	return nil
}

const metricColumns = `seq, name, step, value, logged_at`

func scanMetric(sc interface{ Scan(...any) error }) (registry.Metric, error) {
	var m registry.Metric
	err := sc.Scan(&m.Seq, &m.Name, &m.Step, &m.Value, dbTime{&m.Time})
	return m, err
}

// Metrics implements registry.TrainingStore.
func (s *Store) Metrics(ctx context.Context, id registry.TrainingRunID, mq registry.MetricQuery) ([]registry.Metric, error) {
	limit := mq.Limit
	if limit <= 0 {
		limit = 1000
	}
	limit = min(limit, registry.MaxMetricPage)
	if err := runExists(ctx, s.q(), id); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	query := `SELECT ` + metricColumns + ` FROM training_run_metrics WHERE run_id = ? AND seq > ?`
	args := []any{string(id), mq.AfterSeq}
	if mq.Name != "" {
		query += ` AND name = ?`
		args = append(args, mq.Name)
	}
	rows, err := s.q().query(ctx, query+` ORDER BY seq LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("read metrics of training run %s: %w", id, err)
	}
	defer rows.Close()
	var out []registry.Metric
	for rows.Next() {
		m, err := scanMetric(rows)
		if err != nil {
			return nil, fmt.Errorf("read metrics of training run %s: %w", id, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read metrics of training run %s: %w", id, err)
	}
	return out, nil
}

// MetricSummaries implements registry.TrainingStore.
func (s *Store) MetricSummaries(ctx context.Context, id registry.TrainingRunID) ([]registry.MetricSummary, error) {
	if err := runExists(ctx, s.q(), id); err != nil {
		return nil, fmt.Errorf("summarize metrics: %w", err)
	}
	rows, err := s.q().query(ctx, `SELECT name, COUNT(*), MIN(value), MAX(value) FROM training_run_metrics
		WHERE run_id = ? GROUP BY name ORDER BY name`, string(id))
	if err != nil {
		return nil, fmt.Errorf("summarize metrics of training run %s: %w", id, err)
	}
	var out []registry.MetricSummary
	for rows.Next() {
		var m registry.MetricSummary
		if err := rows.Scan(&m.Name, &m.Count, &m.Min, &m.Max); err != nil {
			rows.Close()
			return nil, fmt.Errorf("summarize metrics of training run %s: %w", id, err)
		}
		out = append(out, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("summarize metrics of training run %s: %w", id, err)
	}
	for i := range out {
		last, err := scanMetric(s.q().row(ctx, `SELECT `+metricColumns+` FROM training_run_metrics
			WHERE run_id = ? AND name = ? ORDER BY step DESC, seq DESC LIMIT 1`, string(id), out[i].Name))
		if err != nil {
			return nil, fmt.Errorf("summarize metric %q of training run %s: %w", out[i].Name, id, err)
		}
		out[i].Last = last
	}
	return out, nil
}
