package project

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// Plan is what apply would change, with the registry revision it was made against.
type Plan struct {
	Project  string
	Revision int64
	Changes  []definitions.Change
	// Generations are the views' current definition generations (registry.Generation).
	Generations map[string]int
	// Drops says, per view whose current generation a change ends, what dropping it deletes
	// (PreviewDrops fills it).
	Drops map[string]materialize.DropPreview
}

// Ending lists the views whose current generation change c ends: a removed feature view, or
// the views of a breaking change.
func Ending(c definitions.Change) []string {
	if c.Op == definitions.OpRemove && c.Kind == definitions.KindFeatureView {
		return []string{c.Name}
	}
	return c.Generations
}

// NextGeneration is the generation view would start.
func (pl *Plan) NextGeneration(view string) int { return registry.Generation(pl.Generations, view) + 1 }

// Breaking reports whether any change is breaking.
func (pl *Plan) Breaking() bool {
	for _, c := range pl.Changes {
		if c.Breaking {
			return true
		}
	}
	return false
}

// Plan compares the repo's definitions with what the registry holds (one consistent read)
// and lists the changes. Invalid definitions give a definitions.ErrorList.
func (p *Project) Plan(ctx context.Context) (*Plan, error) {
	repo, err := p.Definitions()
	if err != nil {
		return nil, err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	st, err := reg.ReadApplied(ctx, p.Name())
	if err != nil {
		return nil, fmt.Errorf("read registry: %w", err)
	}
	pl := &Plan{Project: p.Name(), Revision: st.Revision, Generations: st.Generations}
	applied := make([]definitions.Applied, len(st.Objects))
	live := map[string]bool{}
	for i, o := range st.Objects {
		applied[i] = definitions.Applied{Kind: o.Kind, Name: o.Name, Version: o.Version, Hash: o.Hash, Spec: o.Spec}
		if o.Kind == definitions.KindFeatureView {
			live[o.Name] = true
		}
	}
	if pl.Changes, err = definitions.Plan(repo, applied); err != nil {
		return nil, err
	}
	// Only views that hold data of a generation end one.
	for i := range pl.Changes {
		c := &pl.Changes[i]
		gens := c.Generations[:0:0]
		for _, v := range c.Generations {
			if live[v] {
				gens = append(gens, v)
			}
		}
		c.Generations = gens
		if len(gens) == 0 && c.Kind != definitions.KindFeatureView {
			c.Breaking = false // no view holds data it would break
		}
	}
	return pl, nil
}

// PreviewDrops says, for every view a change would end a generation of, what dropping it
// deletes. Stores that cannot be opened leave their figures unknown.
func (p *Project) PreviewDrops(ctx context.Context, pl *Plan) {
	var views []string
	for _, c := range pl.Changes {
		views = append(views, Ending(c)...)
	}
	if len(views) == 0 {
		return
	}
	var counter online.Counter
	if on, err := p.Online(ctx); err == nil {
		counter, _ = on.(online.Counter)
	}
	var reader offline.Reader
	tableName := iceberg.TableName
	if off, err := p.Offline(ctx); err == nil {
		reader = off
		tableName = func(v string, g int) string { return strings.Join(off.Identifier(v, g), ".") }
	}
	pl.Drops = map[string]materialize.DropPreview{}
	for _, v := range views {
		pl.Drops[v] = materialize.PreviewDrop(ctx, pl.Project, v, registry.Generation(pl.Generations, v), counter, reader, tableName)
	}
}

// ApplyOptions are apply's choices.
type ApplyOptions struct {
	// Prune also removes registered objects that are no longer declared.
	Prune bool
	// AllowBreaking applies breaking changes: each affected view starts a new generation.
	AllowBreaking bool
	// KeepData keeps the offline tables of removed views and ended generations.
	KeepData bool
	// ExpectRevision, when set, refuses the apply unless the registry is still at it.
	ExpectRevision *int64
}

// Applied is what an apply did.
type Applied struct {
	Project  string `json:"project"`
	Revision int64  `json:"revision"` // after the apply; the plan's when nothing changed
	// Versions are the object versions written.
	Versions []WrittenVersion `json:"versions"`
	// RemovalsSkipped counts removals left out without Prune.
	RemovalsSkipped int `json:"removals_skipped"`
	// NewGenerations are the views (not removed) that start a new generation, with the
	// generation they start.
	NewGenerations map[string]int `json:"new_generations"`
	// DropsFinished are the drops of ended generations done after the commit, this apply's
	// and any an earlier apply left unfinished.
	DropsFinished []DropDone `json:"drops_finished"`
	// DropError says why dropping the data of ended generations failed, after the commit.
	DropError string `json:"drop_error,omitempty"`
}

// WrittenVersion is one object version an apply wrote.
type WrittenVersion struct {
	Kind    definitions.Kind `json:"kind"`
	Name    string           `json:"name"`
	Version int              `json:"version"`
	Deleted bool             `json:"deleted,omitempty"`
}

// DropDone is the data of one ended generation, dropped.
type DropDone struct {
	View       string `json:"view"`
	Generation int    `json:"generation"`
	Online     bool   `json:"online"`
	Offline    bool   `json:"offline"`
}

// Apply writes the plan's changes to the registry in one transaction (removals only with
// Prune), then drops the data of every ended generation. Breaking changes without
// AllowBreaking are refused (BreakingError) and nothing is written. When the registry is
// applied but a drop fails, it returns what was applied and the error, which says how to
// finish the drops.
func (p *Project) Apply(ctx context.Context, pl *Plan, opts ApplyOptions) (*Applied, error) {
	if opts.ExpectRevision != nil && *opts.ExpectRevision != pl.Revision {
		return nil, &registry.RevisionConflictError{Project: pl.Project, Planned: *opts.ExpectRevision, Current: pl.Revision}
	}
	req := registry.ApplyRequest{Project: pl.Project, BaseRevision: pl.Revision, Author: p.Actor(),
		GitCommit: RecordedCommit(ctx, p.Config.Root), KeepOfflineData: opts.KeepData}
	res := &Applied{Project: pl.Project, Revision: pl.Revision, Versions: []WrittenVersion{}, NewGenerations: map[string]int{}}
	var applied []definitions.Change
	for _, c := range pl.Changes {
		if c.Op == definitions.OpRemove && !opts.Prune {
			res.RemovalsSkipped++
			continue
		}
		applied = append(applied, c)
		req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec, Delete: c.Op == definitions.OpRemove})
		req.NewGenerations = append(req.NewGenerations, c.Generations...)
	}
	for _, c := range applied {
		if c.Breaking && !opts.AllowBreaking {
			return nil, refuseBreaking(applied)
		}
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	if len(req.Changes) > 0 {
		out, err := reg.Apply(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("apply to registry: %w", err)
		}
		res.Revision = out.Revision
		for _, v := range out.Versions {
			res.Versions = append(res.Versions, WrittenVersion{v.Kind, v.Name, v.Version, v.Deleted})
		}
		for _, d := range out.Drops {
			if !removesView(req.Changes, d.View) {
				res.NewGenerations[d.View] = d.Generation + 1
			}
		}
	}
	// The registry is committed: drop the data of every ended generation, this apply's and
	// any an earlier apply left unfinished.
	done, err := p.finishDrops(ctx)
	res.DropsFinished = make([]DropDone, len(done))
	for i, d := range done {
		res.DropsFinished[i] = DropDone{d.View, d.Generation, d.Online, d.Offline}
	}
	if err != nil {
		res.DropError = err.Error()
	}
	return res, err
}

