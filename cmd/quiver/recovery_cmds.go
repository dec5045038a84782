package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// runLease is how long a running job may go without a heartbeat before it is reaped:
// $QUIVER_RUN_LEASE (a Go duration such as 2m or 500ms), default registry.DefaultLease.
func (a *app) runLease() (time.Duration, error) {
	s := a.getenv("QUIVER_RUN_LEASE")
	if s == "" {
		return registry.DefaultLease, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usage("QUIVER_RUN_LEASE=%q is not a positive duration (e.g. 2m, 30s)", s)
	}
	return d, nil
}

// reapAbandoned marks the project's runs whose process stopped beating as FAILED
// ("abandoned"), kills what their jobs left running on this host and removes the project's
// work folders of dead runs, and says so on stderr. Every command that lists or starts runs
// calls it (gc --dry-run does not: it writes nothing).
func (a *app) reapAbandoned(ctx context.Context, reg interface {
	registry.RecoveryStore
	training.RunTagReader
}, project string) error {
	lease, err := a.runLease()
	if err != nil {
		return err
	}
	reaped, err := reg.ReapAbandoned(ctx, project, lease)
	if err != nil {
		return err
	}
	for _, id := range reaped.Materialization {
		fmt.Fprintf(a.stderr, "quiver: materialization run %d had no heartbeat for %s: marked FAILED (abandoned)\n", id, lease)
	}
	for _, id := range reaped.Training {
		fmt.Fprintf(a.stderr, "quiver: training run %s had no heartbeat for %s: marked FAILED (abandoned)\n", id, lease)
	}
	// A job whose quiver and supervisor both died may have left processes behind: kill the
	// run's process group and every process of the run on this host.
	if n := training.KillRunProcesses(ctx, reg, reaped.Training); n > 0 {
		fmt.Fprintf(a.stderr, "quiver: killed %d leftover process(es) of abandoned training runs\n", n)
	}
	for _, d := range training.RemoveStaleWorkDirs(a.getenv("TMPDIR"), project) {
		fmt.Fprintf(a.stderr, "quiver: removed %s, left by a killed run\n", d)
	}
	return nil
}

// syncOnline is `quiver materialize --online-only [VIEW...]`.
func (a *app) syncOnline(cmd *cobra.Command, env *materializeEnv) error {
	type syncJSON struct {
		View       string  `json:"view"`
		SnapshotID string  `json:"snapshot_id"`
		RowsRead   int64   `json:"rows_read"`
		OnlineRows int64   `json:"online_rows"`
		Seconds    float64 `json:"seconds"`
		Skipped    string  `json:"skipped,omitempty"`
		Error      string  `json:"error,omitempty"`
	}
	var results []syncJSON
	var failure error
	for _, v := range env.views {
		if !v.Online {
			results = append(results, syncJSON{View: v.Name, Skipped: "not online (online: false)"})
			continue
		}
		job, err := env.job(v)
		if err != nil {
			failure = fmt.Errorf("view %q: %w", v.Name, err)
			break
		}
		bar := a.progress(v.Name + " (online sync from the offline table)")
		opts := materialize.Options{Actor: a.whoAmI()}
		if bar != nil {
			opts.Progress = func(n int64) { _ = bar.Set64(n) }
		}
		res, err := materialize.SyncOnline(cmd.Context(), env.reg, job, opts)
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprintln(a.stderr)
		}
		r := syncJSON{View: v.Name, SnapshotID: fmt.Sprint(res.SnapshotID), RowsRead: res.RowsRead, OnlineRows: res.OnlineRows, Seconds: res.Duration.Seconds()}
		if err != nil {
			r.Error = err.Error()
			results = append(results, r)
			failure = err
			break
		}
		results = append(results, r)
	}
	if a.jsonOutput() {
		if err := a.printJSON(map[string]any{"online_only": true, "views": results}); err != nil {
			return err
		}
		if failure != nil {
			return a.reported(failure)
		}
		return nil
	}
	tw := a.table()
	fmt.Fprintln(tw, "VIEW\tOFFLINE SNAPSHOT\tROWS READ\tONLINE ROWS\tTIME\tSTATUS")
	for _, r := range results {
		status := "ok"
		switch {
		case r.Skipped != "":
			status = r.Skipped
		case r.Error != "":
			status = "FAILED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.2fs\t%s\n", r.View, r.SnapshotID, r.RowsRead, r.OnlineRows, r.Seconds, status)
	}
	tw.Flush()
	if failure != nil {
		return failure
	}
	fmt.Fprintln(a.stdout, "Online store loaded from the offline tables; the offline tables and watermarks are unchanged.")
	return nil
}

