package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/housekeeping"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// defaultRetention is gc's default --older-than: offline snapshots stay readable (dataset
// create --at) for a week.
const defaultRetention = 7 * 24 * time.Hour

// gcCollectors is what `quiver gc` collects, in order, under the warehouse's exclusive lock.
// Offline snapshots go first, then leftovers of killed commands (the project's own), then
// dataset files that no live registered version references.
func gcCollectors(off *stores.Offline, reg registry.Store, project, warehouse, tempDir string) []housekeeping.Collector {
	return []housekeeping.Collector{
		housekeeping.OfflineSnapshots(off.Store, reg, project),
		housekeeping.Leftovers(warehouse, tempDir, iceberg.ProjectNamespace(project)),
		workFolders(tempDir, project),
		datasetFiles(reg, warehouse, project),
	}
}

// workFolders collects the project's training work folders in tempDir whose quiver process
// is dead (training.StaleWorkDirs); other projects' folders are never touched.
func workFolders(tempDir, project string) housekeeping.Collector {
	return housekeeping.Func{N: "work folders", F: func(_ context.Context, opts housekeeping.Options) (housekeeping.Report, error) {
		var rep housekeeping.Report
		for _, d := range training.StaleWorkDirs(tempDir, project) {
			rep.Items = append(rep.Items, housekeeping.Item{Kind: "work", Path: d, Bytes: housekeeping.TreeSize(d)})
			if opts.DryRun {
				continue
			}
			if err := os.RemoveAll(d); err != nil {
				return rep, err
			}
		}
		return rep, nil
	}}
}

// datasetFiles collects the dataset content no live registered version references, and the
// staging folders of dead builds (training.CollectDatasetGarbage). gc holds the warehouse lock
// exclusively, so no build is in flight: the grace period only needs to cover clock skew, and
// follows --older-than up to training.DefaultGCGrace.
func datasetFiles(reg registry.Store, warehouse, project string) housekeeping.Collector {
	return housekeeping.Func{N: "dataset files", F: func(ctx context.Context, opts housekeeping.Options) (housekeeping.Report, error) {
		grace := min(max(opts.OlderThan, time.Nanosecond), training.DefaultGCGrace)
		res, err := training.CollectDatasetGarbage(ctx, reg, warehouse, project, training.GCOptions{DryRun: opts.DryRun, Grace: grace})
		var rep housekeeping.Report
		for _, it := range res.Items {
			rep.Items = append(rep.Items, housekeeping.Item{Kind: it.Reason, Path: it.Path, Bytes: it.Bytes})
		}
		return rep, err
	}}
}

func (a *app) gcCommand() *cobra.Command {
	var dryRun bool
	var olderThan time.Duration
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--older-than D]",
		Short: "Reclaim space: expire old offline snapshots and remove files nothing needs",
		Long: `Expire offline (Iceberg) snapshots committed more than --older-than ago (default 168h) that
are not current and that no registered dataset was built from, and remove the files no
remaining snapshot needs (data, manifests, old metadata), files of writes that never committed
(killed or failed runs), dataset staging folders and spill files left by killed commands, and
the project's own work and spill folders in $TMPDIR (never another project's). --dry-run
writes and removes nothing (no run is reaped either) and lists what gc would remove.
Prints each thing removed and the bytes reclaimed (-o json for scripts). It waits for running
writers (materialize, dataset create) to finish and holds them off while it runs. After it,
dataset create --at a time before now minus --older-than fails, naming the retention.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan < 0 {
				return usage("--older-than %s is negative", olderThan)
			}
			ctx := cmd.Context()
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			// A dry run writes and removes nothing: no run is reaped, no table adopted, no
			// namespace claimed.
			open := stores.InspectOffline
			if !dryRun {
				if err := a.reapAbandoned(ctx, reg, cfg.Project); err != nil {
					return err
				}
				open = stores.OpenOffline
			}
			off, err := open(ctx, cfg, reg)
			if err != nil {
				return err
			}
			defer off.Close()
			release, err := warehouselock.Exclusive(ctx, cfg.Offline.Warehouse, func() {
				fmt.Fprintln(a.stderr, "quiver: waiting for running writers (materialize, dataset create) to finish...")
			})
			if err != nil {
				return err
			}
			defer release()
			opts := housekeeping.Options{OlderThan: olderThan, DryRun: dryRun, Now: time.Now()}
			reports, runErr := housekeeping.Run(ctx, gcCollectors(off, reg, cfg.Project, cfg.Offline.Warehouse, a.getenv("TMPDIR")), opts)
			var total int64
			var items int
			for _, r := range reports {
				total += r.Bytes()
				items += len(r.Items)
			}
			if !dryRun && items > 0 {
				detail, _ := json.Marshal(map[string]any{"older_than": olderThan.String(), "items": items, "bytes": total})
				if _, err := reg.RecordAudit(ctx, registry.AuditEvent{Project: cfg.Project, Actor: a.whoAmI(), Action: registry.AuditGC, Target: "warehouse", Detail: detail}); err != nil && runErr == nil {
					runErr = err
				}
			}
			if a.jsonOutput() {
				type itemJSON struct {
					Kind  string `json:"kind"`
					Path  string `json:"path"`
					Bytes int64  `json:"bytes"`
				}
				type reportJSON struct {
					Collector string     `json:"collector"`
					Removed   []itemJSON `json:"removed"`
					Bytes     int64      `json:"bytes"`
					Notes     []string   `json:"notes,omitempty"`
				}
				out := []reportJSON{}
				for _, r := range reports {
					rj := reportJSON{Collector: r.Collector, Removed: []itemJSON{}, Bytes: r.Bytes(), Notes: r.Notes}
					for _, it := range r.Items {
						rj.Removed = append(rj.Removed, itemJSON{Kind: it.Kind, Path: it.Path, Bytes: it.Bytes})
					}
					out = append(out, rj)
				}
				if err := a.printJSON(map[string]any{"dry_run": dryRun, "older_than": olderThan.String(), "collectors": out, "bytes_reclaimed": total}); err != nil {
					return err
				}
				if runErr != nil {
					return a.reported(errkind.Mark(errkind.Failed, runErr))
				}
				return nil
			}
			verb := "Removed"
			if dryRun {
				verb = "Would remove"
				fmt.Fprintln(a.stdout, "Dry run: nothing is removed.")
			}
			tw := a.table()
			fmt.Fprintln(tw, "COLLECTOR\tKIND\tPATH\tBYTES")
			for _, r := range reports {
				for _, it := range r.Items {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Collector, it.Kind, it.Path, strconv.FormatInt(it.Bytes, 10))
				}
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "%s %d items, %d bytes (retention %s).\n", verb, items, total, olderThan)
			if runErr != nil {
				return errkind.Mark(errkind.Failed, runErr)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed, remove nothing")
	cmd.Flags().DurationVar(&olderThan, "older-than", defaultRetention, "retention: offline snapshots younger than this stay")
	return cmd
}
