package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

func (a *app) trainCommand() *cobra.Command {
	var params []string
	var req project.TrainRequest
	var backend string
	cmd := &cobra.Command{
		Use:   "train JOB [--param k=v]... [--dataset NAME@vN | --entities FILE]",
		Short: "Run a training job on a dataset snapshot, tracking the run and registering the model",
		Long: `Train resolves the job's dataset (--dataset NAME@vN, or builds one from --entities FILE or the
job's entities: input, reusing an identical existing snapshot), records a run in the registry
with everything needed to reproduce it, runs the job's command with QUIVER_RUN_ID,
QUIVER_DATASET_DIR, QUIVER_OUTPUT_DIR, QUIVER_METRICS_FILE, QUIVER_PARAMS and
CUDA_VISIBLE_DEVICES set, streams its output and metrics, retries failures up to the job's
retries, and with register_model registers the model file it wrote as a new model version.
--backend kubernetes --dry-run prints the batch/v1 Job manifest instead.`,
		Args: cobra.ExactArgs(1),
	}
	cmd.RunE = a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
		req.Job, req.Params = args[0], map[string]string{}
		for _, kv := range params {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return usage("--param %q: want NAME=VALUE", kv)
			}
			req.Params[k] = v
		}
		if backend != "local" && backend != "kubernetes" {
			return usage("--backend %q: valid backends: local, kubernetes", backend)
		}
		req.Kubernetes, req.Output = backend == "kubernetes", a.stderr
		supervisor, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the quiver binary to supervise the job: %w", err)
		}
		req.Supervisor = supervisor
		t, err := p.Train(ctx, req)
		if err != nil {
			return err
		}
		ds := t.Dataset
		if k := t.Kubernetes; k != nil {
			if a.jsonOutput() {
				return a.printJSON(trainDryRunJSON{DryRun: true, Backend: backend, RunID: k.RunID, Manifest: string(k.Manifest)})
			}
			_, err = a.stdout.Write(k.Manifest)
			return err
		}
		if req.DryRun {
			out := trainDryRunJSON{DryRun: true, Backend: backend, Job: t.Job.Name, Dataset: ds.Name, Params: t.Params, Command: t.Job.Command}
			if ds.Version == 0 {
				out.DatasetBuilt = new(bool)
			} else {
				out.Dataset, out.ContentID = fmt.Sprintf("%s@v%d", ds.Name, ds.Version), ds.ContentID
			}
			return a.render(out, func() { t.WriteText(a.stdout) })
		}
		out := trainJSON{RunID: string(t.Run.ID), Status: string(t.Run.Status), Attempt: t.Run.Attempt,
			Dataset: fmt.Sprintf("%s@v%d", ds.Name, ds.Version), Metrics: toMetricSummariesJSON(t.Metrics)}
		if t.Model != nil {
			mv := toModelVersionJSON(*t.Model)
			out.Model = &mv
		}
		return a.render(out, func() { t.WriteText(a.stdout) })
	})
	cmd.Flags().StringArrayVar(&params, "param", nil, "override a param: NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&req.Dataset, "dataset", "", "train on this dataset version: NAME@vN")
	cmd.Flags().StringVar(&req.Entities, "entities", "", "build (or reuse) the dataset from this entity file instead of the job's")
	cmd.Flags().StringVar(&backend, "backend", "local", "local, or kubernetes (renders a batch/v1 Job; needs --dry-run)")
	cmd.Flags().StringVar(&req.Namespace, "namespace", "", "Kubernetes namespace of the rendered Job")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "print what would run (the manifest, for --backend kubernetes)")
	return cmd
}

