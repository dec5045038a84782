package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/internal/bytesize"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/project"
)

var parseTime = project.ParseTime

// runIntervals runs the intervals and reports them.
func (a *app) runIntervals(ctx context.Context, m *project.Materialization, intervals []materialize.Interval, ro project.RunOptions) error {
	rep, err := m.RunAll(ctx, intervals, ro, func(iv materialize.Interval) (func(int64), func()) {
		set, done := a.bar(fmt.Sprintf("%s [%s, %s)", iv.View, iv.Start.Format(time.DateTime), iv.End.Format(time.DateTime)))
		return rows(set), done
	})
	return a.report(rep, rep.WriteText, err)
}

// report renders rep (as JSON, or with text) and returns err, the use case's failure after
// it ran: with -o json the report says what failed, so only the error object follows.
func (a *app) report(rep any, text func(io.Writer), err error) error {
	if perr := a.render(rep, func() { text(a.stdout) }); perr != nil {
		return perr
	}
	if err != nil && a.jsonOutput() {
		return a.reported(err)
	}
	return err
}

// bar is a progress bar of rows on stderr when it is a terminal: set reports the rows done,
// and the total when it is known (> 0); done ends the bar. set is nil without a terminal.
func (a *app) bar(label string) (set func(done, total int64), done func()) {
	f, ok := a.stderr.(*os.File)
	if fi, err := f.Stat(); !ok || a.jsonOutput() || err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil, func() {}
	}
	b := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(label),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSpinnerType(14))
	return func(n, total int64) {
			if total > 0 {
				b.ChangeMax64(total)
			}
			_ = b.Set64(n)
		}, func() {
			_ = b.Finish()
			fmt.Fprintln(a.stderr)
		}
}

// rows is set reporting rows alone (nil for nil).
func rows(set func(done, total int64)) func(int64) {
	if set == nil {
		return nil
	}
	return func(n int64) { set(n, -1) }
}

// applyMemoryBudget sets the Go runtime's soft memory limit for a long-running command, so the
// garbage collector keeps the heap near the budget instead of letting it grow to twice the
// live data. An explicit GOMEMLIMIT in the environment wins.
func (a *app) applyMemoryBudget(budget int64) {
	if budget > 0 && a.getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(budget)
	}
}

// defaultMaterializeBudget is the default --memory-budget of the materialize commands.
const defaultMaterializeBudget = 1 << 30

