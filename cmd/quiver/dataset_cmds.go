package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/internal/bytesize"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/offline/trino"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

func (a *app) datasetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dataset",
		Short: "Build, inspect, verify and export point-in-time training dataset snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usage("dataset needs a subcommand: create, list, show, diff, verify, export, rm")
		},
	}
	cmd.AddCommand(a.datasetCreateCommand(), a.datasetListCommand(), a.datasetShowCommand(), a.datasetDiffCommand(),
		a.datasetVerifyCommand(), a.datasetExportCommand(), a.datasetRmCommand())
	return cmd
}

// parseDatasetRef parses NAME, NAME@vN or NAME@N. Version 0 means the latest.
func parseDatasetRef(s string) (string, int, error) {
	name, ver, ok := strings.Cut(s, "@")
	if !ok {
		return name, 0, nil
	}
	n, err := strconv.Atoi(strings.TrimPrefix(ver, "v"))
	if err != nil || n < 1 {
		return "", 0, usage("dataset %q: want NAME or NAME@vN (e.g. churn_train@v3)", s)
	}
	return name, n, nil
}

// configAndRegistry loads the repo config and opens its registry.
func (a *app) configAndRegistry(cmd *cobra.Command) (*config.Config, registry.Store, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, nil, err
	}
	reg, err := a.registry(cmd.Context(), cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, reg, nil
}

// getDataset resolves NAME[@vN] to a registered version and its directory.
func getDataset(cmd *cobra.Command, cfg *config.Config, reg registry.Store, ref string) (registry.Dataset, string, error) {
	name, ver, err := parseDatasetRef(ref)
	if err != nil {
		return registry.Dataset{}, "", err
	}
	ds, err := reg.GetDataset(cmd.Context(), cfg.Project, name, ver)
	if err != nil {
		return registry.Dataset{}, "", fmt.Errorf("dataset %s: %w", ref, err)
	}
	if ds.Deleted {
		return registry.Dataset{}, "", fmt.Errorf("dataset %s@v%d was removed: %w", ds.Name, ds.Version, registry.ErrNotFound)
	}
	return ds, training.DatasetDir(cfg.Offline.Warehouse, ds), nil
}

