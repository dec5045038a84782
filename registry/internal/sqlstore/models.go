package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/quiverfs/quiver/registry"
)

const modelColumns = `project, name, version, run_id, artifact_uri, artifact_hash, runtime, feature_service,
	description, created_at, created_by`

func scanModel(sc interface{ Scan(...any) error }) (registry.ModelVersion, error) {
	var m registry.ModelVersion
	var runID string
	err := sc.Scan(&m.Project, &m.Name, &m.Version, &runID, &m.ArtifactURI, &m.ArtifactHash, &m.Runtime,
		&m.FeatureService, &m.Description, dbTime{&m.CreatedAt}, &m.CreatedBy)
	m.RunID = registry.TrainingRunID(runID)
	return m, err
}

// CreateModelVersion implements registry.ModelStore.
func (s *Store) CreateModelVersion(ctx context.Context, m registry.ModelVersion) (registry.ModelVersion, error) {
	if m.Project == "" || m.Name == "" || m.ArtifactURI == "" {
		return registry.ModelVersion{}, fmt.Errorf("create model version: empty project, name or artifact: %w", registry.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx q) error {
		if _, err := lockProject(ctx, tx, m.Project); err != nil {
			return err
		}
		var last int
		if err := tx.row(ctx, `SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE project = ? AND name = ?`,
			m.Project, m.Name).Scan(&last); err != nil {
			return err
		}
		m.Version, m.CreatedAt = last+1, Now()
		_, err := tx.exec(ctx, `INSERT INTO model_versions (`+modelColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.Project, m.Name, m.Version, string(m.RunID), m.ArtifactURI, m.ArtifactHash, m.Runtime, m.FeatureService,
			m.Description, tx.d.encTime(m.CreatedAt), m.CreatedBy)
		return err
	})
	if err != nil {
		return registry.ModelVersion{}, fmt.Errorf("create version of model %q: %w", m.Name, err)
	}
	return m, nil
}

// GetModelVersion implements registry.ModelStore.
func (s *Store) GetModelVersion(ctx context.Context, project, name string, version int) (registry.ModelVersion, error) {
	return s.getModelVersion(ctx, s.q(), project, name, version)
}

func (s *Store) getModelVersion(ctx context.Context, c q, project, name string, version int) (registry.ModelVersion, error) {
	var row scanRow
	if version <= 0 {
		row = c.row(ctx, `SELECT `+modelColumns+` FROM model_versions WHERE project = ? AND name = ?
			ORDER BY version DESC LIMIT 1`, project, name)
	} else {
		row = c.row(ctx, `SELECT `+modelColumns+` FROM model_versions WHERE project = ? AND name = ? AND version = ?`,
			project, name, version)
	}
	m, err := scanModel(row)
	if errors.Is(err, sql.ErrNoRows) {
		if version > 0 {
			return registry.ModelVersion{}, fmt.Errorf("%q version %d: %w", name, version, registry.ErrModelNotFound)
		}
		return registry.ModelVersion{}, fmt.Errorf("%q: %w", name, registry.ErrModelNotFound)
	}
	if err != nil {
		return registry.ModelVersion{}, fmt.Errorf("read model %q: %w", name, err)
	}
	return m, nil
}

// ListModelVersions implements registry.ModelStore.
func (s *Store) ListModelVersions(ctx context.Context, project, name string) ([]registry.ModelVersion, error) {
	query := `SELECT ` + modelColumns + ` FROM model_versions WHERE project = ?`
	args := []any{project}
	if name != "" {
		query += ` AND name = ?`
		args = append(args, name)
	}
	rows, err := s.q().query(ctx, query+` ORDER BY name, version`, args...)
	if err != nil {
		return nil, fmt.Errorf("list model versions: %w", err)
	}
	defer rows.Close()
	var out []registry.ModelVersion
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, fmt.Errorf("list model versions: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list model versions: %w", err)
	}
	return out, nil
}