func (a *app) runsCommand() *cobra.Command {
	var job, kind string
	var limit int
	list := &cobra.Command{
		Use:   "list [--job J] [--kind training|materialization]",
		Short: "List training (or materialization) runs, newest first",
		Long: `List training runs, or materialization runs with --kind materialization, newest first.
Runs whose process stopped sending heartbeats for longer than the lease ($QUIVER_RUN_LEASE,
default 2m) are marked FAILED (abandoned) first, and any process of such a training run still
alive on this host is killed.`,
		Args: cobra.NoArgs,
	}
	list.PreRunE = func(*cobra.Command, []string) error {
		if kind != "training" && kind != "materialization" {
			return usage("--kind %q: valid kinds: training, materialization", kind)
		}
		return nil
	}
	list.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, _ []string) error {
		if err := p.Reap(ctx); err != nil {
			return err
		}
		if kind == "materialization" {
			return a.listMaterializationRuns(ctx, reg, p.Name(), limit)
		}
		runs, err := reg.ListTrainingRuns(ctx, registry.TrainingRunFilter{Project: p.Name(), Job: job, Limit: limit})
		if err != nil {
			return fmt.Errorf("list runs: %w", err)
		}
		out := make([]trainingRunJSON, len(runs))
		for i, r := range runs {
			out[i] = toTrainingRunJSON(r, false)
		}
		return a.render(out, func() {
			if len(runs) == 0 {
				a.printf("No training runs. Start one with quiver train JOB.\n")
				return
			}
			tw := a.table()
			fmt.Fprintln(tw, "RUN\tJOB\tSTATUS\tATTEMPT\tEXIT\tDATASET\tSTARTED\tDURATION")
			for _, r := range runs {
				status := string(r.Status)
				if r.Error != "" {
					status += " (" + r.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s@v%d\t%s\t%s\n", r.ID, r.Job, status, r.Attempt, r.ExitCode, r.DatasetName, r.DatasetVersion, r.StartedAt.UTC().Format(time.DateTime), duration(r.StartedAt, r.FinishedAt))
			}
			tw.Flush()
		})
	})
	list.Flags().StringVar(&job, "job", "", "only runs of this job")
	list.Flags().StringVar(&kind, "kind", "training", "which runs: training or materialization")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many runs (0: all)")
	show := &cobra.Command{
		Use:   "show RUN_ID|PREFIX",
		Short: "Show a run: params, tags, metrics (final, best, and a sparkline over steps)",
		Args:  cobra.ExactArgs(1),
	}
	show.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		run, err := training.ResolveRunID(ctx, reg, p.Name(), args[0]) // a unique prefix will do
		if err != nil {
			return err
		}
		params, err := reg.RunParams(ctx, run.ID)
		if err != nil {
			return err
		}
		tags, err := reg.RunTags(ctx, run.ID)
		if err != nil {
			return err
		}
		summaries, err := reg.MetricSummaries(ctx, run.ID)
		if err != nil {
			return err
		}
		if a.jsonOutput() {
			var info any
			_ = json.Unmarshal(run.Info, &info)
			return a.printJSON(runShowJSON{Run: toTrainingRunJSON(run, false), Info: info, Params: params, Tags: tags, Metrics: toMetricSummariesJSON(summaries)})
		}
		tw := a.table()
		fmt.Fprintf(tw, "Run:\t%s (job %s, attempt %d)\n", run.ID, run.Job, run.Attempt)
		fmt.Fprintf(tw, "Status:\t%s, exit code %d\n", run.Status, run.ExitCode)
		fmt.Fprintf(tw, "Dataset:\t%s@v%d (%s)\n", run.DatasetName, run.DatasetVersion, shortID(run.DatasetContentID))
		fmt.Fprintf(tw, "Commit:\t%s\n", orDash(run.GitCommit))
		fmt.Fprintf(tw, "Started:\t%s by %s\n", run.StartedAt.UTC().Format(time.RFC3339), run.CreatedBy)
		if !run.FinishedAt.IsZero() {
			fmt.Fprintf(tw, "Finished:\t%s (%s)\n", run.FinishedAt.UTC().Format(time.RFC3339), duration(run.StartedAt, run.FinishedAt))
		}
		tw.Flush()
		a.printMap("Params", params)
		a.printMap("Tags", tags)
		if len(summaries) > 0 {
			a.printf("\nMetrics:\n")
			tw = a.table()
			fmt.Fprintln(tw, "  NAME\tLAST\tMIN\tMAX\tPOINTS\tOVER STEPS")
			for _, s := range summaries {
				values, err := training.MetricValues(ctx, reg, run.ID, s.Name)
				if err != nil {
					return err
				}
				fmt.Fprintf(tw, "  %s\t%.4g\t%.4g\t%.4g\t%d\t%s\n", s.Name, s.Last.Value, s.Min, s.Max, s.Count, training.Sparkline(values, 40))
			}
			tw.Flush()
		}
		return nil
	})
	return parent("runs", "List and show training runs", "runs needs a subcommand: list, show", list, show)
}

func (a *app) printMap(title string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	a.printf("\n%s:\n", title)
	tw := a.table()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, m[k])
	}
	tw.Flush()
}