func (a *app) datasetCreateCommand() *cobra.Command {
	var service, entities, entitiesSQL, engine, atS string
	var cutoff, rebuild, rejectNaive bool
	var budget int64
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if service == "" {
				return usage("dataset create needs --service")
			}
			switch engine {
			case training.EngineLocal:
				if entities == "" || entitiesSQL != "" {
					return usage("--engine local needs --entities FILE (Parquet or CSV); --entities-sql needs --engine trino")
				}
			case training.EngineTrino:
				if entitiesSQL == "" || entities != "" {
					return usage("--engine trino needs --entities-sql QUERY (the entity rows, as Trino SQL); --entities FILE needs --engine local")
				}
			default:
				return usage("--engine %q: valid engines: local, trino", engine)
			}
			var at time.Time
			if atS != "" {
				var err error
				if at, err = parseTime("at", atS); err != nil {
					return err
				}
			}
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx := cmd.Context()
			applied, err := catalog.Load(ctx, reg, cfg.Project)
			if err != nil {
				return err
			}
			off, err := stores.OpenOffline(ctx, cfg, reg)
			if err != nil {
				return err
			}
			defer off.Close()
			var bar *progressbar.ProgressBar
			req := training.DatasetRequest{
				Project: cfg.Project, Name: args[0], Service: service, Entities: entities, At: at,
				CreatedCutoff: cutoff, Rebuild: rebuild, Warehouse: cfg.Offline.Warehouse, MemoryBudget: budget,
				RejectNaiveTimestamps: rejectNaive,
				QuiverVersion:         quiverVersion(), CreatedBy: a.whoAmI(),
				Progress: func(done, total int64) {
					if bar == nil {
						bar = a.progressBar(total, "joining "+args[0])
					}
					if bar != nil {
						_ = bar.Set64(done)
					}
				},
			}
			if engine == training.EngineTrino {
				if cfg.Trino.DSN == "" {
					return errkind.New(errkind.Invalid, "--engine trino needs trino.dsn in quiver.yaml (or QUIVER_TRINO_DSN)")
				}
				client, err := trino.Open(cfg.Trino.DSN)
				if err != nil {
					return err
				}
				defer client.Close()
				req.Engine, req.EntitiesSQL, req.Trino, req.TrinoNamespace = engine, entitiesSQL, client, iceberg.ProjectNamespace(cfg.Project)
			} else if req.Entities, err = filepath.Abs(req.Entities); err != nil {
				return err
			}
			unlock, err := warehouselock.Shared(ctx, cfg.Offline.Warehouse)
			if err != nil {
				return err
			}
			defer unlock()
			began := time.Now()
			res, err := training.CreateDataset(ctx, reg, off, applied, req)
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(a.stderr)
			}
			if err != nil {
				return err
			}
			reused := res.Reused
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "quiver: warning: %s\n", w)
			}
			if a.jsonOutput() {
				type warningJSON struct {
					View string `json:"view"`
					// MaterializedFrom is where the view's materialized history begins; absent
					// when it has no offline data.
					MaterializedFrom string `json:"materialized_from,omitempty"`
					RowsBefore       int64  `json:"rows_before"`
					Rows             int64  `json:"rows"`
				}
				warnings := []warningJSON{}
				for _, w := range res.Warnings {
					wj := warningJSON{View: w.View, RowsBefore: w.Before, Rows: w.Rows}
					if !w.From.IsZero() {
						wj.MaterializedFrom = w.From.Format(time.RFC3339Nano)
					}
					warnings = append(warnings, wj)
				}
				return a.printJSON(map[string]any{"name": res.Dataset.Name, "version": res.Dataset.Version, "content_id": res.Dataset.ContentID,
					"rows": res.Dataset.Rows, "location": res.Dir, "reused": reused, "warnings": warnings})
			}
			if reused {
				fmt.Fprintf(a.stdout, "Dataset cache hit: reused %s@v%d, a snapshot of the same inputs (content id %s). Use --rebuild to build it again.\n", res.Dataset.Name, res.Dataset.Version, res.Dataset.ContentID)
				return nil
			}
			secs := time.Since(began).Seconds()
			fmt.Fprintf(a.stdout, "Created %s@v%d: %d rows in %.2fs (%.0f rows/s)\n  content id %s\n  %s\n",
				res.Dataset.Name, res.Dataset.Version, res.Dataset.Rows, secs, float64(res.Dataset.Rows)/max(secs, 1e-9), res.Dataset.ContentID, res.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&service, "service", "", "the feature service whose features to join")
	cmd.Flags().StringVar(&entities, "entities", "", "entity rows: a Parquet or CSV file with the join keys, event_timestamp and labels")
	cmd.Flags().StringVar(&entitiesSQL, "entities-sql", "", "entity rows as a Trino SQL query (with --engine trino)")
	cmd.Flags().StringVar(&engine, "engine", training.EngineLocal, "join engine: local (in-process) or trino (pushed down as one SQL statement)")
	cmd.Flags().StringVar(&atS, "at", "", "read each view's offline table as it was at this time (default: latest)")
	cmd.Flags().BoolVar(&cutoff, "created-cutoff", false, "also require created_ts <= each row's event_timestamp (no late-arriving data)")
	cmd.Flags().BoolVar(&rebuild, "rebuild", false, "build a new version even if one with the same inputs exists")
	cmd.Flags().BoolVar(&rejectNaive, "reject-naive-timestamps", false, "refuse entity timestamps without a time zone instead of reading them as UTC")
	cmd.Flags().Var(bytesize.NewValue(&budget, 0), "memory-budget", "join memory budget, e.g. 512MiB or 2GB; past it the join spills to disk (default: a quarter of RAM)")
	return cmd
}

// progressBar returns a bar with a known total on a terminal, else nil.
func (a *app) progressBar(total int64, label string) *progressbar.ProgressBar {
	if a.progress(label) == nil {
		return nil
	}
	return progressbar.NewOptions64(total, progressbar.OptionSetWriter(a.stderr), progressbar.OptionSetDescription(label),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(100*time.Millisecond))
}