// ModelVersionsTrainedOn implements registry.ModelStore with one query.
func (s *Store) ModelVersionsTrainedOn(ctx context.Context, project, datasetName string, datasetVersion int) ([]registry.ModelVersion, error) {
	cols := strings.Split(modelColumns, ",")
	for i, c := range cols {
		cols[i] = "m." + strings.TrimSpace(c)
	}
	rows, err := s.q().query(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM model_versions m
		JOIN training_runs r ON r.id = m.run_id
		WHERE m.project = ? AND r.project = ? AND r.dataset_name = ? AND r.dataset_version = ?
		ORDER BY m.name, m.version`, project, project, datasetName, datasetVersion)
	if err != nil {
		return nil, fmt.Errorf("model versions trained on dataset %q version %d: %w", datasetName, datasetVersion, err)
	}
	defer rows.Close()
	var out []registry.ModelVersion
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, fmt.Errorf("model versions trained on dataset %q: %w", datasetName, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("model versions trained on dataset %q: %w", datasetName, err)
	}
	return out, nil
}

const aliasColumns = `project, name, alias, version, updated_at, updated_by`

func scanAlias(sc interface{ Scan(...any) error }) (registry.ModelAlias, error) {
	var a registry.ModelAlias
	err := sc.Scan(&a.Project, &a.Name, &a.Alias, &a.Version, dbTime{&a.UpdatedAt}, &a.UpdatedBy)
	return a, err
}

// aliasVersion is the version an alias points at, 0 when unset.
func aliasVersion(ctx context.Context, c q, project, name, alias string) (int, error) {
	var v int
	err := c.row(ctx, `SELECT version FROM model_aliases WHERE project = ? AND name = ? AND alias = ?`, project, name, alias).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}

func recordAliasEvent(ctx context.Context, c q, project, name, alias string, from, to int, by string) error {
	nullable := func(v int) any {
		if v == 0 {
			return nil
		}
		return v
	}
	_, err := c.exec(ctx, `INSERT INTO model_alias_events (project, name, alias, from_version, to_version, changed_at, changed_by)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, project, name, alias, nullable(from), nullable(to), c.d.encTime(Now()), by)
	return err
}

// SetModelAlias implements registry.ModelStore.
func (s *Store) SetModelAlias(ctx context.Context, u registry.AliasUpdate) (registry.ModelAlias, error) {
	if u.Project == "" || u.Name == "" || u.Alias == "" || u.Version <= 0 {
		return registry.ModelAlias{}, fmt.Errorf("set model alias: empty project, name, alias or version: %w", registry.ErrInvalid)
	}
	if err := registry.CheckAliasName(u.Alias); err != nil {
		return registry.ModelAlias{}, fmt.Errorf("set model alias: %w", err)
	}
	a := registry.ModelAlias{Project: u.Project, Name: u.Name, Alias: u.Alias, Version: u.Version, UpdatedBy: u.By}
	err := s.inTx(ctx, func(tx q) error {
		if _, err := lockProject(ctx, tx, u.Project); err != nil {
			return err
		}
		if _, err := s.getModelVersion(ctx, tx, u.Project, u.Name, u.Version); err != nil {
			return err
		}
		from, err := aliasVersion(ctx, tx, u.Project, u.Name, u.Alias)
		if err != nil {
			return err
		}
		a.UpdatedAt = Now()
		if _, err := tx.exec(ctx, `INSERT INTO model_aliases (`+aliasColumns+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (project, name, alias) DO UPDATE
			SET version = excluded.version, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
			a.Project, a.Name, a.Alias, a.Version, tx.d.encTime(a.UpdatedAt), a.UpdatedBy); err != nil {
			return err
		}
		return recordAliasEvent(ctx, tx, u.Project, u.Name, u.Alias, from, u.Version, u.By)
	})
	if err != nil {
		return registry.ModelAlias{}, fmt.Errorf("set alias %s@%s to version %d: %w", u.Name, u.Alias, u.Version, err)
	}
	return a, nil
}