// resetWatermark is `quiver materialize --reset-watermark VIEW --to T`.
func (a *app) resetWatermark(cmd *cobra.Command, view string, to time.Time) error {
	env, err := a.openMaterialize(cmd, []string{view}, false)
	if err != nil {
		return err
	}
	defer env.Close()
	from, now, err := materialize.ResetWatermark(cmd.Context(), env.reg, env.cfg.Project, view, to, a.whoAmI())
	if err != nil {
		return err
	}
	if a.jsonOutput() {
		return a.printJSON(map[string]any{"view": view, "from": from.Time, "to": now.Time})
	}
	fmt.Fprintf(a.stdout, "Watermark of %s moved back from %s to %s (recorded in the audit trail).\n", view,
		from.Time.Format(time.RFC3339Nano), now.Time.Format(time.RFC3339Nano))
	return nil
}

func (a *app) onlineCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "online",
		Short: "Maintain the online store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usage("online needs a subcommand: delete")
		},
	}
	cmd.AddCommand(a.onlineDeleteCommand())
	return cmd
}

func (a *app) onlineDeleteCommand() *cobra.Command {
	var entities []string
	cmd := &cobra.Command{
		Use:   "delete VIEW --entity KEY=VALUE ...",
		Short: "Remove entities of a feature view from the online store",
		Long: `Remove the online rows of the given entities of one feature view (other views of the same
entities are untouched), and record it in the registry's audit trail. A join key given several
times names several entities; a view keyed by several join keys needs each once per entity.
The offline table is not changed: a later --online-only sync or --replace-online run loads the
entities again if the offline table still holds rows for them.`,
		Example: `  quiver online delete user_stats --entity user_id=42 --entity user_id=43`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(entities) == 0 {
				return usage("online delete: give at least one --entity KEY=VALUE")
			}
			ctx := cmd.Context()
			cfg, err := a.config()
			if err != nil {
				return err
			}
			reg, err := a.registry(ctx, cfg)
			if err != nil {
				return err
			}
			defer reg.Close()
			applied, err := catalog.Load(ctx, reg, cfg.Project)
			if err != nil {
				return err
			}
			fv := applied.Repo.FeatureView(args[0])
			if fv == nil {
				return applied.Repo.UnknownError(definitions.KindFeatureView, args[0])
			}
			var ents []definitions.Entity
			for _, n := range fv.Entities {
				ents = append(ents, *applied.Repo.Entity(n))
			}
			v, err := online.NewView(cfg.Project, fv, ents)
			if err != nil {
				return err
			}
			keys, desc, err := materialize.ParseEntityKeys(v, entities)
			if err != nil {
				return err
			}
			store, err := stores.OpenOnline(ctx, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			n, err := materialize.DeleteOnline(ctx, reg, cfg.Project, store, v, keys, desc, a.whoAmI())
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"view": v.Name, "entities": desc, "deleted": n})
			}
			fmt.Fprintf(a.stdout, "Removed %d of %d entities from the online store of %s (recorded in the audit trail).\n", n, len(keys), v.Name)
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&entities, "entity", nil, "a join-key value KEY=VALUE (repeatable)")
	return cmd
}

