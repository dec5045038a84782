package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

const objectColumns = `project, kind, name, version, hash, spec, deleted, revision, created_at, created_by, git_commit`

func scanObject(sc interface{ Scan(...any) error }) (registry.ObjectVersion, error) {
	var o registry.ObjectVersion
	var kind, spec string
	err := sc.Scan(&o.Project, &kind, &o.Name, &o.Version, &o.Hash, &spec, &o.Deleted, &o.Revision,
		dbTime{&o.CreatedAt}, &o.CreatedBy, &o.GitCommit)
	o.Kind = definitions.Kind(kind)
	if spec != "" {
		o.Spec = json.RawMessage(spec)
	}
	return o, err
}

func collectObjects(rows *sql.Rows, err error) ([]registry.ObjectVersion, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []registry.ObjectVersion
	for rows.Next() {
		o, err := scanObject(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// CurrentRevision implements registry.DefinitionReader.
func (s *Store) CurrentRevision(ctx context.Context, project string) (int64, error) {
	return currentRevision(ctx, s.q(), project)
}

func currentRevision(ctx context.Context, c q, project string) (int64, error) {
	var rev int64
	err := c.row(ctx, `SELECT revision FROM projects WHERE name = ?`, project).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read revision of project %q: %w", project, err)
	}
	return rev, nil
}

// latestLive selects each object's newest version when that version is not a removal.
const latestLive = `SELECT ` + objectColumns + ` FROM object_versions o
	WHERE o.project = ? AND o.deleted = ? AND o.version = (
		SELECT MAX(l.version) FROM object_versions l
		WHERE l.project = o.project AND l.kind = o.kind AND l.name = o.name)`

// ListObjects implements registry.DefinitionReader.
func (s *Store) ListObjects(ctx context.Context, project string, kind definitions.Kind) ([]registry.ObjectVersion, error) {
	return listObjects(ctx, s.q(), project, kind)
}

// ReadApplied implements registry.DefinitionReader: the three reads in one snapshot.
func (s *Store) ReadApplied(ctx context.Context, project string) (registry.AppliedState, error) {
	st := registry.AppliedState{Project: project}
	err := s.readSnapshot(ctx, func(tx q) error {
		var err error
		if st.Revision, err = currentRevision(ctx, tx, project); err != nil {
			return err
		}
		if st.Objects, err = listObjects(ctx, tx, project, ""); err != nil {
			return err
		}
		st.Generations, err = generations(ctx, tx, project)
		return err
	})
	if err != nil {
		return registry.AppliedState{}, fmt.Errorf("read the applied definitions of project %q: %w", project, err)
	}
	return st, nil
}

func listObjects(ctx context.Context, c q, project string, kind definitions.Kind) ([]registry.ObjectVersion, error) {
	var (
		out []registry.ObjectVersion
		err error
	)
	if kind == "" {
		out, err = collectObjects(c.query(ctx, latestLive+` ORDER BY o.kind, o.name`, project, false))
	} else {
		out, err = collectObjects(c.query(ctx, latestLive+` AND o.kind = ? ORDER BY o.name`, project, false, string(kind)))
	}
	if err != nil {
		return nil, fmt.Errorf("list %s objects of project %q: %w", kindLabel(kind), project, err)
	}
	if kind == "" {
		// Order by the kinds' dependency order rather than alphabetically.
		slices.SortStableFunc(out, func(a, b registry.ObjectVersion) int {
			return kindIndex(a.Kind) - kindIndex(b.Kind)
		})
	}
	return out, nil
}

func kindLabel(k definitions.Kind) string {
	if k == "" {
		return "all"
	}
	return k.Label()
}

func kindIndex(k definitions.Kind) int {
	if i := slices.Index(definitions.Kinds, k); i >= 0 {
		return i
	}
	return len(definitions.Kinds)
}

// GetObject implements registry.DefinitionReader.
func (s *Store) GetObject(ctx context.Context, project string, kind definitions.Kind, name string, version int) (registry.ObjectVersion, error) {
	var row scanRow
	if version <= 0 {
		row = s.q().row(ctx, `SELECT `+objectColumns+` FROM object_versions
			WHERE project = ? AND kind = ? AND name = ? ORDER BY version DESC LIMIT 1`, project, string(kind), name)
	} else {
		row = s.q().row(ctx, `SELECT `+objectColumns+` FROM object_versions
			WHERE project = ? AND kind = ? AND name = ? AND version = ?`, project, string(kind), name, version)
	}
	o, err := scanObject(row)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && version <= 0 && o.Deleted) {
		if version > 0 {
			return registry.ObjectVersion{}, fmt.Errorf("%s %q version %d: %w", kind.Label(), name, version, registry.ErrObjectNotFound)
		}
		return registry.ObjectVersion{}, fmt.Errorf("%s %q: %w", kind.Label(), name, registry.ErrObjectNotFound)
	}
	if err != nil {
		return registry.ObjectVersion{}, fmt.Errorf("read %s %q: %w", kind.Label(), name, err)
	}
	return o, nil
}

// ObjectHistory implements registry.DefinitionReader.
func (s *Store) ObjectHistory(ctx context.Context, project string, kind definitions.Kind, name string) ([]registry.ObjectVersion, error) {
	out, err := collectObjects(s.q().query(ctx, `SELECT `+objectColumns+` FROM object_versions
		WHERE project = ? AND kind = ? AND name = ? ORDER BY version`, project, string(kind), name))
	if err != nil {
		return nil, fmt.Errorf("read history of %s %q: %w", kind.Label(), name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s %q: %w", kind.Label(), name, registry.ErrObjectNotFound)
	}
	return out, nil
}

// RevisionLog implements registry.DefinitionReader.
func (s *Store) RevisionLog(ctx context.Context, project string, limit int) ([]registry.RevisionInfo, error) {
	query := `SELECT revision, applied_at, applied_by, git_commit FROM revisions WHERE project = ? ORDER BY revision DESC`
	args := []any{project}
	if limit > 0 {
		query += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.q().query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("read revision log of project %q: %w", project, err)
	}
	var out []registry.RevisionInfo
	index := map[int64]int{}
	for rows.Next() {
		r := registry.RevisionInfo{Project: project}
		if err := rows.Scan(&r.Revision, dbTime{&r.AppliedAt}, &r.AppliedBy, &r.GitCommit); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read revision log of project %q: %w", project, err)
		}
		index[r.Revision] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revision log of project %q: %w", project, err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	oldest := out[len(out)-1].Revision
	rows, err = s.q().query(ctx, `SELECT revision, kind, name, version, deleted FROM object_versions
		WHERE project = ? AND revision >= ? ORDER BY revision, kind, name`, project, oldest)
	if err != nil {
		return nil, fmt.Errorf("read revision log of project %q: %w", project, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rev  int64
			kind string
			ref  registry.ObjectRef
		)
		if err := rows.Scan(&rev, &kind, &ref.Name, &ref.Version, &ref.Deleted); err != nil {
			return nil, fmt.Errorf("read revision log of project %q: %w", project, err)
		}
		ref.Kind = definitions.Kind(kind)
		if i, ok := index[rev]; ok {
			out[i].Objects = append(out[i].Objects, ref)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read revision log of project %q: %w", project, err)
	}
	for i := range out {
		slices.SortStableFunc(out[i].Objects, func(a, b registry.ObjectRef) int { return kindIndex(a.Kind) - kindIndex(b.Kind) })
	}
	return out, nil
}

func validateApply(req registry.ApplyRequest) error {
	if req.Project == "" {
		return fmt.Errorf("apply: empty project name: %w", registry.ErrInvalid)
	}
	if req.BaseRevision < 0 {
		return fmt.Errorf("apply: negative base revision %d: %w", req.BaseRevision, registry.ErrInvalid)
	}
	type key struct {
		kind definitions.Kind
		name string
	}
	seen := map[key]bool{}
	for _, c := range req.Changes {
		if !slices.Contains(definitions.Kinds, c.Kind) {
			return fmt.Errorf("apply: unknown kind %q: %w", c.Kind, registry.ErrInvalid)
		}
		if c.Name == "" {
			return fmt.Errorf("apply: %s with an empty name: %w", c.Kind.Label(), registry.ErrInvalid)
		}
		k := key{c.Kind, c.Name}
		if seen[k] {
			return fmt.Errorf("apply: %s %q changed twice in one request: %w", c.Kind.Label(), c.Name, registry.ErrInvalid)
		}
		seen[k] = true
		if c.Delete {
			continue
		}
		if c.Hash == "" {
			return fmt.Errorf("apply: %s %q has no content hash: %w", c.Kind.Label(), c.Name, registry.ErrInvalid)
		}
		if !json.Valid(c.Spec) {
			return fmt.Errorf("apply: %s %q spec is not valid JSON: %w", c.Kind.Label(), c.Name, registry.ErrInvalid)
		}
	}
	return nil
}

// lockProject makes sure the project row exists and returns its revision, locked for the
// rest of the transaction.
//
// Concurrency: on Postgres the write transactions run at READ COMMITTED and serialize on the
// project's row with SELECT ... FOR UPDATE. A second apply waits for the first to commit, then
// reads the new revision and fails with a clear conflict instead of a serialization failure
// to retry; the lock is per project, so projects never block one another. On SQLite every
// write transaction begins IMMEDIATE (the database's single write lock), which gives the same
// ordering.
func lockProject(ctx context.Context, tx q, project string) (int64, error) {
	if _, err := tx.exec(ctx, `INSERT INTO projects (name, revision, created_at) VALUES (?, 0, ?)
		ON CONFLICT (name) DO NOTHING`, project, tx.d.encTime(Now())); err != nil {
		return 0, fmt.Errorf("create project %q: %w", project, err)
	}
	var rev int64
	if err := tx.row(ctx, `SELECT revision FROM projects WHERE name = ?`+tx.d.ForUpdate, project).Scan(&rev); err != nil {
		return 0, fmt.Errorf("lock project %q: %w", project, err)
	}
	return rev, nil
}

// Apply implements registry.DefinitionWriter.
func (s *Store) Apply(ctx context.Context, req registry.ApplyRequest) (registry.ApplyResult, error) {
	if err := validateApply(req); err != nil {
		return registry.ApplyResult{}, err
	}
	var res registry.ApplyResult
	err := s.inTx(ctx, func(tx q) error {
		res = registry.ApplyResult{}
		cur, err := lockProject(ctx, tx, req.Project)
		if err != nil {
			return err
		}
		if cur != req.BaseRevision {
			return &registry.RevisionConflictError{Project: req.Project, Planned: req.BaseRevision, Current: cur}
		}
		now := Now()
		before := map[string]viewState{}
		for _, c := range req.Changes {
			var (
				version int
				hash    string
				deleted bool
			)
			err := tx.row(ctx, `SELECT version, hash, deleted FROM object_versions
				WHERE project = ? AND kind = ? AND name = ? ORDER BY version DESC LIMIT 1`,
				req.Project, string(c.Kind), c.Name).Scan(&version, &hash, &deleted)
			exists := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read %s %q: %w", c.Kind.Label(), c.Name, err)
			}
			live := exists && !deleted
			if c.Kind == definitions.KindFeatureView {
				before[c.Name] = viewState{existed: exists, live: live}
			}
			if (c.Delete && !live) || (!c.Delete && live && hash == c.Hash) {
				continue // nothing to do
			}
			o := registry.ObjectVersion{
				Project: req.Project, Kind: c.Kind, Name: c.Name, Version: version + 1,
				Revision: cur + 1, CreatedAt: now, CreatedBy: req.Author, GitCommit: req.GitCommit,
			}
			if c.Delete {
				o.Deleted = true
			} else {
				o.Hash, o.Spec = c.Hash, c.Spec
			}
			res.Versions = append(res.Versions, o)
		}
		for _, v := range req.NewGenerations {
			if _, ok := before[v]; ok {
				continue
			}
			var deleted bool
			err := tx.row(ctx, `SELECT deleted FROM object_versions
				WHERE project = ? AND kind = ? AND name = ? ORDER BY version DESC LIMIT 1`,
				req.Project, string(definitions.KindFeatureView), v).Scan(&deleted)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("read feature view %q: %w", v, err)
			}
			before[v] = viewState{existed: err == nil, live: err == nil && !deleted}
		}
		drops, err := endGenerations(ctx, tx, req, res.Versions, before, cur+1, now)
		if err != nil {
			return err
		}
		res.Drops = drops
		if len(res.Versions) == 0 && len(drops) == 0 {
			res.Revision = cur
			return nil
		}
		res.Revision = cur + 1
		if _, err := tx.exec(ctx, `INSERT INTO revisions (project, revision, applied_at, applied_by, git_commit)
			VALUES (?, ?, ?, ?, ?)`, req.Project, res.Revision, tx.d.encTime(now), req.Author, req.GitCommit); err != nil {
			return fmt.Errorf("record revision %d: %w", res.Revision, err)
		}
		for _, o := range res.Versions {
			if _, err := tx.exec(ctx, `INSERT INTO object_versions (`+objectColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				o.Project, string(o.Kind), o.Name, o.Version, o.Hash, string(o.Spec), o.Deleted, o.Revision,
				tx.d.encTime(o.CreatedAt), o.CreatedBy, o.GitCommit); err != nil {
				return fmt.Errorf("write %s %q version %d: %w", o.Kind.Label(), o.Name, o.Version, err)
			}
		}
		if _, err := tx.exec(ctx, `UPDATE projects SET revision = ? WHERE name = ?`, res.Revision, req.Project); err != nil {
			return fmt.Errorf("advance project %q to revision %d: %w", req.Project, res.Revision, err)
		}
		return nil
	})
	if err != nil {
		return registry.ApplyResult{}, fmt.Errorf("apply to project %q: %w", req.Project, err)
	}
	return res, nil
}
