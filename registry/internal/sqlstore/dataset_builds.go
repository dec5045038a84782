package sqlstore

import (
	"context"
	"encoding/json"

	"fmt"

	"github.com/quiverfs/quiver/registry"
)

// BeginDatasetBuild implements registry.DatasetBuilds.
func (s *Store) BeginDatasetBuild(ctx context.Context, b registry.DatasetBuild) (registry.DatasetBuild, error) {
	if b.Project == "" || b.Name == "" {
		return registry.DatasetBuild{}, fmt.Errorf("begin dataset build: empty project or name: %w", registry.ErrInvalid)
	}
	b.StartedAt = Now()
	err := s.q().row(ctx, `INSERT INTO dataset_builds (project, name, host, pid, started_at)
		VALUES (?, ?, ?, ?, ?) RETURNING id`, b.Project, b.Name, b.Host, b.PID, s.d.encTime(b.StartedAt)).Scan(&b.ID)
	if err != nil {
		return registry.DatasetBuild{}, fmt.Errorf("begin build of dataset %q: %w", b.Name, err)
	}
	return b, nil
}

// FinishDatasetBuild implements registry.DatasetBuilds.
func (s *Store) FinishDatasetBuild(ctx context.Context, id registry.DatasetBuildID, d registry.Dataset) (registry.Dataset, error) {
	if d.Project == "" || d.Name == "" || d.ContentID == "" {
		return registry.Dataset{}, fmt.Errorf("finish dataset build %d: empty project, name or content id: %w", id, registry.ErrInvalid)
	}
	if len(d.Manifest) > 0 && !json.Valid(d.Manifest) {
		return registry.Dataset{}, fmt.Errorf("finish dataset build %d: manifest is not valid JSON: %w", id, registry.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx q) error {
		if _, err := lockProject(ctx, tx, d.Project); err != nil {
			return err
		}
		res, err := tx.exec(ctx, `DELETE FROM dataset_builds WHERE id = ? AND project = ? AND name = ?`, int64(id), d.Project, d.Name)
		if err != nil {
			return fmt.Errorf("end dataset build %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("end dataset build %d: %w", id, err)
		} else if n == 0 {
			return fmt.Errorf("dataset %q build %d: %w", d.Name, id, registry.ErrDatasetBuildNotFound)
		}
		return insertDatasetVersion(ctx, tx, &d)
	})
	if err != nil {
		return registry.Dataset{}, fmt.Errorf("finish dataset build: %w", err)
	}
	return d, nil
}

// insertDatasetVersion gives d the next version of its name and inserts it. The caller holds
// the project's row lock.
func insertDatasetVersion(ctx context.Context, tx q, d *registry.Dataset) error {
	var last int
	if err := tx.row(ctx, `SELECT COALESCE(MAX(version), 0) FROM datasets WHERE project = ? AND name = ?`,
		d.Project, d.Name).Scan(&last); err != nil {
		return fmt.Errorf("read versions of dataset %q: %w", d.Name, err)
	}
	d.Version, d.CreatedAt, d.Deleted = last+1, Now(), false
	_, err := tx.exec(ctx, `INSERT INTO datasets (`+datasetColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.Project, d.Name, d.Version, d.ContentID, d.InputsHash, d.Location, d.Rows, string(d.Manifest),
		tx.d.encTime(d.CreatedAt), d.CreatedBy, false)
	if err != nil {
		return fmt.Errorf("write dataset %q version %d: %w", d.Name, d.Version, err)
	}
	return nil
}

// AbandonDatasetBuild implements registry.DatasetBuilds.
func (s *Store) AbandonDatasetBuild(ctx context.Context, id registry.DatasetBuildID) error {
	if _, err := s.q().exec(ctx, `DELETE FROM dataset_builds WHERE id = ?`, int64(id)); err != nil {
		return fmt.Errorf("abandon dataset build %d: %w", id, err)
	}
	return nil
}

// ListDatasetBuilds implements registry.DatasetBuilds.
func (s *Store) ListDatasetBuilds(ctx context.Context, project string) ([]registry.DatasetBuild, error) {
	rows, err := s.q().query(ctx, `SELECT id, project, name, host, pid, started_at FROM dataset_builds
		WHERE project = ? ORDER BY id`, project)
	if err != nil {
		return nil, fmt.Errorf("list dataset builds of project %q: %w", project, err)
	}
	defer rows.Close()
	var out []registry.DatasetBuild
	for rows.Next() {
		var b registry.DatasetBuild
		if err := rows.Scan(&b.ID, &b.Project, &b.Name, &b.Host, &b.PID, dbTime{&b.StartedAt}); err != nil {
			return nil, fmt.Errorf("list dataset builds of project %q: %w", project, err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list dataset builds of project %q: %w", project, err)
	}
	return out, nil
}