// DeleteModelAlias implements registry.ModelStore.
func (s *Store) DeleteModelAlias(ctx context.Context, project, name, alias, by string) error {
	err := s.inTx(ctx, func(tx q) error {
		if _, err := lockProject(ctx, tx, project); err != nil {
			return err
		}
		from, err := aliasVersion(ctx, tx, project, name, alias)
		if err != nil {
			return err
		}
		if from == 0 {
			return registry.ErrAliasNotFound
		}
		if _, err := tx.exec(ctx, `DELETE FROM model_aliases WHERE project = ? AND name = ? AND alias = ?`, project, name, alias); err != nil {
			return err
		}
		return recordAliasEvent(ctx, tx, project, name, alias, from, 0, by)
	})
	if err != nil {
		return fmt.Errorf("delete alias %s@%s: %w", name, alias, err)
	}
	return nil
}

// ResolveModelAlias implements registry.ModelStore.
func (s *Store) ResolveModelAlias(ctx context.Context, project, name, alias string) (registry.ModelVersion, error) {
	m, err := scanModel(s.q().row(ctx, `SELECT m.project, m.name, m.version, m.run_id, m.artifact_uri, m.artifact_hash,
			m.runtime, m.feature_service, m.description, m.created_at, m.created_by
		FROM model_aliases a JOIN model_versions m
			ON m.project = a.project AND m.name = a.name AND m.version = a.version
		WHERE a.project = ? AND a.name = ? AND a.alias = ?`, project, name, alias))
	if errors.Is(err, sql.ErrNoRows) {
		return registry.ModelVersion{}, fmt.Errorf("%s@%s: %w", name, alias, registry.ErrAliasNotFound)
	}
	if err != nil {
		return registry.ModelVersion{}, fmt.Errorf("resolve %s@%s: %w", name, alias, err)
	}
	return m, nil
}

// ListModelAliases implements registry.ModelStore.
func (s *Store) ListModelAliases(ctx context.Context, project, name string) ([]registry.ModelAlias, error) {
	query := `SELECT ` + aliasColumns + ` FROM model_aliases WHERE project = ?`
	args := []any{project}
	if name != "" {
		query += ` AND name = ?`
		args = append(args, name)
	}
	rows, err := s.q().query(ctx, query+` ORDER BY name, alias`, args...)
	if err != nil {
		return nil, fmt.Errorf("list model aliases: %w", err)
	}
	defer rows.Close()
	var out []registry.ModelAlias
	for rows.Next() {
		a, err := scanAlias(rows)
		if err != nil {
			return nil, fmt.Errorf("list model aliases: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list model aliases: %w", err)
	}
	return out, nil
}

// ModelAliasHistory implements registry.ModelStore.
func (s *Store) ModelAliasHistory(ctx context.Context, project, name, alias string) ([]registry.AliasEvent, error) {
	rows, err := s.q().query(ctx, `SELECT from_version, to_version, changed_at, changed_by FROM model_alias_events
		WHERE project = ? AND name = ? AND alias = ? ORDER BY id`, project, name, alias)
	if err != nil {
		return nil, fmt.Errorf("read history of %s@%s: %w", name, alias, err)
	}
	defer rows.Close()
	var out []registry.AliasEvent
	for rows.Next() {
		e := registry.AliasEvent{Project: project, Name: name, Alias: alias}
		var from, to sql.NullInt64
		if err := rows.Scan(&from, &to, dbTime{&e.ChangedAt}, &e.ChangedBy); err != nil {
			return nil, fmt.Errorf("read history of %s@%s: %w", name, alias, err)
		}
		e.FromVersion, e.ToVersion = int(from.Int64), int(to.Int64)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history of %s@%s: %w", name, alias, err)
	}
	return out, nil
}