// listMaterializationRuns is `quiver runs list --kind materialization`.
func (a *app) listMaterializationRuns(cmd *cobra.Command, reg registry.Store, project string, limit int) error {
	runs, err := reg.ListRuns(cmd.Context(), registry.RunFilter{Project: project, Limit: limit})
	if err != nil {
		return fmt.Errorf("list materialization runs: %w", err)
	}
	if a.jsonOutput() {
		type runJSON struct {
			RunID       string    `json:"run_id"`
			View        string    `json:"view"`
			Start       time.Time `json:"start"`
			End         time.Time `json:"end"`
			Status      string    `json:"status"`
			RowsRead    int64     `json:"rows_read"`
			RowsWritten int64     `json:"rows_written"`
			StartedAt   time.Time `json:"started_at"`
			FinishedAt  time.Time `json:"finished_at,omitzero"`
			Error       string    `json:"error,omitempty"`
		}
		out := make([]runJSON, 0, len(runs))
		for _, r := range runs {
			out = append(out, runJSON{RunID: fmt.Sprint(r.ID), View: r.View, Start: r.Start, End: r.End, Status: string(r.Status),
				RowsRead: r.RowsRead, RowsWritten: r.RowsWritten, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error})
		}
		return a.printJSON(map[string]any{"runs": out})
	}
	if len(runs) == 0 {
		fmt.Fprintln(a.stdout, "No materialization runs. Start one with quiver materialize.")
		return nil
	}
	tw := a.table()
	fmt.Fprintln(tw, "RUN\tVIEW\tINTERVAL\tSTATUS\tROWS READ\tSTARTED\tDURATION")
	for _, r := range runs {
		status := string(r.Status)
		if r.Status == registry.RunFailed && strings.HasPrefix(r.Error, registry.AbandonedReason) {
			status += " (" + registry.AbandonedReason + ")"
		}
		dur := "-"
		if !r.FinishedAt.IsZero() {
			dur = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t[%s, %s)\t%s\t%d\t%s\t%s\n", r.ID, r.View, r.Start.Format(time.DateTime), r.End.Format(time.DateTime),
			status, r.RowsRead, r.StartedAt.UTC().Format(time.DateTime), dur)
	}
	return tw.Flush()
}

// cleanupFailedWrite removes the files a failed run wrote to view's offline table without
// committing them (a full disk stays full otherwise). It needs the warehouse to itself: it
// lets go of this command's shared lock and cleans only if no other writer holds it; else
// the next quiver gc does.
func (a *app) cleanupFailedWrite(ctx context.Context, env *materializeEnv, view string) {
	if env.offline == nil || env.unlock == nil {
		return
	}
	env.unlock()
	env.unlock = nil
	release, ok, err := warehouselock.TryExclusive(env.cfg.Offline.Warehouse)
	if err != nil || !ok {
		fmt.Fprintf(a.stderr, "quiver: other writers are running; quiver gc will remove what the failed run of %s left\n", view)
		return
	}
	defer release()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	res, err := env.offline.CollectGarbage(cctx, view, iceberg.GCOptions{OrphansOnly: true})
	if err != nil {
		fmt.Fprintf(a.stderr, "quiver: clean up after the failed run of %s: %v (quiver gc will retry)\n", view, err)
		return
	}
	var n int64
	for _, f := range res.Files {
		n += f.Bytes
	}
	if len(res.Files) > 0 {
		fmt.Fprintf(a.stderr, "quiver: removed %d files (%d bytes) the failed run of %s left\n", len(res.Files), n, view)
	}
}

func (a *app) auditCommand() *cobra.Command {
	var limit int
	var action, target string
	cmd := &cobra.Command{
		Use:   "audit [--action A] [--target T] [--limit N]",
		Short: "Show the audit trail of corrections: online syncs and deletes, replace-online runs, watermark resets, gc",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			events, err := reg.ListAudit(cmd.Context(), registry.AuditFilter{Project: cfg.Project, Action: registry.AuditAction(action), Target: target, Limit: limit})
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				type eventJSON struct {
					ID     string          `json:"id"`
					At     time.Time       `json:"at"`
					Actor  string          `json:"actor"`
					Action string          `json:"action"`
					Target string          `json:"target"`
					Detail json.RawMessage `json:"detail,omitempty"`
				}
				out := make([]eventJSON, 0, len(events))
				for _, e := range events {
					out = append(out, eventJSON{ID: fmt.Sprint(e.ID), At: e.At, Actor: e.Actor, Action: string(e.Action), Target: e.Target, Detail: e.Detail})
				}
				return a.printJSON(map[string]any{"events": out})
			}
			if len(events) == 0 {
				fmt.Fprintln(a.stdout, "No corrections recorded.")
				return nil
			}
			tw := a.table()
			fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tDETAIL")
			for _, e := range events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, e.Target, string(e.Detail))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events (0: all)")
	cmd.Flags().StringVar(&action, "action", "", "only this action: online_sync, replace_online, reset_watermark, online_delete, gc")
	cmd.Flags().StringVar(&target, "target", "", "only events about this view (or warehouse)")
	return cmd
}