func (a *app) modelsCommand() *cobra.Command {
	list := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List model versions and their aliases",
		Args:  cobra.MaximumNArgs(1),
	}
	list.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		name := optional(args)
		versions, err := reg.ListModelVersions(ctx, p.Name(), name)
		if err != nil {
			return fmt.Errorf("list models: %w", err)
		}
		all, err := reg.ListModelAliases(ctx, p.Name(), name) // every model's when name is empty
		if err != nil {
			return err
		}
		aliases := map[string][]string{}
		for _, al := range all {
			key := fmt.Sprintf("%s@%d", al.Name, al.Version)
			aliases[key] = append(aliases[key], al.Alias)
		}
		out := make([]modelVersionJSON, len(versions))
		for i, v := range versions {
			out[i] = toModelVersionJSON(v)
			out[i].Aliases = aliases[fmt.Sprintf("%s@%d", v.Name, v.Version)]
		}
		return a.render(out, func() {
			if len(versions) == 0 {
				a.printf("No model versions. Train a job with register_model to make one.\n")
				return
			}
			tw := a.table()
			fmt.Fprintln(tw, "MODEL\tVERSION\tALIASES\tRUNTIME\tFEATURE SERVICE\tRUN\tCREATED")
			for _, v := range out {
				fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Version, strings.Join(v.Aliases, ","),
					v.Runtime, v.FeatureService, v.RunID, v.CreatedAt.Format(time.DateTime))
			}
			tw.Flush()
		})
	})
	show := &cobra.Command{
		Use:   "show NAME[@ALIAS|@vN]",
		Short: "Show a model version: its run, dataset, artifact and alias history",
		Args:  cobra.ExactArgs(1),
	}
	show.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		mv, err := training.ResolveModel(ctx, reg, p.Name(), args[0])
		if err != nil {
			return err
		}
		aliases, err := reg.ListModelAliases(ctx, p.Name(), mv.Name)
		if err != nil {
			return err
		}
		out := modelShowJSON{Version: toModelVersionJSON(mv), Aliases: make([]modelAliasJSON, len(aliases))}
		for i, al := range aliases {
			out.Aliases[i] = toModelAliasJSON(al)
		}
		return a.render(out, func() {
			tw := a.table()
			fmt.Fprintf(tw, "Model:\t%s v%d\n", mv.Name, mv.Version)
			fmt.Fprintf(tw, "Runtime:\t%s\n", mv.Runtime)
			fmt.Fprintf(tw, "Feature service:\t%s\n", mv.FeatureService)
			fmt.Fprintf(tw, "Artifact:\t%s (%s)\n", mv.ArtifactURI, shortID(mv.ArtifactHash))
			fmt.Fprintf(tw, "Run:\t%s\n", orDash(string(mv.RunID)))
			fmt.Fprintf(tw, "Created:\t%s by %s\n", mv.CreatedAt.UTC().Format(time.RFC3339), mv.CreatedBy)
			tw.Flush()
			if len(aliases) > 0 {
				a.printf("\nAliases:\n")
				tw = a.table()
				for _, al := range aliases {
					fmt.Fprintf(tw, "  %s\t-> v%d\tset %s by %s\n", al.Alias, al.Version, al.UpdatedAt.UTC().Format(time.DateTime), al.UpdatedBy)
				}
				tw.Flush()
			}
		})
	})
	alias := &cobra.Command{
		Use:   "alias NAME VERSION ALIAS",
		Short: "Point ALIAS (e.g. production) at a model version; servers follow without a restart",
		Args:  cobra.ExactArgs(3),
	}
	alias.RunE = func(cmd *cobra.Command, args []string) error {
		version, err := strconv.Atoi(strings.TrimPrefix(args[1], "v"))
		if err != nil || version < 1 {
			return usage("VERSION %q: want a version number like 3 or v3", args[1])
		}
		if err := registry.CheckAliasName(args[2]); err != nil {
			return err
		}
		return a.withProject(func(ctx context.Context, p *project.Project, args []string) error {
			reg, err := p.Registry(ctx)
			if err != nil {
				return err
			}
			al, err := reg.SetModelAlias(ctx, registry.AliasUpdate{Project: p.Name(), Name: args[0], Alias: args[2], Version: version, By: p.Actor()})
			if err != nil {
				return fmt.Errorf("alias %s@%s -> v%d: %w", args[0], args[2], version, err)
			}
			return a.render(toModelAliasJSON(al), func() { a.printf("%s@%s -> v%d\n", al.Name, al.Alias, al.Version) })
		})(cmd, args)
	}
	return parent("models", "List, show and alias registered model versions", "models needs a subcommand: list, show, alias", list, show, alias)
}

func (a *app) lineageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lineage NAME[@ALIAS|@vN]",
		Short: "Trace a model version to its run, dataset, feature definitions (on-demand views and request sources too) and offline snapshots",
		Args:  cobra.ExactArgs(1),
	}
	cmd.RunE = a.withRegistry(func(ctx context.Context, p *project.Project, reg registry.Store, args []string) error {
		tr, err := training.TraceModel(ctx, reg, p.Name(), args[0])
		if err != nil {
			return err
		}
		if mv, run, ds, info, lineage := tr.Model, tr.Run, tr.Dataset, tr.Info, tr.Lineage; a.jsonOutput() {
			m := toModelVersionJSON(mv)
			m.Ref = args[0]
			return a.printJSON(lineageOutput{Model: m,
				Run:     lineageRunJSON{ID: string(run.ID), Job: run.Job, Status: string(run.Status), GitCommit: info.GitCommit, GitDirty: info.GitDirty, Params: info.Params, Definitions: info.Definitions},
				Dataset: toDatasetJSON(ds, false), Lineage: toLineageJSON(lineage)})
		}
		return tr.WriteTree(a.stdout, args[0])
	})
	return cmd
}
