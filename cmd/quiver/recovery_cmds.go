package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
)

func (a *app) onlineCommand() *cobra.Command {
	return parent("online", "Maintain the online store", "online needs a subcommand: delete", a.onlineDeleteCommand())
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
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		if len(entities) == 0 {
			return usage("online delete: give at least one --entity KEY=VALUE")
		}
		d, err := p.DeleteOnline(ctx, args[0], entities)
		if err != nil {
			return err
		}
		return a.render(d, func() {
			a.printf("Removed %d of %d entities from the online store of %s (recorded in the audit trail).\n", d.Deleted, d.Keys, d.View)
		})
	})
	cmd.Flags().StringArrayVar(&entities, "entity", nil, "a join-key value KEY=VALUE (repeatable)")
	return cmd
}

// listMaterializationRuns is quiver runs list --kind materialization.
func (a *app) listMaterializationRuns(ctx context.Context, reg registry.Store, project string, limit int) error {
	runs, err := reg.ListRuns(ctx, registry.RunFilter{Project: project, Limit: limit})
	if err != nil {
		return fmt.Errorf("list materialization runs: %w", err)
	}
	out := materializationRunsJSON{Runs: make([]materializationRunJSON, len(runs))}
	for i, r := range runs {
		out.Runs[i] = materializationRunJSON{RunID: idString(int64(r.ID)), View: r.View, Start: r.Start, End: r.End, Status: string(r.Status),
			RowsRead: r.RowsRead, RowsWritten: r.RowsWritten, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt, Error: r.Error}
	}
	return a.render(out, func() {
		if len(runs) == 0 {
			a.printf("No materialization runs. Start one with quiver materialize.\n")
			return
		}
		tw := a.table()
		fmt.Fprintln(tw, "RUN\tVIEW\tINTERVAL\tSTATUS\tROWS READ\tSTARTED\tDURATION")
		for _, r := range runs {
			status := string(r.Status)
			if r.Status == registry.RunFailed && strings.HasPrefix(r.Error, registry.AbandonedReason) {
				status += " (" + registry.AbandonedReason + ")"
			}
			fmt.Fprintf(tw, "%d\t%s\t[%s, %s)\t%s\t%d\t%s\t%s\n", r.ID, r.View, r.Start.Format(time.DateTime), r.End.Format(time.DateTime),
				status, r.RowsRead, r.StartedAt.UTC().Format(time.DateTime), duration(r.StartedAt, r.FinishedAt))
		}
		tw.Flush()
	})
}

// duration is how long a run took, "-" while it runs.
func duration(start, end time.Time) string {
	if end.IsZero() {
		return "-"
	}
	return end.Sub(start).Round(time.Millisecond).String()
}

func (a *app) auditCommand() *cobra.Command {
	var limit int
	var action, target string
	cmd := &cobra.Command{
		Use:   "audit [--action A] [--target T] [--limit N]",
		Short: "Show the audit trail of corrections: online syncs and deletes, replace-online runs, watermark resets, gc",
		Args:  cobra.NoArgs,
	}
	cmd.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, _ []string) error {
		events, err := reg.ListAudit(ctx, registry.AuditFilter{Project: p.Name(), Action: registry.AuditAction(action), Target: target, Limit: limit})
		if err != nil {
			return err
		}
		out := auditJSON{Events: make([]auditEventJSON, len(events))}
		for i, e := range events {
			out.Events[i] = auditEventJSON{ID: idString(e.ID), At: e.At, Actor: e.Actor, Action: string(e.Action), Target: e.Target, Detail: e.Detail}
		}
		return a.render(out, func() {
			if len(events) == 0 {
				a.printf("No corrections recorded.\n")
				return
			}
			tw := a.table()
			fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tDETAIL")
			for _, e := range events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.Format(time.RFC3339), e.Actor, e.Action, e.Target, string(e.Detail))
			}
			tw.Flush()
		})
	})
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many events (0: all)")
	cmd.Flags().StringVar(&action, "action", "", "only this action: online_sync, replace_online, reset_watermark, online_delete, gc")
	cmd.Flags().StringVar(&target, "target", "", "only events about this view (or warehouse)")
	return cmd
}