func (a *app) datasetListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list [NAME]",
		Short: "List dataset versions",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			list, err := reg.ListDatasets(cmd.Context(), cfg.Project, name)
			if err != nil {
				return fmt.Errorf("list datasets: %w", err)
			}
			if a.jsonOutput() {
				out := make([]map[string]any, len(list))
				for i, d := range list {
					out[i] = datasetJSON(d, false)
				}
				return a.printJSON(out)
			}
			if len(list) == 0 {
				fmt.Fprintf(a.stdout, "No datasets in project %q. Create one with quiver dataset create.\n", cfg.Project)
				return nil
			}
			tw := a.table()
			fmt.Fprintln(tw, "NAME\tVERSION\tROWS\tCONTENT ID\tCREATED\tBY")
			for _, d := range list {
				fmt.Fprintf(tw, "%s\tv%d\t%d\t%s\t%s\t%s\n", d.Name, d.Version, d.Rows, shortID(d.ContentID), d.CreatedAt.UTC().Format(time.DateTime), d.CreatedBy)
			}
			return tw.Flush()
		},
	}
}

func shortID(id string) string {
	if len(id) > 19 {
		return id[:19]
	}
	return id
}

func datasetJSON(d registry.Dataset, withManifest bool) map[string]any {
	out := map[string]any{"name": d.Name, "version": d.Version, "content_id": d.ContentID, "rows": d.Rows,
		"location": d.Location, "created_at": d.CreatedAt.UTC(), "created_by": d.CreatedBy}
	var m training.Manifest
	if err := json.Unmarshal(d.Manifest, &m); err == nil {
		out["lineage"] = toLineageJSON(m.Lineage)
		if withManifest {
			out["schema"] = m.Schema
			out["files"] = m.Files
		}
	}
	return out
}

func (a *app) datasetShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME[@vN]",
		Short: "Show a dataset version: schema, rows, files and lineage",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ds, dir, err := getDataset(cmd, cfg, reg, args[0])
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(datasetJSON(ds, true))
			}
			var m training.Manifest
			if err := json.Unmarshal(ds.Manifest, &m); err != nil {
				return fmt.Errorf("dataset %s@v%d: unreadable manifest: %w", ds.Name, ds.Version, err)
			}
			tw := a.table()
			fmt.Fprintf(tw, "Dataset:\t%s@v%d\n", ds.Name, ds.Version)
			fmt.Fprintf(tw, "Content id:\t%s\n", ds.ContentID)
			fmt.Fprintf(tw, "Rows:\t%d in %d file(s)\n", ds.Rows, len(m.Files))
			fmt.Fprintf(tw, "Location:\t%s\n", dir)
			fmt.Fprintf(tw, "Created:\t%s by %s\n", ds.CreatedAt.UTC().Format(time.RFC3339), ds.CreatedBy)
			tw.Flush()
			fmt.Fprintln(a.stdout, "\nSchema:")
			tw = a.table()
			for _, c := range m.Schema {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Type, c.Role, c.Feature)
			}
			tw.Flush()
			l := m.Lineage
			fmt.Fprintln(a.stdout, "\nLineage:")
			tw = a.table()
			fmt.Fprintf(tw, "  feature service\t%s v%d\t%s\n", l.FeatureService.Name, l.FeatureService.Version, shortID(l.FeatureService.Hash))
			for _, v := range l.FeatureViews {
				fmt.Fprintf(tw, "  feature view\t%s v%d\toffline snapshot %d\n", v.Name, v.Version, v.OfflineSnapshotID)
			}
			fmt.Fprintf(tw, "  entities\t%s %s\t%d rows, sha256 %s\n", l.Entities.Kind, l.Entities.Path+l.Entities.SQL, l.Entities.Rows, shortID(l.Entities.SHA256))
			fmt.Fprintf(tw, "  engine\t%s\tcreated cutoff %v, quiver %s\n", l.Engine, l.CreatedCutoff, l.QuiverVersion)
			return tw.Flush()
		},
	}
}