func removesView(changes []registry.Change, view string) bool {
	for _, c := range changes {
		if c.Kind == definitions.KindFeatureView && c.Name == view && c.Delete {
			return true
		}
	}
	return false
}

// finishDrops runs the project's pending drops, opening only the stores they need. A store
// that cannot be reached leaves the drops pending, and the error says how to finish them.
func (p *Project) finishDrops(ctx context.Context) ([]registry.PendingDrop, error) {
	reg, err := p.Registry(ctx)
	if err != nil {
		return nil, err
	}
	pending, err := reg.PendingDrops(ctx, p.Name())
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	wrap := func(err error) error {
		return fmt.Errorf("the registry is applied, but dropping the data of %d ended generation(s) failed (run quiver apply again to finish): %w", len(pending), err)
	}
	needOnline, needOffline := materialize.NeedsStores(pending)
	var st materialize.DropStores
	if needOnline {
		if st.Online, err = p.Online(ctx); err != nil {
			return nil, wrap(err)
		}
	}
	if needOffline {
		off, err := p.Offline(ctx)
		if err != nil {
			return nil, wrap(err)
		}
		st.Offline = off
	}
	done, err := materialize.FinishDrops(ctx, reg, p.Name(), st)
	if err != nil {
		return done, wrap(err)
	}
	return done, nil
}

// BreakingError refuses an apply of breaking changes without AllowBreaking. It matches
// definitions.ErrBreakingChange.
type BreakingError struct {
	// Fields are the breaking fields, as definitions.BreakingFields describes them.
	Fields []string
	// Views are the views that would start a new generation.
	Views []string
}

func (e *BreakingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "apply refused: %d breaking %s (see quiver plan):\n", len(e.Fields), plural("change", len(e.Fields)))
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	b.WriteString("Nothing was applied. To apply anyway, run quiver apply --allow-breaking")
	if len(e.Views) > 0 {
		verb := "start"
		if len(e.Views) == 1 {
			verb = "starts"
		}
		fmt.Fprintf(&b, ": feature view %s then %s a new generation (the old online rows stop being served and are deleted, the old offline table is dropped unless --keep-data), and quiver materialize fills it again",
			strings.Join(e.Views, ", "), verb)
	}
	return b.String()
}

func (e *BreakingError) Unwrap() error { return definitions.ErrBreakingChange }

func refuseBreaking(changes []definitions.Change) error {
	e := &BreakingError{Fields: definitions.BreakingFields(changes)}
	for _, c := range changes {
		e.Views = append(e.Views, c.Generations...)
	}
	sort.Strings(e.Views)
	e.Views = compact(e.Views)
	return e
}

func compact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// plural is "change" or "changes".
func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	return s + "s"
}
