package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/bytesize"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// parseTime accepts RFC 3339 ("2026-11-01T12:00:00Z"), a UTC date ("2026-11-01"), a UTC
// date-time without zone ("2026-11-01T12:00:00") and "now".
func parseTime(flag, s string) (time.Time, error) {
	if s == "now" {
		return time.Now().UTC().Truncate(time.Microsecond), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usage("--%s %q is not a time; use RFC 3339 (2026-11-01T12:00:00Z), a UTC date (2026-11-01) or now", flag, s)
}

// materializeEnv is what the materialize commands open.
type materializeEnv struct {
	cfg     *config.Config
	reg     registry.Store
	repo    *definitions.Repo
	applied *catalog.Snapshot
	views   []*definitions.FeatureView
	offline *stores.Offline
	online  online.Store
	sources *stores.SourceSet
	unlock  func() // the warehouse lock, held shared while writing
	// opts are the run options every job of the command shares.
	opts materialize.Options
	// onlineOnly: the command loads the online store from the offline tables (--online-only),
	// which every view has, push and Kafka views too; no source is read.
	onlineOnly bool
}

func (e *materializeEnv) Close() {
	if e.unlock != nil {
		e.unlock()
	}
	if e.sources != nil {
		e.sources.Close()
	}
	if e.online != nil {
		e.online.Close()
	}
	if e.offline != nil {
		e.offline.Close()
	}
	if e.reg != nil {
		e.reg.Close()
	}
}

// openMaterialize loads the applied definitions and selects the views to materialize (all
// when none are named; views of push and Kafka sources, whose rows are pushed or streamed,
// only for --online-only). Stores are opened only when open is true (not for --dry-run).
func (a *app) openMaterialize(cmd *cobra.Command, names []string, openStores bool) (*materializeEnv, error) {
	return a.openMaterializeEnv(cmd, &materializeEnv{}, names, openStores)
}

// openOnlineSync is openMaterialize for --online-only.
func (a *app) openOnlineSync(cmd *cobra.Command, names []string, openStores bool) (*materializeEnv, error) {
	return a.openMaterializeEnv(cmd, &materializeEnv{onlineOnly: true}, names, openStores)
}

func (a *app) openMaterializeEnv(cmd *cobra.Command, env *materializeEnv, names []string, openStores bool) (*materializeEnv, error) {
	ctx := cmd.Context()
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	env.cfg = cfg
	if env.reg, err = a.registry(ctx, cfg); err != nil {
		return nil, err
	}
	lease, err := a.runLease()
	if err != nil {
		env.Close()
		return nil, err
	}
	env.opts = materialize.Options{Heartbeat: registry.HeartbeatInterval(lease), Actor: a.whoAmI()}
	if openStores {
		if err := a.reapAbandoned(ctx, env.reg, cfg.Project); err != nil {
			env.Close()
			return nil, err
		}
	}
	applied, err := catalog.Load(ctx, env.reg, cfg.Project)
	if err != nil {
		env.Close()
		return nil, err
	}
	env.repo, env.applied = applied.Repo, applied
	if len(names) == 0 {
		env.views = materializedViews(env.repo)
		if env.onlineOnly {
			env.views = env.repo.FeatureViews
		}
		if len(env.views) == 0 {
			env.Close()
			return nil, errkind.Errorf(errkind.Invalid, "project %q has no feature views in the registry; run quiver apply first", cfg.Project)
		}
	}
	for _, n := range names {
		v := env.repo.FeatureView(n)
		if v == nil {
			env.Close()
			return nil, env.repo.UnknownError(definitions.KindFeatureView, n)
		}
		env.views = append(env.views, v)
	}
	if !openStores {
		return env, nil
	}
	// Hold the warehouse lock shared, so quiver gc never removes files this run has written
	// but not committed yet.
	if env.unlock, err = warehouselock.Shared(ctx, cfg.Offline.Warehouse); err != nil {
		env.Close()
		return nil, err
	}
	if env.offline, err = stores.OpenOffline(ctx, cfg, env.reg); err != nil {
		env.Close()
		return nil, err
	}
	needTrino := false
	for _, v := range env.views {
		needTrino = needTrino || env.repo.Source(v.Source).Trino != nil
	}
	if env.sources, err = stores.Sources(cfg, env.offline, needTrino); err != nil {
		env.Close()
		return nil, err
	}
	for _, v := range env.views {
		if v.Online {
			if env.online, err = stores.OpenOnline(ctx, cfg); err != nil {
				env.Close()
				return nil, err
			}
			break
		}
	}
	return env, nil
}

// job builds the materialization job of one view. For --online-only it has no source: the
// online store is loaded from the offline table.
func (e *materializeEnv) job(v *definitions.FeatureView) (materialize.Job, error) {
	entities := map[string]*definitions.Entity{}
	var ents []definitions.Entity
	for _, name := range v.Entities {
		entities[name] = e.repo.Entity(name)
		ents = append(ents, *e.repo.Entity(name))
	}
	vs, err := offline.NewViewSchema(v, entities)
	if err != nil {
		return materialize.Job{}, err
	}
	// Rows go to the view's current definition generation only.
	gen := e.applied.Generation(v.Name)
	vs.Generation = gen
	job := materialize.Job{Project: e.cfg.Project, Schema: vs, Offline: e.offline, OfflineReader: e.offline, TTL: v.TTL.Std()}
	if !e.onlineOnly {
		if job.Source, err = e.sources.Open(e.repo.Source(v.Source)); err != nil {
			return materialize.Job{}, err
		}
	}
	if v.Online && e.online != nil {
		ov, err := online.NewView(e.cfg.Project, v, ents)
		if err != nil {
			return materialize.Job{}, err
		}
		job.Online, job.OnlineView = e.online, ov.WithGeneration(gen)
	}
	return job, nil
}

type runJSON struct {
	View        string    `json:"view"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	RunID       string    `json:"run_id,omitempty"`
	RowsRead    int64     `json:"rows_read"`
	OfflineRows int64     `json:"offline_rows"`
	OnlineRows  int64     `json:"online_rows"`
	// OnlineDeleted counts entities removed from the online store by --replace-online.
	OnlineDeleted int64  `json:"online_deleted,omitempty"`
	SnapshotID    string `json:"snapshot_id,omitempty"`
	// NoCommit: nothing to load and nothing to replace, so no offline snapshot was made.
	NoCommit bool    `json:"no_commit,omitempty"`
	Seconds  float64 `json:"seconds"`
	// Time spent reading the source, writing the offline store and the online store.
	SourceSeconds  float64 `json:"source_seconds,omitempty"`
	OfflineSeconds float64 `json:"offline_seconds,omitempty"`
	OnlineSeconds  float64 `json:"online_seconds,omitempty"`
	// CollapsedConflicts counts source rows collapsed into a later row with the same join
	// keys, event_ts and created_ts but other values (only the last is kept); the example
	// names one.
	CollapsedConflicts       int64  `json:"collapsed_conflicts,omitempty"`
	CollapsedConflictExample string `json:"collapsed_conflict_example,omitempty"`
	Skipped                  string `json:"skipped,omitempty"`
	Error                    string `json:"error,omitempty"`
}

// materializeViews runs each interval in turn, printing progress and a summary. It stops at
// the first failure (the failed run is recorded in the registry with its error).
func (a *app) materializeViews(cmd *cobra.Command, env *materializeEnv, intervals []materialize.Interval, skipped []runJSON) error {
	var results []runJSON
	results = append(results, skipped...)
	var total int64
	began := time.Now()
	var failure error
	for _, iv := range intervals {
		v := env.repo.FeatureView(iv.View)
		job, err := env.job(v)
		if err != nil {
			failure = fmt.Errorf("view %q: %w", iv.View, err)
			break
		}
		bar := a.progress(fmt.Sprintf("%s [%s, %s)", iv.View, iv.Start.Format(time.DateTime), iv.End.Format(time.DateTime)))
		opts := env.opts
		opts.OnlineSince = iv.OnlineFrom
		if bar != nil {
			opts.Progress = func(n int64) { _ = bar.Set64(n) }
		}
		res, err := materialize.Run(cmd.Context(), env.reg, job, iv.Start, iv.End, opts)
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprintln(a.stderr)
		}
		r := runJSON{View: iv.View, Start: iv.Start, End: iv.End, RunID: idString(int64(res.RunID)), RowsRead: res.RowsRead,
			OfflineRows: res.OfflineRows, OnlineRows: res.OnlineRows, OnlineDeleted: res.OnlineDeleted, SnapshotID: idString(res.SnapshotID), NoCommit: res.NoCommit, Seconds: res.Duration.Seconds(),
			SourceSeconds: res.SourceTime.Seconds(), OfflineSeconds: res.OfflineTime.Seconds(), OnlineSeconds: res.OnlineTime.Seconds(),
			CollapsedConflicts: res.Conflicts, CollapsedConflictExample: res.ConflictExample}
		if res.Conflicts > 0 {
			fmt.Fprintf(a.stderr, "quiver: warning: view %q: %s collapsed into a later one with the same join keys, event_ts and created_ts but other values (only the last is kept), e.g. %s\n",
				iv.View, count(res.Conflicts, "event"), res.ConflictExample)
		}
		if err != nil {
			r.Error = err.Error()
			results = append(results, r)
			failure = err
			a.cleanupFailedWrite(cmd.Context(), env, iceberg.TableName(iv.View, max(job.Schema.Generation, 1)))
			break
		}
		total += res.RowsRead
		results = append(results, r)
	}
	if a.jsonOutput() {
		if err := a.printJSON(map[string]any{"runs": results}); err != nil {
			return err
		}
		if failure != nil {
			return a.reported(failure)
		}
		return nil
	}
	tw := a.table()
	fmt.Fprintln(tw, "VIEW\tINTERVAL\tROWS READ\tOFFLINE ROWS\tONLINE ROWS\tSNAPSHOT\tTIME\tSTATUS")
	for _, r := range results {
		status := "ok"
		switch {
		case r.Skipped != "":
			status = r.Skipped
		case r.Error != "":
			status = "FAILED"
		case r.NoCommit:
			status = "ok, no new rows, nothing committed"
		case r.RowsRead == 0:
			status = "ok, no new rows"
		case r.CollapsedConflicts > 0:
			status = fmt.Sprintf("ok, %s collapsed", count(r.CollapsedConflicts, "conflicting duplicate"))
		}
		interval, snap, took := "-", "-", "-"
		if r.Skipped == "" {
			interval = fmt.Sprintf("[%s, %s)", r.Start.Format(time.DateTime), r.End.Format(time.DateTime))
			took = fmt.Sprintf("%.2fs", r.Seconds)
		}
		if r.SnapshotID != "" {
			snap = r.SnapshotID
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", r.View, interval, r.RowsRead, r.OfflineRows, r.OnlineRows, snap, took, status)
	}
	tw.Flush()
	if failure != nil {
		return failure
	}
	secs := time.Since(began).Seconds()
	if total == 0 {
		fmt.Fprintln(a.stdout, "No new rows: the sources hold nothing in these intervals; every view is up to date.")
		if noCommit(results) {
			fmt.Fprintln(a.stdout, "Nothing was committed to the offline store.")
		}
		return nil
	}
	fmt.Fprintf(a.stdout, "Materialized %d rows in %.2fs (%.0f rows/s).\n", total, secs, float64(total)/max(secs, 1e-9))
	return nil
}

// count is "1 event", "2 events".
func count(n int64, noun string) string {
	return fmt.Sprintf("%d %s", n, plural(noun, int(min(n, 2))))
}

// noCommit reports whether no run committed an offline snapshot.
func noCommit(results []runJSON) bool {
	for _, r := range results {
		if r.Skipped == "" && !r.NoCommit {
			return false
		}
	}
	return true
}

// progress returns a progress bar on stderr when it is a terminal, else nil.
func (a *app) progress(label string) *progressbar.ProgressBar {
	f, ok := a.stderr.(*os.File)
	if !ok || a.jsonOutput() {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(label),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
	)
}

func (a *app) printDryRun(intervals []materialize.Interval, skipped []runJSON, explicit bool) error {
	if a.jsonOutput() {
		out := append([]runJSON{}, skipped...)
		for _, iv := range intervals {
			out = append(out, runJSON{View: iv.View, Start: iv.Start, End: iv.End})
		}
		return a.printJSON(map[string]any{"dry_run": true, "runs": out})
	}
	fmt.Fprintln(a.stdout, "Dry run: nothing is read or written.")
	tw := a.table()
	fmt.Fprintln(tw, "VIEW\tSTART\tEND\tNOTE")
	for _, iv := range intervals {
		note := "from the view's watermark"
		switch {
		case explicit:
			note = "as given"
		case !iv.FromWatermark && !iv.OnlineFrom.IsZero():
			note = "first run: the source's whole history; online only from " + iv.OnlineFrom.Format(time.RFC3339) + " (end minus the view's ttl)"
		case !iv.FromWatermark:
			note = "first run: the source's whole history"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", iv.View, iv.Start.Format(time.RFC3339), iv.End.Format(time.RFC3339), note)
	}
	for _, s := range skipped {
		fmt.Fprintf(tw, "%s\t-\t-\t%s\n", s.View, s.Skipped)
	}
	return tw.Flush()
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
	var startS, endS, resetView, toS string
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
  --reset-watermark V  with --to T: move view V's watermark back to T (audited).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
				return a.resetWatermark(cmd, resetView, to)
			}
			if onlineOnly {
				env, err := a.openOnlineSync(cmd, args, !dryRun)
				if err != nil {
					return err
				}
				defer env.Close()
				if dryRun {
					fmt.Fprintln(a.stdout, "Dry run: would load the online store from the offline tables of:")
					for _, v := range env.views {
						fmt.Fprintln(a.stdout, " ", v.Name)
					}
					return nil
				}
				a.applyMemoryBudget(budget)
				return a.syncOnline(cmd, env)
			}
			if startS == "" || endS == "" {
				return usage("materialize needs --start and --end (or --online-only, or --reset-watermark VIEW --to T)")
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
			env, err := a.openMaterialize(cmd, args, !dryRun)
			if err != nil {
				return err
			}
			defer env.Close()
			var intervals []materialize.Interval
			for _, v := range env.views {
				intervals = append(intervals, materialize.Interval{View: v.Name, Start: start, End: end})
			}
			if dryRun {
				return a.printDryRun(intervals, nil, true)
			}
			a.applyMemoryBudget(budget)
			env.opts.ReplaceOnline = replaceOnline
			return a.materializeViews(cmd, env, intervals, nil)
		},
	}
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
	var endS string
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if endS == "" {
				endS = "now"
			}
			end, err := parseTime("end", endS)
			if err != nil {
				return err
			}
			env, err := a.openMaterialize(cmd, args, !dryRun)
			if err != nil {
				return err
			}
			defer env.Close()
			var intervals []materialize.Interval
			var skipped []runJSON
			for _, v := range env.views {
				iv, err := materialize.IncrementalInterval(cmd.Context(), env.reg, env.cfg.Project, v.Name, v.TTL.Std(), end)
				if errors.Is(err, materialize.ErrNothingToDo) {
					skipped = append(skipped, runJSON{View: v.Name, Skipped: "up to date (watermark " + iv.Start.Format(time.RFC3339) + ")"})
					continue
				}
				if err != nil {
					return err
				}
				intervals = append(intervals, iv)
			}
			if dryRun {
				return a.printDryRun(intervals, skipped, false)
			}
			a.applyMemoryBudget(budget)
			if len(intervals) == 0 {
				if a.jsonOutput() {
					return a.printJSON(map[string]any{"runs": skipped})
				}
				names := make([]string, len(skipped))
				for i, s := range skipped {
					names[i] = s.View
				}
				fmt.Fprintf(a.stdout, "Nothing to materialize: %s already up to date with %s.\n", strings.Join(names, ", "), end.Format(time.RFC3339))
				return nil
			}
			return a.materializeViews(cmd, env, intervals, skipped)
		},
	}
	cmd.Flags().StringVar(&endS, "end", "", "end of the interval, exclusive (default now)")
	cmd.Flags().Var(bytesize.NewValue(&budget, defaultMaterializeBudget), "memory-budget", "soft memory limit, e.g. 512MiB or 2GB: the Go heap is kept near it (GOMEMLIMIT overrides)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the plan without reading or writing anything")
	return cmd
}
