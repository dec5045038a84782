package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/quiverfs/quiver/registry"
)

// HeartbeatRun implements registry.RecoveryStore.
func (s *Store) HeartbeatRun(ctx context.Context, id registry.RunID) error {
	res, err := s.q().exec(ctx, `UPDATE materialization_runs SET heartbeat_at = ? WHERE id = ? AND status = ?`,
		s.d.encTime(Now()), id, string(registry.RunRunning))
	if err != nil {
		return fmt.Errorf("heartbeat of materialization run %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("heartbeat of materialization run %d: %w", id, err)
	} else if n == 0 {
		r, err := s.GetRun(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("heartbeat of materialization run %d: already %s: %w", id, r.Status, registry.ErrConflict)
	}
	return nil
}

// HeartbeatTrainingRun implements registry.RecoveryStore.
func (s *Store) HeartbeatTrainingRun(ctx context.Context, id registry.TrainingRunID) error {
	res, err := s.q().exec(ctx, `UPDATE training_runs SET heartbeat_at = ? WHERE id = ? AND status = ?`,
		s.d.encTime(Now()), string(id), string(registry.TrainingRunning))
	if err != nil {
		return fmt.Errorf("heartbeat of training run %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("heartbeat of training run %s: %w", id, err)
	} else if n == 0 {
		r, err := s.GetTrainingRun(ctx, id)
		if err != nil {
			return err
		}
		return fmt.Errorf("heartbeat of training run %s: already %s: %w", id, r.Status, registry.ErrConflict)
	}
	return nil
}

// ReapAbandoned implements registry.RecoveryStore.
func (s *Store) ReapAbandoned(ctx context.Context, project string, lease time.Duration) (registry.Reaped, error) {
	var out registry.Reaped
	if lease <= 0 {
		return out, nil
	}
	now := Now()
	cutoff := s.d.encTime(now.Add(-lease))
	note := registry.AbandonedReason + ": no heartbeat within the lease of " + lease.String() + "; the process died or hung"
	err := s.inTx(ctx, func(tx q) error {
		out = registry.Reaped{}
		rows, err := tx.query(ctx, `UPDATE materialization_runs SET status = ?, finished_at = ?, error = ?
			WHERE project = ? AND status = ? AND COALESCE(heartbeat_at, started_at) < ? RETURNING id`,
			string(registry.RunFailed), tx.d.encTime(now), note, project, string(registry.RunRunning), cutoff)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id registry.RunID
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			out.Materialization = append(out.Materialization, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.query(ctx, `UPDATE training_runs SET status = ?, finished_at = ?, error = ?
			WHERE project = ? AND status = ? AND COALESCE(heartbeat_at, started_at) < ? RETURNING id`,
			string(registry.TrainingFailed), tx.d.encTime(now), registry.AbandonedReason, project, string(registry.TrainingRunning), cutoff)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			out.Training = append(out.Training, registry.TrainingRunID(id))
		}
		rows.Close()
		return rows.Err()
	})
	if err != nil {
		return registry.Reaped{}, fmt.Errorf("reap abandoned runs of project %q: %w", project, err)
	}
	return out, nil
}

const auditColumns = `id, project, at, actor, action, target, detail`

// RecordAudit implements registry.RecoveryStore.
func (s *Store) RecordAudit(ctx context.Context, e registry.AuditEvent) (registry.AuditEvent, error) {
	if e.Project == "" || e.Action == "" {
		return registry.AuditEvent{}, fmt.Errorf("record audit event: empty project or action: %w", registry.ErrInvalid)
	}
	if len(e.Detail) > 0 && !json.Valid(e.Detail) {
		return registry.AuditEvent{}, fmt.Errorf("record audit event %s: detail is not valid JSON: %w", e.Action, registry.ErrInvalid)
	}
	e.At = Now()
	err := s.q().row(ctx, `INSERT INTO audit_events (project, at, actor, action, target, detail)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		e.Project, s.d.encTime(e.At), e.Actor, string(e.Action), e.Target, string(e.Detail)).Scan(&e.ID)
	if err != nil {
		return registry.AuditEvent{}, fmt.Errorf("record audit event %s of %q: %w", e.Action, e.Target, err)
	}
	return e, nil
}

// ListAudit implements registry.RecoveryStore.
func (s *Store) ListAudit(ctx context.Context, f registry.AuditFilter) ([]registry.AuditEvent, error) {
	query := `SELECT ` + auditColumns + ` FROM audit_events WHERE 1 = 1`
	var args []any
	if f.Project != "" {
		query += ` AND project = ?`
		args = append(args, f.Project)
	}
	if f.Action != "" {
		query += ` AND action = ?`
		args = append(args, string(f.Action))
	}
	if f.Target != "" {
		query += ` AND target = ?`
		args = append(args, f.Target)
	}
	query += ` ORDER BY id DESC`
	if f.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := s.q().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var out []registry.AuditEvent
	for rows.Next() {
		var e registry.AuditEvent
		var action, detail string
		if err := rows.Scan(&e.ID, &e.Project, dbTime{&e.At}, &e.Actor, &action, &e.Target, &detail); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.Action = registry.AuditAction(action)
		if detail != "" {
			e.Detail = json.RawMessage(detail)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}