func (a *app) datasetVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify NAME[@vN]",
		Short: "Re-hash every file of a dataset version; exit 4 naming any file that changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ds, dir, err := getDataset(cmd, cfg, reg, args[0])
			if err != nil {
				return err
			}
			bad, err := training.Verify(dir, ds.ContentID)
			if a.jsonOutput() {
				type mismatch struct {
					File   string `json:"file"`
					Reason string `json:"reason"`
				}
				ms := make([]mismatch, len(bad))
				for i, b := range bad {
					ms[i] = mismatch{b.Path, b.Reason}
				}
				if perr := a.printJSON(map[string]any{"name": ds.Name, "version": ds.Version, "ok": err == nil, "mismatches": ms}); perr != nil {
					return perr
				}
				if err != nil {
					return a.reported(err)
				}
				return nil
			}
			if err != nil && len(bad) == 0 {
				return err
			}
			for _, b := range bad {
				fmt.Fprintf(a.stderr, "MISMATCH %s: %s\n", filepath.Join(dir, b.Path), b.Reason)
			}
			if err != nil {
				return fmt.Errorf("dataset %s@v%d is corrupt: %w", ds.Name, ds.Version, err)
			}
			fmt.Fprintf(a.stdout, "%s@v%d is intact: every file matches its manifest (content id %s).\n", ds.Name, ds.Version, ds.ContentID)
			return nil
		},
	}
}

func (a *app) datasetExportCommand() *cobra.Command {
	var to, format string
	var force bool
	cmd := &cobra.Command{
		Use:   "export NAME[@vN] --to DIR [--format parquet|csv] [--force]",
		Short: "Copy a dataset version out of the warehouse, as Parquet (verified) or CSV",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usage("dataset export needs --to DIR")
			}
			if format != training.FormatParquet && format != training.FormatCSV {
				return usage("--format %q: valid formats: parquet, csv", format)
			}
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ds, dir, err := getDataset(cmd, cfg, reg, args[0])
			if err != nil {
				return err
			}
			m, _, err := training.ReadManifest(dir)
			if err != nil {
				return err
			}
			files, err := training.ExportTo(cmd.Context(), dir, m, to, training.ExportOptions{Format: format, Force: force})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"name": ds.Name, "version": ds.Version, "files": files})
			}
			fmt.Fprintf(a.stdout, "Exported %s@v%d (%d rows) to %s:\n", ds.Name, ds.Version, ds.Rows, to)
			for _, f := range files {
				fmt.Fprintf(a.stdout, "  %s\n", f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "destination directory")
	cmd.Flags().StringVar(&format, "format", training.FormatParquet, "parquet or csv")
	cmd.Flags().BoolVar(&force, "force", false, "export into a directory that already has files (same-named files are replaced)")
	return cmd
}

