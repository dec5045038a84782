package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/registry"
)

// Generations implements registry.GenerationStore.
func (s *Store) Generations(ctx context.Context, project string) (map[string]int, error) {
	return generations(ctx, s.q(), project)
}

func generations(ctx context.Context, c q, project string) (map[string]int, error) {
	rows, err := c.query(ctx, `SELECT feature_view, generation FROM view_generations WHERE project = ?`, project)
	if err != nil {
		return nil, fmt.Errorf("read view generations of project %q: %w", project, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var (
			view string
			gen  int
		)
		if err := rows.Scan(&view, &gen); err != nil {
			return nil, fmt.Errorf("read view generations of project %q: %w", project, err)
		}
		out[view] = gen
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read view generations of project %q: %w", project, err)
	}
	return out, nil
}

// PendingDrops implements registry.GenerationStore.
func (s *Store) PendingDrops(ctx context.Context, project string) ([]registry.PendingDrop, error) {
	rows, err := s.q().query(ctx, `SELECT feature_view, generation, drop_online, drop_offline, revision, created_at
		FROM pending_drops WHERE project = ? ORDER BY feature_view, generation`, project)
	if err != nil {
		return nil, fmt.Errorf("read pending drops of project %q: %w", project, err)
	}
	defer rows.Close()
	var out []registry.PendingDrop
	for rows.Next() {
		d := registry.PendingDrop{Project: project}
		if err := rows.Scan(&d.View, &d.Generation, &d.Online, &d.Offline, &d.Revision, dbTime{&d.CreatedAt}); err != nil {
			return nil, fmt.Errorf("read pending drops of project %q: %w", project, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read pending drops of project %q: %w", project, err)
	}
	return out, nil
}

// FinishDrop implements registry.GenerationStore.
func (s *Store) FinishDrop(ctx context.Context, project, view string, generation int) error {
	if _, err := s.q().exec(ctx, `DELETE FROM pending_drops WHERE project = ? AND feature_view = ? AND generation = ?`,
		project, view, generation); err != nil {
		return fmt.Errorf("finish drop of feature view %q generation %d: %w", view, generation, err)
	}
	return nil
}

// generationOf reads a view's current generation inside a transaction: 1 when it has no row.
func generationOf(ctx context.Context, tx q, project, view string) (gen int, recorded bool, err error) {
	err = tx.row(ctx, `SELECT generation FROM view_generations WHERE project = ? AND feature_view = ?`, project, view).Scan(&gen)
	if errors.Is(err, sql.ErrNoRows) {
		return 1, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read generation of feature view %q: %w", view, err)
	}
	return gen, true, nil
}

// viewState is what Apply knew of a feature view before writing its new version.
type viewState struct {
	existed bool // a version was stored before the apply
	live    bool // and the latest was not a removal
}

// endGenerations starts new generations inside Apply's transaction: for every feature view the
// request removes, every removed view declared again that never had a generation recorded
// (removed before generations existed), and every live view in req.NewGenerations. Each
// records a pending drop of the generation that ended and forgets the view's watermark.
func endGenerations(ctx context.Context, tx q, req registry.ApplyRequest, written []registry.ObjectVersion,
	before map[string]viewState, revision int64, now time.Time) ([]registry.PendingDrop, error) {
	end := map[string]bool{}
	for _, o := range written {
		if o.Kind != definitions.KindFeatureView {
			continue
		}
		st := before[o.Name]
		switch {
		case o.Deleted:
			end[o.Name] = true
		case st.existed && !st.live:
			// Declared again after a removal: the removal started a new generation already,
			// unless it happened before generations were recorded.
			if _, recorded, err := generationOf(ctx, tx, req.Project, o.Name); err != nil {
				return nil, err
			} else if !recorded {
				end[o.Name] = true
			}
		}
	}
	for _, v := range req.NewGenerations {
		st := before[v]
		removed := slices.ContainsFunc(written, func(o registry.ObjectVersion) bool {
			return o.Kind == definitions.KindFeatureView && o.Name == v && o.Deleted
		})
		if st.live && !removed {
			end[v] = true
		}
	}
	views := make([]string, 0, len(end))
	for v := range end {
		views = append(views, v)
	}
	sort.Strings(views)
	var drops []registry.PendingDrop
	for _, v := range views {
		gen, _, err := generationOf(ctx, tx, req.Project, v)
		if err != nil {
			return nil, err
		}
		if _, err := tx.exec(ctx, `INSERT INTO view_generations (project, feature_view, generation, revision)
			VALUES (?, ?, ?, ?) ON CONFLICT (project, feature_view)
			DO UPDATE SET generation = excluded.generation, revision = excluded.revision`,
			req.Project, v, gen+1, revision); err != nil {
			return nil, fmt.Errorf("start generation %d of feature view %q: %w", gen+1, v, err)
		}
		d := registry.PendingDrop{Project: req.Project, View: v, Generation: gen, Online: true,
			Offline: !req.KeepOfflineData, Revision: revision, CreatedAt: now}
		if _, err := tx.exec(ctx, `INSERT INTO pending_drops (project, feature_view, generation, drop_online, drop_offline, revision, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, feature_view, generation) DO NOTHING`,
			d.Project, d.View, d.Generation, d.Online, d.Offline, d.Revision, tx.d.encTime(now)); err != nil {
			return nil, fmt.Errorf("record drop of feature view %q generation %d: %w", v, gen, err)
		}
		if _, err := tx.exec(ctx, `DELETE FROM watermarks WHERE project = ? AND feature_view = ?`, req.Project, v); err != nil {
			return nil, fmt.Errorf("reset watermark of feature view %q: %w", v, err)
		}
		drops = append(drops, d)
	}
	return drops, nil
}
