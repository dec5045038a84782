package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// planned is a plan with what it was made against.
type planned struct {
	cfg      *config.Config
	store    registry.Store
	revision int64
	changes  []definitions.Change
	// gens are the views' current definition generations (registry.Generation reads them).
	gens map[string]int
}

func (p *planned) project() string { return p.cfg.Project }

// plan computes the changes between the repo and the registry, with the revision it read.
// The caller closes p.store.
func (a *app) plan(cmd *cobra.Command) (*planned, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	repo, err := a.definitions(cfg)
	if err != nil {
		return nil, a.reportInvalid(err)
	}
	ctx := cmd.Context()
	store, err := a.registry(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p := &planned{cfg: cfg, store: store}
	fail := func(err error) (*planned, error) {
		store.Close()
		return nil, err
	}
	if p.revision, err = store.CurrentRevision(ctx, cfg.Project); err != nil {
		return fail(fmt.Errorf("read registry revision: %w", err))
	}
	current, err := store.ListObjects(ctx, cfg.Project, "")
	if err != nil {
		return fail(fmt.Errorf("read registry: %w", err))
	}
	if p.gens, err = store.Generations(ctx, cfg.Project); err != nil {
		return fail(fmt.Errorf("read registry: %w", err))
	}
	applied := make([]definitions.Applied, len(current))
	live := map[string]bool{}
	for i, o := range current {
		applied[i] = definitions.Applied{Kind: o.Kind, Name: o.Name, Version: o.Version, Hash: o.Hash, Spec: o.Spec}
		if o.Kind == definitions.KindFeatureView {
			live[o.Name] = true
		}
	}
	if p.changes, err = definitions.Plan(repo, applied); err != nil {
		return fail(err)
	}
	// Only views that hold data of a generation end one.
	for i := range p.changes {
		c := &p.changes[i]
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
	return p, nil
}

// ending lists, per change, the views whose current generation the change ends: a removed
// feature view, or the views of a breaking change.
func ending(c definitions.Change) []string {
	if c.Op == definitions.OpRemove && c.Kind == definitions.KindFeatureView {
		return []string{c.Name}
	}
	return c.Generations
}

// previewDrops says, for every view a change would end a generation of, what dropping it
// deletes. Stores that cannot be opened leave their figures unknown.
func (a *app) previewDrops(ctx context.Context, p *planned) map[string]materialize.DropPreview {
	var views []string
	for _, c := range p.changes {
		views = append(views, ending(c)...)
	}
	if len(views) == 0 {
		return nil
	}
	var counter online.Counter
	if on, err := stores.OpenOnline(ctx, p.cfg); err == nil {
		defer on.Close()
		counter, _ = on.(online.Counter)
	}
	var reader offline.Reader
	var tableName func(string, int) string
	if off, err := stores.OpenOffline(ctx, p.cfg, p.store); err == nil {
		defer off.Close()
		reader = off
		tableName = func(v string, g int) string { return strings.Join(off.Identifier(v, g), ".") }
	} else {
		tableName = iceberg.TableName
	}
	out := map[string]materialize.DropPreview{}
	for _, v := range views {
		out[v] = materialize.PreviewDrop(ctx, p.project(), v, registry.Generation(p.gens, v), counter, reader, tableName)
	}
	return out
}

type fieldJSON struct {
	Path     string `json:"path"`
	Old      string `json:"old,omitempty"`
	New      string `json:"new,omitempty"`
	Breaking bool   `json:"breaking"`
	Reason   string `json:"reason,omitempty"`
}

type dropJSON struct {
	View          string `json:"view"`
	Generation    int    `json:"generation"`
	OnlineRows    int64  `json:"online_rows"`
	OnlineError   string `json:"online_error,omitempty"`
	OfflineTable  string `json:"offline_table"`
	OfflineExists bool   `json:"offline_exists"`
	OfflineRows   int64  `json:"offline_rows"`
	OfflineError  string `json:"offline_error,omitempty"`
}

type changeJSON struct {
	Op          definitions.Op   `json:"op"`
	Kind        definitions.Kind `json:"kind"`
	Name        string           `json:"name"`
	FromVersion int              `json:"from_version,omitempty"`
	Breaking    bool             `json:"breaking"`
	Fields      []fieldJSON      `json:"fields,omitempty"`
	// NewGenerations are the views the change starts a new definition generation of, with
	// the generation each starts.
	NewGenerations map[string]int `json:"new_generations,omitempty"`
	Drops          []dropJSON     `json:"drops,omitempty"`
}

func changesJSON(p *planned, previews map[string]materialize.DropPreview) []changeJSON {
	out := make([]changeJSON, len(p.changes))
	for i, c := range p.changes {
		out[i] = changeJSON{Op: c.Op, Kind: c.Kind, Name: c.Name, FromVersion: c.FromVersion, Breaking: c.Breaking}
		for _, f := range c.Fields {
			out[i].Fields = append(out[i].Fields, fieldJSON(f))
		}
		for _, v := range c.Generations {
			if out[i].NewGenerations == nil {
				out[i].NewGenerations = map[string]int{}
			}
			out[i].NewGenerations[v] = registry.Generation(p.gens, v) + 1
		}
		for _, v := range ending(c) {
			if d, ok := previews[v]; ok {
				out[i].Drops = append(out[i].Drops, dropJSON(d))
			}
		}
	}
	return out
}

// describeDrop is one line on what dropping a generation deletes.
func describeDrop(d materialize.DropPreview, keepData bool) string {
	rows := "? online rows (" + d.OnlineError + ")"
	if d.OnlineRows >= 0 {
		rows = fmt.Sprintf("%d online %s", d.OnlineRows, plural("row", int(d.OnlineRows)))
	}
	table := "offline table " + d.OfflineTable
	switch {
	case d.OfflineError != "":
		table += " (? rows: " + d.OfflineError + ")"
	case !d.OfflineExists:
		table += " (not created)"
	case d.OfflineRows >= 0:
		table += fmt.Sprintf(" (%d %s)", d.OfflineRows, plural("row", int(d.OfflineRows)))
	}
	if keepData {
		return fmt.Sprintf("drops generation %d: %s; keeps %s (--keep-data)", d.Generation, rows, table)
	}
	return fmt.Sprintf("drops generation %d: %s and %s", d.Generation, rows, table)
}

// printPlan writes a plan for people: one line per object, field-level diffs beneath changes,
// each marked compatible or breaking, and what every ended generation's drop deletes.
func (a *app) printPlan(p *planned, previews map[string]materialize.DropPreview, prune, keepData bool) {
	if len(p.changes) == 0 {
		fmt.Fprintf(a.stdout, "No changes: the registry (project %q, revision %d) matches the definitions.\n", p.project(), p.revision)
		return
	}
	fmt.Fprintf(a.stdout, "Plan for project %q against registry revision %d:\n\n", p.project(), p.revision)
	var add, change, breaking, remove int
	drops := func(c definitions.Change) {
		for _, v := range ending(c) {
			if d, ok := previews[v]; ok {
				prefix := ""
				if c.Kind != definitions.KindFeatureView || v != c.Name {
					prefix = "feature_view " + v + " "
				}
				fmt.Fprintf(a.stdout, "      %s%s\n", prefix, describeDrop(d, keepData))
			}
		}
	}
	for _, c := range p.changes {
		switch c.Op {
		case definitions.OpAdd:
			add++
			fmt.Fprintf(a.stdout, "  + %s %s\n", c.Kind, c.Name)
		case definitions.OpChange:
			change++
			note := ""
			if c.Breaking {
				breaking++
				var gens []string
				for _, v := range c.Generations {
					gens = append(gens, fmt.Sprintf("%s generation %d", v, registry.Generation(p.gens, v)+1))
				}
				note = " BREAKING"
				if len(gens) > 0 {
					note += ": starts " + strings.Join(gens, ", ")
				}
			}
			fmt.Fprintf(a.stdout, "  ~ %s %s (v%d -> v%d)%s\n", c.Kind, c.Name, c.FromVersion, c.FromVersion+1, note)
			for _, f := range c.Fields {
				class := "compatible"
				if f.Breaking {
					class = "BREAKING"
				}
				switch {
				case f.Old == "":
					fmt.Fprintf(a.stdout, "      + %s: %s  [%s: %s]\n", f.Path, f.New, class, f.Reason)
				case f.New == "":
					fmt.Fprintf(a.stdout, "      - %s: %s  [%s: %s]\n", f.Path, f.Old, class, f.Reason)
				default:
					fmt.Fprintf(a.stdout, "      ~ %s: %s -> %s  [%s: %s]\n", f.Path, f.Old, f.New, class, f.Reason)
				}
			}
			drops(c)
		case definitions.OpRemove:
			remove++
			note := " (only with apply --prune)"
			if prune {
				note = ""
			}
			fmt.Fprintf(a.stdout, "  - %s %s (v%d)%s\n", c.Kind, c.Name, c.FromVersion, note)
			drops(c)
		}
	}
	changed := fmt.Sprintf("%d to change", change)
	if breaking > 0 {
		changed += fmt.Sprintf(" (%d breaking: apply needs --allow-breaking)", breaking)
	}
	fmt.Fprintf(a.stdout, "\n%d to add, %s, %d to remove.\n", add, changed, remove)
}

func (a *app) planCommand() *cobra.Command {
	var keepData bool
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change in the registry, field by field, compatible or breaking",
		Long: `Plan compares the definitions with the registry and prints every change field by field,
each marked compatible or BREAKING. For a removed feature view, and for every view a breaking
change starts a new generation of, it says what apply would drop: how many online rows and
which offline table.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := a.plan(cmd)
			if err != nil {
				return err
			}
			defer p.store.Close()
			previews := a.previewDrops(cmd.Context(), p)
			if a.jsonOutput() {
				breaking := false
				for _, c := range p.changes {
					breaking = breaking || c.Breaking
				}
				return a.printJSON(map[string]any{"project": p.project(), "revision": p.revision, "breaking": breaking, "changes": changesJSON(p, previews)})
			}
			a.printPlan(p, previews, false, keepData)
			return nil
		},
	}
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "show the plan as apply --keep-data would run it")
	return cmd
}

// refuseBreaking is the error apply returns for breaking changes without --allow-breaking.
func refuseBreaking(changes []definitions.Change) error {
	fields := definitions.BreakingFields(changes)
	var views []string
	for _, c := range changes {
		views = append(views, c.Generations...)
	}
	sort.Strings(views)
	views = compactStrings(views)
	var b strings.Builder
	fmt.Fprintf(&b, "apply refused: %d breaking %s (see quiver plan):\n", len(fields), plural("change", len(fields)))
	for _, f := range fields {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	b.WriteString("Nothing was applied. To apply anyway, run quiver apply --allow-breaking")
	if len(views) > 0 {
		fmt.Fprintf(&b, ": feature view %s then start%s a new generation (the old online rows stop being served and are deleted, the old offline table is dropped unless --keep-data), and quiver materialize fills it again",
			strings.Join(views, ", "), map[bool]string{true: "s", false: ""}[len(views) == 1])
	}
	return &breakingError{b.String()}
}

// breakingError is apply's refusal of breaking changes; it matches
// definitions.ErrBreakingChange.
type breakingError struct{ msg string }

func (e *breakingError) Error() string { return e.msg }
func (e *breakingError) Unwrap() error { return definitions.ErrBreakingChange }

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

type versionJSON struct {
	Kind    definitions.Kind `json:"kind"`
	Name    string           `json:"name"`
	Version int              `json:"version"`
	Deleted bool             `json:"deleted,omitempty"`
}

type finishedDropJSON struct {
	View       string `json:"view"`
	Generation int    `json:"generation"`
	Online     bool   `json:"online"`
	Offline    bool   `json:"offline"`
}

func (a *app) applyCommand() *cobra.Command {
	var prune, allowBreaking, keepData bool
	var expect int64
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Register the definitions: a new version of every changed object, in one transaction",
		Long: `Apply writes a new version of every added or changed object to the registry in one
transaction. Earlier versions are kept. Objects that are no longer declared are removed only
with --prune. If someone else applied since this command read the registry, nothing is
written and the command exits 3; run plan again.

Breaking changes (see plan) are refused with exit code 1 unless --allow-breaking is given;
with it, each affected feature view starts a new definition generation. A removed view
(--prune) and a view that starts a new generation have their data dropped after the registry
commit: their online rows for every entity and their offline table (kept with --keep-data).
A drop that is interrupted is finished by the next apply.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := a.plan(cmd)
			if err != nil {
				return err
			}
			defer p.store.Close()
			if cmd.Flags().Changed("expect-revision") && expect != p.revision {
				return &registry.RevisionConflictError{Project: p.project(), Planned: expect, Current: p.revision}
			}
			req := registry.ApplyRequest{
				Project:         p.project(),
				BaseRevision:    p.revision,
				Author:          a.whoAmI(),
				GitCommit:       recordedCommit(ctx, a.dir),
				KeepOfflineData: keepData,
			}
			skipped := 0
			var applied []definitions.Change
			for _, c := range p.changes {
				if c.Op == definitions.OpRemove && !prune {
					skipped++
					continue
				}
				applied = append(applied, c)
				req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec, Delete: c.Op == definitions.OpRemove})
				req.NewGenerations = append(req.NewGenerations, c.Generations...)
			}
			for _, c := range applied {
				if c.Breaking && !allowBreaking {
					return refuseBreaking(applied)
				}
			}
			res := registry.ApplyResult{Revision: p.revision}
			if len(req.Changes) > 0 {
				res, err = p.store.Apply(ctx, req)
				if err != nil {
					return fmt.Errorf("apply to registry: %w", err)
				}
			}
			// The registry is committed: drop the data of every ended generation, this
			// apply's and any an earlier apply left unfinished.
			done, dropErr := a.finishDrops(ctx, p)
			if a.jsonOutput() {
				vs := make([]versionJSON, len(res.Versions))
				for i, v := range res.Versions {
					vs[i] = versionJSON{v.Kind, v.Name, v.Version, v.Deleted}
				}
				gens := map[string]int{}
				for _, d := range res.Drops {
					if !removesView(req.Changes, d.View) {
						gens[d.View] = d.Generation + 1
					}
				}
				drops := make([]finishedDropJSON, len(done))
				for i, d := range done {
					drops[i] = finishedDropJSON{d.View, d.Generation, d.Online, d.Offline}
				}
				out := map[string]any{"project": p.project(), "revision": res.Revision, "versions": vs,
					"removals_skipped": skipped, "new_generations": gens, "drops_finished": drops}
				if dropErr != nil {
					out["drop_error"] = dropErr.Error()
				}
				if err := a.printJSON(out); err != nil {
					return err
				}
				if dropErr != nil {
					return a.reported(dropErr)
				}
				return nil
			}
			if len(res.Versions) == 0 && len(res.Drops) == 0 {
				fmt.Fprintf(a.stdout, "No changes: the registry (project %q, revision %d) matches the definitions.\n", p.project(), res.Revision)
			} else {
				fmt.Fprintf(a.stdout, "Applied registry revision %d for project %q:\n", res.Revision, p.project())
				tw := a.table()
				for _, v := range res.Versions {
					what := fmt.Sprintf("v%d", v.Version)
					if v.Deleted {
						what += " (removed)"
					}
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Kind, v.Name, what)
				}
				tw.Flush()
				for _, d := range res.Drops {
					if !removesView(req.Changes, d.View) {
						fmt.Fprintf(a.stdout, "Feature view %s starts generation %d: nothing is served or joined for it until it is materialized again: quiver materialize-incremental %s (its source's whole history), or quiver materialize --start T --end T %s.\n", d.View, d.Generation+1, d.View, d.View)
					}
				}
			}
			for _, d := range done {
				what := "online rows"
				if d.Offline {
					what += " and offline table"
				} else {
					what += " (offline table kept)"
				}
				fmt.Fprintf(a.stdout, "Dropped feature view %s generation %d: %s.\n", d.View, d.Generation, what)
			}
			if skipped > 0 {
				fmt.Fprintf(a.stdout, "%d object(s) no longer declared were kept; run apply --prune to remove them.\n", skipped)
			}
			if dropErr != nil {
				return dropErr
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "also remove registered objects that are no longer declared, and drop the data of removed feature views")
	cmd.Flags().BoolVar(&allowBreaking, "allow-breaking", false, "apply breaking changes: each affected feature view starts a new definition generation")
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the offline tables of removed views and ended generations (online rows are always dropped)")
	cmd.Flags().Int64Var(&expect, "expect-revision", 0, "fail unless the registry is still at this revision (the one plan printed)")
	return cmd
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
func (a *app) finishDrops(ctx context.Context, p *planned) ([]registry.PendingDrop, error) {
	pending, err := p.store.PendingDrops(ctx, p.project())
	if err != nil || len(pending) == 0 {
		return nil, err
	}
	needOnline, needOffline := materialize.NeedsStores(pending)
	var st materialize.DropStores
	wrap := func(err error) error {
		return fmt.Errorf("the registry is applied, but dropping the data of %d ended generation(s) failed (run quiver apply again to finish): %w", len(pending), err)
	}
	if needOnline {
		on, err := stores.OpenOnline(ctx, p.cfg)
		if err != nil {
			return nil, wrap(err)
		}
		defer on.Close()
		st.Online = on
	}
	if needOffline {
		off, err := stores.OpenOffline(ctx, p.cfg, p.store)
		if err != nil {
			return nil, wrap(err)
		}
		defer off.Close()
		st.Offline = off
	}
	done, err := materialize.FinishDrops(ctx, p.store, p.project(), st)
	if err != nil {
		return done, wrap(err)
	}
	return done, nil
}