func (a *app) materializeCommand() *cobra.Command {
	var startS, endS, resetView, toS, engine, chunkS, shardS, backend, image, out string
	var parallel, onlineWorkers, shards int
	var dryRun, onlineOnly, replaceOnline bool
	var budget int64
	cmd := &cobra.Command{
		Use:   "materialize (--start T --end T [--replace-online] | --online-only | --reset-watermark VIEW --to T) [VIEW...]",
		Short: "Load [start, end) of feature views from their sources into the offline and online stores",
		Long: `Materialize reads [start, end) of each named feature view (all applied views when none are
named) from its source and writes it to the offline store (one atomic Iceberg commit that
replaces the interval's rows) and, for views with online: true, the latest row per entity to
the online store. Re-running an interval is safe: it leaves the same rows and values. The
view's watermark moves to end when the interval continues it (or the view has none yet).

Recovery (see docs/operations.md):
  --online-only        load the latest row per entity of each view — push and Kafka views
                       too — from its offline table into the online store (a lost or new
                       Redis); the offline table and the watermark are untouched; no
                       --start/--end.
  --replace-online     with --start/--end: make the online store exactly what the offline
                       table says for the interval's entities (bad rows replaced, entities no
                       longer in the table removed), instead of only moving forward.
  --reset-watermark V  with --to T: move view V's watermark back to T (audited).

Sharded online load of an interval committed offline before (docs/scale-out.md): --shard i/N
loads part i of N; --backend kubernetes --shards N --image IMG prints (--out FILE writes) the
Indexed Job whose pod i runs --shard i/N.`,
		Args: cobra.ArbitraryArgs,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		switch {
		case onlineOnly && (startS != "" || endS != "" || replaceOnline || resetView != "" || toS != ""):
			return usage("--online-only takes no --start, --end, --replace-online, --reset-watermark or --to")
		case resetView != "" && (startS != "" || endS != "" || replaceOnline || len(args) > 0 || dryRun):
			return usage("--reset-watermark VIEW takes only --to T")
		case resetView != "" && toS == "":
			return usage("--reset-watermark VIEW needs --to T, the time to move the watermark back to")
		case resetView == "" && toS != "":
			return usage("--to goes with --reset-watermark VIEW")
		}
		if resetView != "" {
			to, err := parseTime("to", toS)
			if err != nil {
				return err
			}
			from, now, err := p.ResetWatermark(ctx, resetView, to)
			if err != nil {
				return err
			}
			return a.render(watermarkResetJSON{View: resetView, From: from.Time, To: now.Time}, func() {
				a.printf("Watermark of %s moved back from %s to %s (recorded in the audit trail).\n", resetView,
					from.Time.Format(time.RFC3339Nano), now.Time.Format(time.RFC3339Nano))
			})
		}
		if onlineOnly {
			m, err := p.Materialize(ctx, project.MaterializeOptions{Views: args, OnlineOnly: true, DryRun: dryRun})
			if err != nil {
				return err
			}
			defer m.Close()
			if dryRun {
				return m.WriteOnlineOnlyPlan(a.stdout)
			}
			a.applyMemoryBudget(budget)
			rep, err := m.SyncAll(ctx, func(v *catalog.View) (func(int64), func()) {
				set, done := a.bar(v.Name + " (online sync from the offline table)")
				return rows(set), done
			})
			return a.report(rep, rep.WriteText, err)
		}
		if startS == "" || endS == "" {
			return usage("materialize needs --start and --end (or --online-only, or --reset-watermark VIEW --to T)")
		}
		ro := project.RunOptions{ReplaceOnline: replaceOnline, OnlineWorkers: onlineWorkers}
		chunk, err := project.ParseChunk(chunkS, parallel, cmd.Flags().Changed("parallel"))
		if err == nil {
			err = ro.Validate()
		}
		if err != nil {
			return err
		}
		start, err := parseTime("start", startS)
		if err != nil {
			return err
		}
		end, err := parseTime("end", endS)
		if err != nil {
			return err
		}
		if !start.Before(end) {
			return usage("--start %s is not before --end %s", start.Format(time.RFC3339), end.Format(time.RFC3339))
		}
		if so := (project.ShardOptions{Views: args, Start: start, End: end, Shard: shardS, Backend: backend, Shards: shards, Image: image, OnlineWorkers: onlineWorkers,
			DryRun: dryRun, ReplaceOnline: replaceOnline, Engine: engine, Chunk: chunkS}); so.Backend != "" {
			return p.WriteShardJob(so, out, a.stdout)
		} else if so.Sharded() {
			rep, err := p.LoadOnlineShard(ctx, so)
			if rep == nil {
				return err
			}
			return a.report(rep, rep.WriteText, err)
		}
		m, err := p.Materialize(ctx, project.MaterializeOptions{Views: args, DryRun: dryRun, Engine: engine})
		if err != nil {
			return err
		}
		defer m.Close()
		var intervals []materialize.Interval
		for _, v := range m.Views {
			intervals = append(intervals, materialize.Interval{View: v.Name, Start: start, End: end})
		}
		if dryRun {
			rep := m.Plan(intervals, true)
			return a.render(rep, func() { rep.WriteText(a.stdout) })
		}
		a.applyMemoryBudget(budget)
		if chunkS == "" {
			return a.runIntervals(ctx, m, intervals, ro)
		}
		rep, err := m.Backfill(ctx, intervals, project.BackfillOptions{Chunk: chunk, Parallel: parallel, RunOptions: ro}, nil)
		return a.report(rep, rep.WriteText, err)
	})
	cmd.Flags().StringVar(&engine, "engine", project.EngineLocal, "what computes the rows: local (this process) or trino (Trino stages each interval in the shared Iceberg catalog; docs/scale-out.md)")
	cmd.Flags().StringVar(&chunkS, "chunk", "", "backfill in resumable chunks of this length (e.g. 1d): a re-run of the same backfill resumes at the chunks not done")
	cmd.Flags().IntVar(&parallel, "parallel", 1, "with --chunk: how many chunks run at once")
	cmd.Flags().StringVar(&shardS, "shard", "", "load only part i/N of the interval's online rows (by entity-key hash) from the offline table; writes nothing offline")
	cmd.Flags().StringVar(&backend, "backend", "", "kubernetes: print the Indexed Job whose pods load the online store in --shards parts, instead of running")
	cmd.Flags().IntVar(&shards, "shards", 0, "with --backend kubernetes: the Job's pod count (completions and parallelism)")
	cmd.Flags().StringVar(&image, "image", "", "with --backend kubernetes: the pods' image (quiver, the feature repo as working directory)")
	cmd.Flags().StringVar(&out, "out", "", "with --backend kubernetes: write the manifest to this file instead of stdout")
	cmd.Flags().IntVar(&onlineWorkers, "online-workers", 0, "load the online store after the offline commit with N workers over disjoint entity-key ranges (0: while writing offline)")
	cmd.Flags().BoolVar(&onlineOnly, "online-only", false, "load the online store from the offline tables; nothing else is written")
	cmd.Flags().BoolVar(&replaceOnline, "replace-online", false, "make the online store match the offline table for the interval's entities (corrections)")
	cmd.Flags().StringVar(&resetView, "reset-watermark", "", "move this view's watermark back to --to (audited)")
	cmd.Flags().StringVar(&toS, "to", "", "with --reset-watermark: the time to move the watermark back to")
	cmd.Flags().StringVar(&startS, "start", "", "start of the interval, inclusive (RFC 3339, a UTC date, or now)")
	cmd.Flags().Var(bytesize.NewValue(&budget, defaultMaterializeBudget), "memory-budget", "soft memory limit, e.g. 512MiB or 2GB: the Go heap is kept near it (GOMEMLIMIT overrides)")
	cmd.Flags().StringVar(&endS, "end", "", "end of the interval, exclusive")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan without reading or writing anything")
	return cmd
}

