package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/scaffold"
	"github.com/quiverfs/quiver/registry"
)

func (a *app) initCommand() *cobra.Command {
	var project string
	cmd := &cobra.Command{
		Use:   "init [DIR]",
		Short: "Create a working feature repo with sample data",
		Long: `Create a feature repo in DIR (default: the -C directory): quiver.yaml, definitions
under features/, a generated sample Parquet file under data/, and a README. Refuses to
overwrite an existing quiver.yaml.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := a.dir
			if len(args) == 1 {
				dir = args[0]
				if !filepath.IsAbs(dir) {
					dir = filepath.Join(a.dir, dir)
				}
			}
			files, err := scaffold.Init(dir, scaffold.Options{Project: project})
			if errors.Is(err, scaffold.ErrExists) {
				return usagef(err)
			}
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"dir": dir, "files": files})
			}
			fmt.Fprintf(a.stdout, "Created feature repo in %s:\n", dir)
			for _, f := range files {
				fmt.Fprintf(a.stdout, "  %s\n", f)
			}
			fmt.Fprintf(a.stdout, "\nNext: quiver -C %s validate && quiver -C %s apply\n", dir, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&project, "project", "", "project name (default: the directory's name)")
	return cmd
}

// errorJSON is one definitions error in -o json output.
type errorJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// reportInvalid prints definitions errors (one per line, file:line:col first) and returns an
// error for the exit code. Other errors pass through unchanged.
func (a *app) reportInvalid(err error) error {
	var list definitions.ErrorList
	if !errors.As(err, &list) {
		return err
	}
	if a.jsonOutput() {
		out := make([]errorJSON, len(list))
		for i, e := range list {
			out[i] = errorJSON{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg}
		}
		if perr := a.printJSON(map[string]any{"valid": false, "errors": out}); perr != nil {
			return perr
		}
	} else {
		for _, e := range list {
			fmt.Fprintln(a.stderr, e.Error())
		}
		n := len(list)
		if last := list[n-1]; last.Omitted > 0 { // the "and N more" entry
			n += last.Omitted - 1
		}
		fmt.Fprintf(a.stderr, "%d error(s) in the definitions\n", n)
	}
	return reportedError{err}
}

func (a *app) validateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check every definitions file; exit 1 listing every error with file:line:col",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			repo, err := a.definitions(cfg)
			if err != nil {
				return a.reportInvalid(err)
			}
			counts := map[definitions.Kind]int{}
			for _, o := range repo.Objects() {
				counts[o.ObjectKind()]++
			}
			if a.jsonOutput() {
				byKind := map[string]int{}
				for k, n := range counts {
					byKind[string(k)] = n
				}
				return a.printJSON(map[string]any{"valid": true, "project": cfg.Project, "objects": byKind})
			}
			var parts []string
			for _, k := range definitions.Kinds {
				if counts[k] > 0 {
					parts = append(parts, fmt.Sprintf("%d %s", counts[k], plural(k.Label(), counts[k])))
				}
			}
			fmt.Fprintf(a.stdout, "Definitions are valid: %s.\n", orNone(strings.Join(parts, ", ")))
			return nil
		},
	}
}

func plural(s string, n int) string {
	if n == 1 {
		return s
	}
	if strings.HasSuffix(s, "y") {
		return s[:len(s)-1] + "ies"
	}
	return s + "s"
}

func orNone(s string) string {
	if s == "" {
		return "no objects"
	}
	return s
}

// plan computes the changes between the repo and the registry, with the revision it read.
func (a *app) plan(cmd *cobra.Command) (changes []definitions.Change, revision int64, project string, store registry.Store, err error) {
	cfg, err := a.config()
	if err != nil {
		return nil, 0, "", nil, err
	}
	repo, err := a.definitions(cfg)
	if err != nil {
		return nil, 0, "", nil, a.reportInvalid(err)
	}
	ctx := cmd.Context()
	store, err = a.registry(ctx, cfg)
	if err != nil {
		return nil, 0, "", nil, err
	}
	revision, err = store.CurrentRevision(ctx, cfg.Project)
	if err != nil {
		store.Close()
		return nil, 0, "", nil, fmt.Errorf("read registry revision: %w", err)
	}
	current, err := store.ListObjects(ctx, cfg.Project, "")
	if err != nil {
		store.Close()
		return nil, 0, "", nil, fmt.Errorf("read registry: %w", err)
	}
	applied := make([]definitions.Applied, len(current))
	for i, o := range current {
		applied[i] = definitions.Applied{Kind: o.Kind, Name: o.Name, Version: o.Version, Hash: o.Hash, Spec: o.Spec}
	}
	changes, err = definitions.Plan(repo, applied)
	if err != nil {
		store.Close()
		return nil, 0, "", nil, err
	}
	return changes, revision, cfg.Project, store, nil
}

type fieldJSON struct {
	Path string `json:"path"`
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

type changeJSON struct {
	Op          definitions.Op   `json:"op"`
	Kind        definitions.Kind `json:"kind"`
	Name        string           `json:"name"`
	FromVersion int              `json:"from_version,omitempty"`
	Fields      []fieldJSON      `json:"fields,omitempty"`
}

func changesJSON(changes []definitions.Change) []changeJSON {
	out := make([]changeJSON, len(changes))
	for i, c := range changes {
		out[i] = changeJSON{Op: c.Op, Kind: c.Kind, Name: c.Name, FromVersion: c.FromVersion}
		for _, f := range c.Fields {
			out[i].Fields = append(out[i].Fields, fieldJSON(f))
		}
	}
	return out
}

// printPlan writes a plan for people: one line per object, field-level diffs beneath changes.
func (a *app) printPlan(project string, revision int64, changes []definitions.Change, prune bool) {
	if len(changes) == 0 {
		fmt.Fprintf(a.stdout, "No changes: the registry (project %q, revision %d) matches the definitions.\n", project, revision)
		return
	}
	fmt.Fprintf(a.stdout, "Plan for project %q against registry revision %d:\n\n", project, revision)
	var add, change, remove int
	for _, c := range changes {
		switch c.Op {
		case definitions.OpAdd:
			add++
			fmt.Fprintf(a.stdout, "  + %s %s\n", c.Kind, c.Name)
		case definitions.OpChange:
			change++
			fmt.Fprintf(a.stdout, "  ~ %s %s (v%d -> v%d)\n", c.Kind, c.Name, c.FromVersion, c.FromVersion+1)
			for _, f := range c.Fields {
				switch {
				case f.Old == "":
					fmt.Fprintf(a.stdout, "      + %s: %s\n", f.Path, f.New)
				case f.New == "":
					fmt.Fprintf(a.stdout, "      - %s: %s\n", f.Path, f.Old)
				default:
					fmt.Fprintf(a.stdout, "      ~ %s: %s -> %s\n", f.Path, f.Old, f.New)
				}
			}
		case definitions.OpRemove:
			remove++
			note := " (only with apply --prune)"
			if prune {
				note = ""
			}
			fmt.Fprintf(a.stdout, "  - %s %s (v%d)%s\n", c.Kind, c.Name, c.FromVersion, note)
		}
	}
	fmt.Fprintf(a.stdout, "\n%d to add, %d to change, %d to remove.\n", add, change, remove)
}

func (a *app) planCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "plan",
		Short: "Show what apply would change in the registry, field by field",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			changes, revision, project, store, err := a.plan(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"project": project, "revision": revision, "changes": changesJSON(changes)})
			}
			a.printPlan(project, revision, changes, false)
			return nil
		},
	}
}

func (a *app) applyCommand() *cobra.Command {
	var prune bool
	var expect int64
	cmd := &cobra.Command{
		Use:   "apply",
		Short: "Register the definitions: a new version of every changed object, in one transaction",
		Long: `Apply writes a new version of every added or changed object to the registry in one
transaction. Earlier versions are kept. Objects that are no longer declared are removed only
with --prune. If someone else applied since this command read the registry, nothing is
written and the command exits 3; run plan again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			changes, revision, project, store, err := a.plan(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			if cmd.Flags().Changed("expect-revision") && expect != revision {
				return &registry.RevisionConflictError{Project: project, Planned: expect, Current: revision}
			}
			req := registry.ApplyRequest{
				Project:      project,
				BaseRevision: revision,
				Author:       a.whoAmI(),
				GitCommit:    recordedCommit(cmd.Context(), a.dir),
			}
			skipped := 0
			for _, c := range changes {
				if c.Op == definitions.OpRemove && !prune {
					skipped++
					continue
				}
				req.Changes = append(req.Changes, registry.Change{Kind: c.Kind, Name: c.Name, Hash: c.Hash, Spec: c.Spec, Delete: c.Op == definitions.OpRemove})
			}
			res := registry.ApplyResult{Revision: revision}
			if len(req.Changes) > 0 {
				res, err = store.Apply(cmd.Context(), req)
				if err != nil {
					return fmt.Errorf("apply to registry: %w", err)
				}
			}
			if a.jsonOutput() {
				type versionJSON struct {
					Kind    definitions.Kind `json:"kind"`
					Name    string           `json:"name"`
					Version int              `json:"version"`
					Deleted bool             `json:"deleted,omitempty"`
				}
				vs := make([]versionJSON, len(res.Versions))
				for i, v := range res.Versions {
					vs[i] = versionJSON{v.Kind, v.Name, v.Version, v.Deleted}
				}
				return a.printJSON(map[string]any{"project": project, "revision": res.Revision, "versions": vs, "removals_skipped": skipped})
			}
			if len(res.Versions) == 0 {
				fmt.Fprintf(a.stdout, "No changes: the registry (project %q, revision %d) matches the definitions.\n", project, res.Revision)
			} else {
				fmt.Fprintf(a.stdout, "Applied registry revision %d for project %q:\n", res.Revision, project)
				tw := a.table()
				for _, v := range res.Versions {
					what := fmt.Sprintf("v%d", v.Version)
					if v.Deleted {
						what += " (removed)"
					}
					fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.Kind, v.Name, what)
				}
				tw.Flush()
			}
			if skipped > 0 {
				fmt.Fprintf(a.stdout, "%d object(s) no longer declared were kept; run apply --prune to remove them.\n", skipped)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&prune, "prune", false, "also remove registered objects that are no longer declared")
	cmd.Flags().Int64Var(&expect, "expect-revision", 0, "fail unless the registry is still at this revision (the one plan printed)")
	return cmd
}
