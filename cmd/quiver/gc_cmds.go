package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/project"
)

func (a *app) gcCommand() *cobra.Command {
	var opts project.GCOptions
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--older-than D] [--min-orphan-age D]",
		Short: "Reclaim space: expire old offline snapshots and remove files nothing needs",
		Long: `Expire offline (Iceberg) snapshots committed more than --older-than ago (default 168h) that
are not current and that no registered dataset was built from, and remove the files no
remaining snapshot needs (data, manifests, old metadata), files of writes that never committed
(killed or failed runs) once older than --min-orphan-age (quiver.yaml offline.gc.min_orphan_age,
default 72h: another engine's write in flight looks the same until it commits), dataset
staging folders and spill files left by killed commands, and the project's own work and
spill folders in $TMPDIR (never another project's). --dry-run writes and removes nothing (no
run is reaped either) and lists what gc would remove.
Prints each thing removed and the bytes reclaimed (-o json for scripts). It waits for running
writers (materialize, dataset create) to finish and holds them off while it runs. After it,
dataset create --at a time before now minus --older-than fails, naming the retention.`,
		Args: cobra.NoArgs,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, _ []string) error {
		opts.MinOrphanAgeSet = cmd.Flags().Changed("min-orphan-age")
		opts.Waiting = func() {
			fmt.Fprintln(a.stderr, "quiver: waiting for running writers (materialize, dataset create) to finish...")
		}
		res, err := p.GC(ctx, opts)
		if res == nil {
			return err
		}
		return a.report(res, res.WriteText, err)
	})
	cmd.Flags().BoolVar(&opts.DryRun, "dry-run", false, "print what would be removed, remove nothing")
	cmd.Flags().DurationVar(&opts.OlderThan, "older-than", project.DefaultRetention, "retention: offline snapshots younger than this stay")
	cmd.Flags().DurationVar(&opts.MinOrphanAge, "min-orphan-age", config.DefaultMinOrphanAge, "table files no snapshot references younger than this stay (default: quiver.yaml offline.gc.min_orphan_age)")
	return cmd
}