func (a *app) datasetDiffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff A B",
		Short: "Compare two dataset versions: schema, rows, lineage and per-column statistics",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			var ds [2]registry.Dataset
			for i, ref := range args {
				if ds[i], _, err = getDataset(cmd, cfg, reg, ref); err != nil {
					return err
				}
			}
			d, err := training.DiffDatasets(cmd.Context(), cfg.Offline.Warehouse, ds[0], ds[1])
			if err != nil {
				return err
			}
			a0, b0 := d.A, d.B
			if a.jsonOutput() {
				side := func(s training.DatasetSide) map[string]any {
					return map[string]any{"name": s.Dataset.Name, "version": s.Dataset.Version, "content_id": s.Dataset.ContentID, "rows": s.Dataset.Rows, "lineage": toLineageJSON(s.Manifest.Lineage), "stats": s.StatsByName()}
				}
				return a.printJSON(map[string]any{"a": side(a0), "b": side(b0)})
			}
			fmt.Fprintf(a.stdout, "A: %s@v%d  %d rows  %s\nB: %s@v%d  %d rows  %s\n", a0.Dataset.Name, a0.Dataset.Version, a0.Dataset.Rows, shortID(a0.Dataset.ContentID), b0.Dataset.Name, b0.Dataset.Version, b0.Dataset.Rows, shortID(b0.Dataset.ContentID))
			if d.Identical {
				fmt.Fprintln(a.stdout, "Identical: same content id.")
				return nil
			}
			fmt.Fprintln(a.stdout, "\nSchema:")
			for _, c := range d.Columns {
				if c.Op == "~" {
					fmt.Fprintf(a.stdout, "  ~ %s %s -> %s\n", c.Name, c.Type, c.NewType)
				} else {
					fmt.Fprintf(a.stdout, "  %s %s %s\n", c.Op, c.Name, c.Type)
				}
			}
			if len(d.Columns) == 0 {
				fmt.Fprintln(a.stdout, "  same columns and types")
			}
			fmt.Fprintln(a.stdout, "\nLineage:")
			la, lb := a0.Manifest.Lineage, b0.Manifest.Lineage
			if d.ServiceChanged {
				fmt.Fprintf(a.stdout, "  feature service %s v%d -> %s v%d\n", la.FeatureService.Name, la.FeatureService.Version, lb.FeatureService.Name, lb.FeatureService.Version)
			}
			for _, v := range d.Views {
				fmt.Fprintf(a.stdout, "  view %s: v%d snapshot %d -> v%d snapshot %d\n", v.New.Name, v.Old.Version, v.Old.OfflineSnapshotID, v.New.Version, v.New.OfflineSnapshotID)
			}
			if d.EntitiesChanged {
				fmt.Fprintf(a.stdout, "  entities: %s %d rows (%s) -> %s %d rows (%s)\n", la.Entities.Path+la.Entities.SQL, la.Entities.Rows, shortID(la.Entities.SHA256), lb.Entities.Path+lb.Entities.SQL, lb.Entities.Rows, shortID(lb.Entities.SHA256))
			}
			fmt.Fprintln(a.stdout, "\nColumns (A -> B):")
			tw := a.table()
			fmt.Fprintln(tw, "  COLUMN\tNULL RATE\tMEAN\tMIN\tMAX\tDISTINCT")
			bStats := b0.StatsByName()
			for _, sa := range a0.Stats {
				name := sa.Name
				sb, ok := bStats[name]
				if !ok {
					continue
				}
				fmt.Fprintf(tw, "  %s\t%.3f -> %.3f\t%s\t%s\t%s\t%d -> %d\n", name, sa.NullRate(), sb.NullRate(),
					numPair(sa.Numeric, sa.Mean, sb.Mean), numPair(sa.Numeric, sa.Min, sb.Min), numPair(sa.Numeric, sa.Max, sb.Max), sa.Distinct, sb.Distinct)
			}
			return tw.Flush()
		},
	}
}

func numPair(numeric bool, a, b float64) string {
	if !numeric {
		return "-"
	}
	f := func(v float64) string {
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return strconv.FormatFloat(v, 'g', 5, 64)
	}
	return f(a) + " -> " + f(b)
}

func (a *app) datasetRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NAME@vN",
		Short: "Remove a dataset version (refused while a registered model version was trained on it, unless --force)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, ver, err := parseDatasetRef(args[0])
			if err != nil {
				return err
			}
			if ver == 0 {
				return usage("dataset rm needs an explicit version: %s@vN", name)
			}
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx := cmd.Context()
			ds, _, err := getDataset(cmd, cfg, reg, args[0])
			if err != nil {
				return err
			}
			if !force {
				trained, err := reg.ModelVersionsTrainedOn(ctx, cfg.Project, ds.Name, ds.Version)
				if err != nil {
					return fmt.Errorf("model versions trained on %s@v%d: %w", ds.Name, ds.Version, err)
				}
				var users []string
				for _, mv := range trained {
					users = append(users, fmt.Sprintf("%s@v%d", mv.Name, mv.Version))
				}
				if len(users) > 0 {
					return errkind.Errorf(errkind.Invalid, "dataset %s@v%d trained registered model version(s) %s; removing it would break their lineage (use --force to remove it anyway)",
						ds.Name, ds.Version, strings.Join(users, ", "))
				}
			}
			if err := reg.DeleteDataset(ctx, cfg.Project, ds.Name, ds.Version); err != nil {
				return fmt.Errorf("remove dataset %s@v%d: %w", ds.Name, ds.Version, err)
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"name": ds.Name, "version": ds.Version, "removed": true})
			}
			fmt.Fprintf(a.stdout, "Removed %s@v%d from the registry; its files stay in the warehouse until `quiver gc` removes them (content another live version shares stays).\n", ds.Name, ds.Version)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove even if a registered model version was trained on it")
	return cmd
}