func (a *app) materializeIncrementalCommand() *cobra.Command {
	var endS, engine string
	var dryRun bool
	var budget int64
	cmd := &cobra.Command{
		Use:   "materialize-incremental [--end T] [VIEW...]",
		Short: "Materialize each view from its watermark up to --end (default now)",
		Long: `For each named view (all applied views when none are named), materialize from the view's
watermark to --end (default: now). A view never materialized gets its source's whole
history (from the Unix epoch) in the offline store, so training datasets can join it, and
only what is still live (events from end minus its TTL) in the online store.
A view already up to date is skipped and reported as such.`,
		Args: cobra.ArbitraryArgs,
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		if endS == "" {
			endS = "now"
		}
		end, err := parseTime("end", endS)
		if err != nil {
			return err
		}
		m, err := p.Materialize(ctx, project.MaterializeOptions{Views: args, DryRun: dryRun, Engine: engine})
		if err != nil {
			return err
		}
		defer m.Close()
		intervals, err := m.Incremental(ctx, end)
		if err != nil {
			return err
		}
		if dryRun {
			rep := m.Plan(intervals, false)
			return a.render(rep, func() { rep.WriteText(a.stdout) })
		}
		a.applyMemoryBudget(budget)
		var names []string
		for _, iv := range intervals {
			if !iv.UpToDate {
				return a.runIntervals(ctx, m, intervals, project.RunOptions{})
			}
			names = append(names, iv.View)
		}
		rep := m.Plan(intervals, false)
		rep.DryRun = false
		return a.render(rep, func() {
			a.printf("Nothing to materialize: %s already up to date with %s.\n", strings.Join(names, ", "), end.Format(time.RFC3339))
		})
	})
	cmd.Flags().StringVar(&endS, "end", "", "end of the interval, exclusive (default now)")
	cmd.Flags().StringVar(&engine, "engine", project.EngineLocal, "what computes the rows: local or trino (docs/scale-out.md)")
	cmd.Flags().Var(bytesize.NewValue(&budget, defaultMaterializeBudget), "memory-budget", "soft memory limit, e.g. 512MiB or 2GB: the Go heap is kept near it (GOMEMLIMIT overrides)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan without reading or writing anything")
	return cmd
}
