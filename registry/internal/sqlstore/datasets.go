package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/quiverfs/quiver/registry"
)

const datasetColumns = `project, name, version, content_id, inputs_hash, location, row_count, manifest,
	created_at, created_by, deleted`

func scanDataset(sc interface{ Scan(...any) error }) (registry.Dataset, error) {
	var d registry.Dataset
	var manifest string
	err := sc.Scan(&d.Project, &d.Name, &d.Version, &d.ContentID, &d.InputsHash, &d.Location, &d.Rows, &manifest,
		dbTime{&d.CreatedAt}, &d.CreatedBy, &d.Deleted)
	if manifest != "" {
		d.Manifest = json.RawMessage(manifest)
	}
	return d, err
}

func collectDatasets(rows *sql.Rows, err error) ([]registry.Dataset, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []registry.Dataset
	for rows.Next() {
		d, err := scanDataset(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CreateDataset implements registry.DatasetStore.
func (s *Store) CreateDataset(ctx context.Context, d registry.Dataset) (registry.Dataset, error) {
	if d.Project == "" || d.Name == "" || d.ContentID == "" {
		return registry.Dataset{}, fmt.Errorf("create dataset: empty project, name or content id: %w", registry.ErrInvalid)
	}
	if len(d.Manifest) > 0 && !json.Valid(d.Manifest) {
		return registry.Dataset{}, fmt.Errorf("create dataset %q: manifest is not valid JSON: %w", d.Name, registry.ErrInvalid)
	}
	err := s.inTx(ctx, func(tx q) error {
		// The project row lock makes "next version" race-free.
		if _, err := lockProject(ctx, tx, d.Project); err != nil {
			return err
		}
		return insertDatasetVersion(ctx, tx, &d)
	})
	if err != nil {
		return registry.Dataset{}, fmt.Errorf("create dataset: %w", err)
	}
	return d, nil
}

// GetDataset implements registry.DatasetStore.
func (s *Store) GetDataset(ctx context.Context, project, name string, version int) (registry.Dataset, error) {
	var row scanRow
	if version <= 0 {
		row = s.q().row(ctx, `SELECT `+datasetColumns+` FROM datasets
			WHERE project = ? AND name = ? AND deleted = ? ORDER BY version DESC LIMIT 1`, project, name, false)
	} else {
		row = s.q().row(ctx, `SELECT `+datasetColumns+` FROM datasets
			WHERE project = ? AND name = ? AND version = ?`, project, name, version)
	}
	d, err := scanDataset(row)
	if errors.Is(err, sql.ErrNoRows) {
		if version > 0 {
			return registry.Dataset{}, fmt.Errorf("%q version %d: %w", name, version, registry.ErrDatasetNotFound)
		}
		return registry.Dataset{}, fmt.Errorf("%q: %w", name, registry.ErrDatasetNotFound)
	}
	if err != nil {
		return registry.Dataset{}, fmt.Errorf("read dataset %q: %w", name, err)
	}
	return d, nil
}

// ListDatasets implements registry.DatasetStore.
func (s *Store) ListDatasets(ctx context.Context, project, name string) ([]registry.Dataset, error) {
	query := `SELECT ` + datasetColumns + ` FROM datasets WHERE project = ? AND deleted = ?`
	args := []any{project, false}
	if name != "" {
		query += ` AND name = ?`
		args = append(args, name)
	}
	out, err := collectDatasets(s.q().query(ctx, query+` ORDER BY name, version`, args...))
	if err != nil {
		return nil, fmt.Errorf("list datasets of project %q: %w", project, err)
	}
	return out, nil
}

// FindDatasetByInputs implements registry.DatasetStore.
func (s *Store) FindDatasetByInputs(ctx context.Context, project, name, inputsHash string) (registry.Dataset, error) {
	if inputsHash == "" || name == "" {
		return registry.Dataset{}, fmt.Errorf("find dataset: empty name or inputs hash: %w", registry.ErrInvalid)
	}
	d, err := scanDataset(s.q().row(ctx, `SELECT `+datasetColumns+` FROM datasets
		WHERE project = ? AND name = ? AND inputs_hash = ? AND deleted = ? ORDER BY version DESC LIMIT 1`,
		project, name, inputsHash, false))
	if errors.Is(err, sql.ErrNoRows) {
		return registry.Dataset{}, fmt.Errorf("dataset %q with inputs %s: %w", name, inputsHash, registry.ErrDatasetNotFound)
	}
	if err != nil {
		return registry.Dataset{}, fmt.Errorf("find dataset %q by inputs %s: %w", name, inputsHash, err)
	}
	return d, nil
}

// DeleteDataset implements registry.DatasetStore.
func (s *Store) DeleteDataset(ctx context.Context, project, name string, version int) error {
	res, err := s.q().exec(ctx, `UPDATE datasets SET deleted = ? WHERE project = ? AND name = ? AND version = ? AND deleted = ?`,
		true, project, name, version, false)
	if err != nil {
		return fmt.Errorf("delete dataset %q version %d: %w", name, version, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete dataset %q version %d: %w", name, version, err)
	}
	if n == 0 {
		return fmt.Errorf("delete dataset %q version %d: %w", name, version, registry.ErrDatasetNotFound)
	}
	return nil
}
