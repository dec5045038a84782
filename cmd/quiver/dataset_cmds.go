package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/internal/bytesize"
	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

func (a *app) datasetCommand() *cobra.Command {
	return parent("dataset", "Build, inspect, verify and export point-in-time training dataset snapshots",
		"dataset needs a subcommand: create, list, show, diff, verify, export, rm",
		a.datasetCreateCommand(), a.datasetListCommand(), a.datasetShowCommand(), a.datasetDiffCommand(),
		a.datasetVerifyCommand(), a.datasetExportCommand(), a.datasetRmCommand())
}

func (a *app) datasetCreateCommand() *cobra.Command {
	var req project.DatasetRequest
	var atS string
	cmd := &cobra.Command{
		Use:   "create NAME --service SVC --entities FILE",
		Short: "Build a point-in-time-correct dataset snapshot as the next version of NAME",
		Long: `Join the feature service's features onto entity rows (a Parquet or CSV file with the join
keys, an event_timestamp column and any labels), as of each row's time, reading each view's
offline table at a pinned snapshot. The snapshot is immutable: Parquet files and a manifest
under WAREHOUSE/projects/KEY/datasets/sha256-HEX/ (KEY: the project's name when it is lower
case; the folder is named by its content id and shared by every version with that content),
registered as the next version of NAME, numbered by the registry. The same inputs under the
same name reuse that name's version unless --rebuild is given. Entity rows before a view's
first materialized interval get nulls for its features: a warning names the view and their
share.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		if req.Service == "" {
			return usage("dataset create needs --service")
		}
		switch req.Engine {
		case training.EngineLocal:
			if req.Entities == "" || req.EntitiesSQL != "" {
				return usage("--engine local needs --entities FILE (Parquet or CSV); --entities-sql needs --engine trino")
			}
		case training.EngineTrino:
			if req.EntitiesSQL == "" || req.Entities != "" {
				return usage("--engine trino needs --entities-sql QUERY (the entity rows, as Trino SQL); --entities FILE needs --engine local")
			}
		default:
			return usage("--engine %q: valid engines: local, trino", req.Engine)
		}
		if atS != "" {
			var err error
			if req.At, err = parseTime("at", atS); err != nil {
				return err
			}
		}
		req.Name = args[0]
		set, done := a.bar("joining " + req.Name)
		req.Progress = set
		began := time.Now()
		res, err := p.CreateDataset(ctx, req)
		done()
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			fmt.Fprintf(a.stderr, "quiver: warning: %s\n", w)
		}
		out := datasetCreateJSON{datasetJSON: toDatasetJSON(res.Dataset, false), Location: res.Dir, Reused: res.Reused, Warnings: []coverageJSON{}}
		out.Lineage = nil
		for _, w := range res.Warnings {
			wj := coverageJSON{View: w.View, RowsBefore: w.Before, Rows: w.Rows}
			if !w.From.IsZero() {
				wj.MaterializedFrom = w.From.Format(time.RFC3339Nano)
			}
			out.Warnings = append(out.Warnings, wj)
		}
		return a.render(out, func() {
			d := res.Dataset
			if res.Reused {
				a.printf("Dataset cache hit: reused %s@v%d, a snapshot of the same inputs (content id %s). Use --rebuild to build it again.\n", d.Name, d.Version, d.ContentID)
				return
			}
			secs := time.Since(began).Seconds()
			a.printf("Created %s@v%d: %d rows in %.2fs (%.0f rows/s)\n  content id %s\n  %s\n", d.Name, d.Version, d.Rows, secs, float64(d.Rows)/max(secs, 1e-9), d.ContentID, res.Dir)
		})
	})
	f := cmd.Flags()
	f.StringVar(&req.Service, "service", "", "the feature service whose features to join")
	f.StringVar(&req.Entities, "entities", "", "entity rows: a Parquet or CSV file with the join keys, event_timestamp and labels")
	f.StringVar(&req.EntitiesSQL, "entities-sql", "", "entity rows as a Trino SQL query (with --engine trino)")
	f.StringVar(&req.Engine, "engine", training.EngineLocal, "join engine: local (in-process) or trino (pushed down as one SQL statement)")
	f.StringVar(&atS, "at", "", "read each view's offline table as it was at this time (default: latest)")
	f.BoolVar(&req.CreatedCutoff, "created-cutoff", false, "also require created_ts <= each row's event_timestamp (no late-arriving data)")
	f.BoolVar(&req.Rebuild, "rebuild", false, "build a new version even if one with the same inputs exists")
	f.BoolVar(&req.RejectNaiveTimestamps, "reject-naive-timestamps", false, "refuse entity timestamps without a time zone instead of reading them as UTC")
	f.Var(bytesize.NewValue(&req.MemoryBudget, 0), "memory-budget", "join memory budget, e.g. 512MiB or 2GB; past it the join spills to disk (default: a quarter of RAM)")
	return cmd
}

func (a *app) datasetListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List dataset versions",
		Args:  cobra.MaximumNArgs(1),
	}
	cmd.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		name := optional(args)
		list, err := reg.ListDatasets(ctx, p.Name(), name)
		if err != nil {
			return fmt.Errorf("list datasets: %w", err)
		}
		out := make([]datasetJSON, len(list))
		for i, d := range list {
			out[i] = toDatasetJSON(d, false)
		}
		return a.render(out, func() {
			if len(list) == 0 {
				a.printf("No datasets in project %q. Create one with quiver dataset create.\n", p.Name())
				return
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tVERSION\tROWS\tCONTENT ID\tCREATED\tBY")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\tv%d\t%d\t%s\t%s\t%s\n", d.Name, d.Version, d.Rows, shortID(d.ContentID), d.CreatedAt.UTC().Format(time.DateTime), d.CreatedBy)
			}
			tw.Flush()
		})
	})
	return cmd
}

func shortID(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}

func (a *app) datasetShowCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show NAME[@vN]",
		Short: "Show a dataset version: schema, rows, files and lineage",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		ds, dir, err := p.Dataset(ctx, args[0])
		if err != nil {
			return err
		}
		if a.jsonOutput() {
			return a.printJSON(toDatasetJSON(ds, true))
		}
		return training.WriteDatasetText(a.stdout, ds, dir)
	})
	return cmd
}

func (a *app) datasetVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify NAME[@vN]",
		Short: "Re-hash every file of a dataset version; exit 4 naming any file that changed",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		ds, dir, err := p.Dataset(ctx, args[0])
		if err != nil {
			return err
		}
		bad, err := training.Verify(dir, ds.ContentID)
		if a.jsonOutput() {
			out := verifyJSON{Name: ds.Name, Version: ds.Version, OK: err == nil, Mismatches: make([]mismatchJSON, len(bad))}
			for i, b := range bad {
				out.Mismatches[i] = mismatchJSON{b.Path, b.Reason}
			}
			if perr := a.printJSON(out); perr != nil {
				return perr
			}
			return a.reported(err)
		}
		for _, b := range bad {
			fmt.Fprintf(a.stderr, "MISMATCH %s: %s\n", filepath.Join(dir, b.Path), b.Reason)
		}
		if err != nil && len(bad) > 0 {
			return fmt.Errorf("dataset %s@v%d is corrupt: %w", ds.Name, ds.Version, err)
		} else if err != nil {
			return err
		}
		a.printf("%s@v%d is intact: every file matches its manifest (content id %s).\n", ds.Name, ds.Version, ds.ContentID)
		return nil
	})
	return cmd
}

func (a *app) datasetExportCommand() *cobra.Command {
	var to string
	var opts training.ExportOptions
	cmd := &cobra.Command{
		Use:   "export NAME[@vN] --to DIR [--format parquet|csv] [--force]",
		Short: "Copy a dataset version out of the warehouse, as Parquet (verified) or CSV",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		if to == "" {
			return usage("dataset export needs --to DIR")
		}
		if opts.Format != training.FormatParquet && opts.Format != training.FormatCSV {
			return usage("--format %q: valid formats: parquet, csv", opts.Format)
		}
		ds, dir, err := p.Dataset(ctx, args[0])
		if err != nil {
			return err
		}
		m, _, err := training.ReadManifest(dir)
		if err != nil {
			return err
		}
		files, err := training.ExportTo(ctx, dir, m, to, opts)
		if err != nil {
			return err
		}
		return a.render(exportJSON{Name: ds.Name, Version: ds.Version, Files: files}, func() {
			a.printf("Exported %s@v%d (%d rows) to %s:\n", ds.Name, ds.Version, ds.Rows, to)
			for _, f := range files {
				a.printf("  %s\n", f)
			}
		})
	})
	cmd.Flags().StringVar(&to, "to", "", "destination directory")
	cmd.Flags().StringVar(&opts.Format, "format", training.FormatParquet, "parquet or csv")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "export into a directory that already has files (same-named files are replaced)")
	return cmd
}

func (a *app) datasetDiffCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two dataset versions: schema, rows, lineage and per-column statistics",
		Args:  cobra.ExactArgs(2),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		var ds [2]registry.Dataset
		for i, ref := range args {
			var err error
			if ds[i], _, err = p.Dataset(ctx, ref); err != nil {
				return err
			}
		}
		d, err := training.DiffDatasets(ctx, p.FilesDir(), ds[0], ds[1])
		if err != nil {
			return err
		}
		a0, b0 := d.A, d.B
		if a.jsonOutput() {
			side := func(s training.DatasetSide) diffSideJSON {
				return diffSideJSON{datasetJSON: toDatasetJSON(s.Dataset, false), Stats: s.StatsByName()}
			}
			return a.printJSON(diffJSON{A: side(a0), B: side(b0)})
		}
		return d.WriteText(a.stdout)
	})
	return cmd
}

func (a *app) datasetRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NAME@vN",
		Short: "Remove a dataset version (refused while a registered model version was trained on it, unless --force)",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		name, ver, err := project.ParseDatasetRef(args[0])
		if err != nil {
			return err
		}
		if ver == 0 {
			return usage("dataset rm needs an explicit version: %s@vN", name)
		}
		ds, err := p.RemoveDataset(ctx, args[0], force)
		if err != nil {
			return err
		}
		return a.render(datasetRemovedJSON{Name: ds.Name, Version: ds.Version, Removed: true}, func() {
			a.printf("Removed %s@v%d from the registry; its files stay in the warehouse until `quiver gc` removes them (content another live version shares stays).\n", ds.Name, ds.Version)
		})
	})
	cmd.Flags().BoolVar(&force, "force", false, "remove even if a registered model version was trained on it")
	return cmd
}
