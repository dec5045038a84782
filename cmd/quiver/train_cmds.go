package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/quiverfs/quiver/catalog"
	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/config"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/internal/stores"
	"github.com/quiverfs/quiver/internal/warehouselock"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// gitState returns the repo's commit, whether the work tree is dirty, and the SHA-256 of
// `git diff HEAD` when it is.
func gitState(ctx context.Context, dir string) (commit string, dirty bool, diffHash string) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return "", false, ""
	}
	commit = strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--", ".").Output()
	if err != nil || len(strings.TrimSpace(string(status))) == 0 {
		return commit, false, ""
	}
	diff, _ := exec.CommandContext(ctx, "git", "-C", dir, "diff", "HEAD", "--", ".").Output()
	sum := sha256.Sum256(append(diff, status...))
	return commit, true, hex.EncodeToString(sum[:])
}

// recordedCommit is the commit a registry record carries: the repo's HEAD, registry.GitDirty
// when the work tree has uncommitted changes, or "" outside git.
func recordedCommit(ctx context.Context, dir string) string {
	commit, dirty, _ := gitState(ctx, dir)
	if dirty {
		return registry.GitDirty
	}
	return commit
}

func (a *app) trainCommand() *cobra.Command {
	var params []string
	var datasetRef, entities, backend, namespace string
	var dryRun bool
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
		RunE: func(cmd *cobra.Command, args []string) error {
			overrides := map[string]string{}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return usage("--param %q: want NAME=VALUE", p)
				}
				overrides[k] = v
			}
			if backend != "local" && backend != "kubernetes" {
				return usage("--backend %q: valid backends: local, kubernetes", backend)
			}
			if backend == "kubernetes" && !dryRun {
				return usage("--backend kubernetes renders the Job manifest only in this build: add --dry-run and apply it with kubectl apply -f -")
			}
			if datasetRef != "" && entities != "" {
				return usage("give --dataset or --entities, not both")
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
			repo := applied.Repo
			job := repo.TrainingJob(args[0])
			if job == nil {
				return repo.UnknownError(definitions.KindTrainingJob, args[0])
			}
			var model *definitions.Model
			if job.RegisterModel != "" {
				model = repo.Model(job.RegisterModel)
			}
			resolved, err := training.ResolveParams(job, overrides)
			if err != nil {
				return err
			}

			var k8s training.KubernetesJob
			if backend == "kubernetes" {
				// Checked before any work: a Job Kubernetes would refuse is refused here.
				runID := "r" + time.Now().UTC().Format("20060102t150405")
				k8s = training.KubernetesJob{
					Project: cfg.Project, Job: job.Name, RunID: runID, Image: job.Image, Namespace: namespace,
					Command: job.Command, Env: job.Env, Params: resolved, GPU: job.Resources.GPU, CPU: job.Resources.CPU,
					Memory: job.Resources.Memory, Retries: job.Retries, NodeSelector: job.NodeSelector,
					OutputURI: filepath.Join(training.ProjectDir(cfg.Offline.Warehouse, cfg.Project), "runs", runID, "output"),
				}
				if err := training.ValidateKubernetesJob(k8s); err != nil {
					return err
				}
			}
			ds, dsDir, err := a.trainDataset(cmd, cfg, reg, applied, job, datasetRef, entities, dryRun)
			if err != nil {
				return err
			}
			commit, dirty, diffHash := gitState(ctx, cfg.Root)
			host, _ := os.Hostname()
			info := training.RunInfo{
				GitCommit: commit, GitDirty: dirty, GitDiffSHA256: diffHash, DatasetID: ds.ContentID,
				QuiverVersion: quiverVersion(), Host: host, Definitions: map[string]int{},
			}
			for _, ref := range definitionRefs(repo, job) {
				if v, ok := applied.Versions[ref.kind][ref.name]; ok {
					info.Definitions[string(ref.kind)+"/"+ref.name] = v
				}
			}
			recorded := commit
			if dirty {
				recorded = registry.GitDirty
			}
			if backend == "kubernetes" {
				k8s.DatasetURI = dsDir
				if ds.Version == 0 {
					fmt.Fprintf(a.stderr, "Dry run: no dataset was built; QUIVER_DATASET_DIR is %s, under which quiver train builds (or reuses) the job's dataset. Pass --dataset NAME@vN to pin a version.\n", dsDir)
				}
				if local := training.LocalLocations(k8s); len(local) > 0 {
					fmt.Fprintf(a.stderr, "Warning: the Job uses local paths (%s) that a pod cannot read or write unless they are mounted into it at the same place; put the warehouse on object storage (offline.warehouse: s3://...) or mount it.\n", strings.Join(local, ", "))
				}
				manifest, err := training.RenderKubernetesJob(k8s)
				if err != nil {
					return err
				}
				if a.jsonOutput() {
					return a.printJSON(map[string]any{"dry_run": true, "backend": backend, "run_id": k8s.RunID, "manifest": string(manifest)})
				}
				_, err = a.stdout.Write(manifest)
				return err
			}
			if dryRun {
				if ds.Version == 0 {
					if a.jsonOutput() {
						return a.printJSON(map[string]any{"dry_run": true, "backend": backend, "job": job.Name,
							"dataset": ds.Name, "dataset_built": false, "params": resolved, "command": job.Command})
					}
					fmt.Fprintf(a.stdout, "Dry run: would build (or reuse) a dataset %q from the job's entity rows, then run %q with params %v, command %s\n",
						ds.Name, job.Name, resolved, strings.Join(job.Command, " "))
					return nil
				}
				if a.jsonOutput() {
					return a.printJSON(map[string]any{"dry_run": true, "backend": backend, "job": job.Name,
						"dataset": fmt.Sprintf("%s@v%d", ds.Name, ds.Version), "content_id": ds.ContentID, "params": resolved, "command": job.Command})
				}
				fmt.Fprintf(a.stdout, "Dry run: would run %q on %s@v%d (%s) with params %v, command %s\n",
					job.Name, ds.Name, ds.Version, shortID(ds.ContentID), resolved, strings.Join(job.Command, " "))
				return nil
			}
			lease, err := a.runLease()
			if err != nil {
				return err
			}
			if err := a.reapAbandoned(ctx, reg, cfg.Project); err != nil {
				return err
			}
			supervisor, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the quiver binary to supervise the job: %w", err)
			}
			began := time.Now()
			run, err := training.RunJob(ctx, reg, training.JobRequest{
				Project: cfg.Project, Job: job, Model: model, Params: overrides, Dataset: ds, DatasetDir: dsDir,
				Warehouse: cfg.Offline.Warehouse, WorkDir: cfg.Root, Info: info, GitCommit: recorded, CreatedBy: a.whoAmI(),
				Stdout: a.stderr, Stderr: a.stderr, GPUs: training.DetectGPUs(ctx), Heartbeat: registry.HeartbeatInterval(lease),
				TempDir: a.getenv("TMPDIR"), Supervisor: supervisor,
			})
			if err != nil {
				return err
			}
			summaries, _ := reg.MetricSummaries(ctx, run.ID)
			var mv *registry.ModelVersion
			if model != nil {
				if versions, err := reg.ListModelVersions(ctx, cfg.Project, model.Name); err == nil {
					for i := range versions {
						if versions[i].RunID == run.ID {
							mv = &versions[i]
						}
					}
				}
			}
			if a.jsonOutput() {
				out := map[string]any{"run_id": run.ID, "status": run.Status, "attempt": run.Attempt, "dataset": fmt.Sprintf("%s@v%d", ds.Name, ds.Version), "metrics": toMetricSummariesJSON(summaries)}
				if mv != nil {
					out["model"] = map[string]any{"name": mv.Name, "version": mv.Version, "artifact": mv.ArtifactURI}
				}
				return a.printJSON(out)
			}
			fmt.Fprintf(a.stdout, "Run %s %s in %.1fs (attempt %d), on %s@v%d\n", run.ID, run.Status, time.Since(began).Seconds(), run.Attempt, ds.Name, ds.Version)
			for _, s := range summaries {
				fmt.Fprintf(a.stdout, "  %s: last %.4g (step %d), min %.4g, max %.4g\n", s.Name, s.Last.Value, s.Last.Step, s.Min, s.Max)
			}
			if mv != nil {
				fmt.Fprintf(a.stdout, "Registered model %s v%d (%s)\n", mv.Name, mv.Version, mv.ArtifactURI)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&params, "param", nil, "override a param: NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&datasetRef, "dataset", "", "train on this dataset version: NAME@vN")
	cmd.Flags().StringVar(&entities, "entities", "", "build (or reuse) the dataset from this entity file instead of the job's")
	cmd.Flags().StringVar(&backend, "backend", "local", "local, or kubernetes (renders a batch/v1 Job; needs --dry-run)")
	cmd.Flags().StringVar(&namespace, "namespace", "", "Kubernetes namespace of the rendered Job")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would run (the manifest, for --backend kubernetes)")
	return cmd
}

type defRef struct {
	kind definitions.Kind
	name string
}

// definitionRefs lists the definitions a job's run depends on.
func definitionRefs(repo *definitions.Repo, job *definitions.TrainingJob) []defRef {
	refs := []defRef{{definitions.KindTrainingJob, job.Name}, {definitions.KindFeatureService, job.FeatureService}}
	if job.RegisterModel != "" {
		refs = append(refs, defRef{definitions.KindModel, job.RegisterModel})
	}
	seen := map[string]bool{}
	if feats, err := repo.ResolveService(job.FeatureService); err == nil {
		for _, f := range feats {
			if f.OnDemand != nil {
				refs = append(refs, onDemandRefs(repo, f.OnDemand, seen)...)
				continue
			}
			if !seen[f.View.Name] {
				seen[f.View.Name] = true
				refs = append(refs, defRef{definitions.KindFeatureView, f.View.Name}, defRef{definitions.KindSource, f.View.Source})
			}
		}
	}
	return refs
}

// trainDataset resolves the dataset a training run uses: the named version, or one built (or
// reused) from the entity file.
func (a *app) trainDataset(cmd *cobra.Command, cfg *config.Config, reg registry.Store, snap *catalog.Snapshot, job *definitions.TrainingJob, ref, entities string, dryRun bool) (registry.Dataset, string, error) {
	if ref != "" {
		return getDataset(cmd, cfg, reg, ref)
	}
	if entities == "" {
		switch {
		case job.Entities != nil && job.Entities.Path != "":
			p, err := definitions.PathPolicy{Root: cfg.Root, Allowed: cfg.AllowedPaths}.Resolve(job.Entities.Path)
			if err != nil {
				return registry.Dataset{}, "", errkind.Errorf(errkind.Invalid, "training job %q entities: %w", job.Name, err)
			}
			entities = p
		case job.Entities != nil && job.Entities.SQL != "":
			return registry.Dataset{}, "", usage("training job %q reads its entities with SQL, which needs the Trino engine this build does not have; pass --entities FILE or --dataset NAME@vN", job.Name)
		default:
			return registry.Dataset{}, "", usage("training job %q declares no entities: input; pass --entities FILE or --dataset NAME@vN", job.Name)
		}
	} else if abs, err := filepath.Abs(entities); err == nil {
		entities = abs
	}
	if dryRun {
		// A dry run builds nothing: it checks that the entity rows are there and names the
		// dataset the run would build or reuse.
		if _, err := os.Stat(entities); err != nil {
			return registry.Dataset{}, "", errkind.Errorf(errkind.Invalid, "training job %q entities: %w", job.Name, err)
		}
		return registry.Dataset{Name: job.Name}, training.DatasetsDir(cfg.Offline.Warehouse, cfg.Project), nil
	}
	off, err := stores.OpenOffline(cmd.Context(), cfg, reg)
	if err != nil {
		return registry.Dataset{}, "", err
	}
	defer off.Close()
	unlock, err := warehouselock.Shared(cmd.Context(), cfg.Offline.Warehouse)
	if err != nil {
		return registry.Dataset{}, "", err
	}
	defer unlock()
	res, err := training.CreateDataset(cmd.Context(), reg, off, snap, training.DatasetRequest{
		Project: cfg.Project, Name: job.Name, Service: job.FeatureService, Entities: entities,
		Warehouse: cfg.Offline.Warehouse, QuiverVersion: quiverVersion(), CreatedBy: a.whoAmI(),
	})
	switch {
	case err != nil:
		return registry.Dataset{}, "", err
	case res.Reused:
		fmt.Fprintf(a.stderr, "Dataset cache hit: reusing %s@v%d (content id %s), built from the same inputs.\n", res.Dataset.Name, res.Dataset.Version, shortID(res.Dataset.ContentID))
	default:
		fmt.Fprintf(a.stderr, "Built dataset %s@v%d: %d rows (content id %s).\n", res.Dataset.Name, res.Dataset.Version, res.Dataset.Rows, shortID(res.Dataset.ContentID))
	}
	return res.Dataset, res.Dir, nil
}

func (a *app) runsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and show training runs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usage("runs needs a subcommand: list, show")
		},
	}
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
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "training" && kind != "materialization" {
				return usage("--kind %q: valid kinds: training, materialization", kind)
			}
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			if err := a.reapAbandoned(cmd.Context(), reg, cfg.Project); err != nil {
				return err
			}
			if kind == "materialization" {
				return a.listMaterializationRuns(cmd, reg, cfg.Project, limit)
			}
			runs, err := reg.ListTrainingRuns(cmd.Context(), registry.TrainingRunFilter{Project: cfg.Project, Job: job, Limit: limit})
			if err != nil {
				return fmt.Errorf("list runs: %w", err)
			}
			if a.jsonOutput() {
				return a.printJSON(toTrainingRunsJSON(runs))
			}
			if len(runs) == 0 {
				fmt.Fprintln(a.stdout, "No training runs. Start one with quiver train JOB.")
				return nil
			}
			tw := a.table()
			fmt.Fprintln(tw, "RUN\tJOB\tSTATUS\tATTEMPT\tEXIT\tDATASET\tSTARTED\tDURATION")
			for _, r := range runs {
				dur := "-"
				if !r.FinishedAt.IsZero() {
					dur = r.FinishedAt.Sub(r.StartedAt).Round(time.Millisecond).String()
				}
				status := string(r.Status)
				if r.Error != "" {
					status += " (" + r.Error + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s@v%d\t%s\t%s\n", r.ID, r.Job, status, r.Attempt, r.ExitCode, r.DatasetName, r.DatasetVersion, r.StartedAt.UTC().Format(time.DateTime), dur)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&job, "job", "", "only runs of this job")
	list.Flags().StringVar(&kind, "kind", "training", "which runs: training or materialization")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many runs (0: all)")
	show := &cobra.Command{
		Use:   "show RUN_ID|PREFIX",
		Short: "Show a run: params, tags, metrics (final, best, and a sparkline over steps)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx := cmd.Context()
			run, err := training.ResolveRunID(ctx, reg, cfg.Project, args[0]) // a unique prefix will do
			if err != nil {
				return err
			}
			id := run.ID
			params, err := reg.RunParams(ctx, id)
			if err != nil {
				return err
			}
			tags, err := reg.RunTags(ctx, id)
			if err != nil {
				return err
			}
			summaries, err := reg.MetricSummaries(ctx, id)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				var info any
				_ = json.Unmarshal(run.Info, &info)
				return a.printJSON(map[string]any{"run": toTrainingRunJSON(run, false), "info": info, "params": params, "tags": tags, "metrics": toMetricSummariesJSON(summaries)})
			}
			tw := a.table()
			fmt.Fprintf(tw, "Run:\t%s (job %s, attempt %d)\n", run.ID, run.Job, run.Attempt)
			fmt.Fprintf(tw, "Status:\t%s, exit code %d\n", run.Status, run.ExitCode)
			fmt.Fprintf(tw, "Dataset:\t%s@v%d (%s)\n", run.DatasetName, run.DatasetVersion, shortID(run.DatasetContentID))
			fmt.Fprintf(tw, "Commit:\t%s\n", orDash(run.GitCommit))
			fmt.Fprintf(tw, "Started:\t%s by %s\n", run.StartedAt.UTC().Format(time.RFC3339), run.CreatedBy)
			if !run.FinishedAt.IsZero() {
				fmt.Fprintf(tw, "Finished:\t%s (%s)\n", run.FinishedAt.UTC().Format(time.RFC3339), run.FinishedAt.Sub(run.StartedAt).Round(time.Millisecond))
			}
			tw.Flush()
			printMap(a, "Params", params)
			printMap(a, "Tags", tags)
			if len(summaries) > 0 {
				fmt.Fprintln(a.stdout, "\nMetrics:")
				tw = a.table()
				fmt.Fprintln(tw, "  NAME\tLAST\tMIN\tMAX\tPOINTS\tOVER STEPS")
				for _, s := range summaries {
					values, err := metricValues(ctx, reg, id, s.Name)
					if err != nil {
						return err
					}
					fmt.Fprintf(tw, "  %s\t%.4g\t%.4g\t%.4g\t%d\t%s\n", s.Name, s.Last.Value, s.Min, s.Max, s.Count, sparkline(values, 40))
				}
				tw.Flush()
			}
			return nil
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

// metricValues reads a metric's whole history page by page.
func metricValues(ctx context.Context, reg registry.Store, id registry.TrainingRunID, name string) ([]float64, error) {
	var out []float64
	var after int64
	for {
		page, err := reg.Metrics(ctx, id, registry.MetricQuery{Name: name, AfterSeq: after, Limit: 5000})
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			out = append(out, p.Value)
			after = p.Seq
		}
		if len(page) < 5000 {
			return out, nil
		}
	}
}

func printMap(a *app, title string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	fmt.Fprintf(a.stdout, "\n%s:\n", title)
	tw := a.table()
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(tw, "  %s\t%s\n", k, m[k])
	}
	tw.Flush()
}

// sparkline draws values as block characters, averaged down to at most width points. A point
// that is NaN or infinite is drawn as a gap; ranges wider than the largest float64 are scaled
// in halves, so that they do not overflow.
func sparkline(values []float64, width int) string {
	if len(values) == 0 {
		return ""
	}
	if len(values) > width {
		down := make([]float64, width)
		for i := range down {
			lo, hi := i*len(values)/width, (i+1)*len(values)/width
			mean := 0.0
			for _, v := range values[lo:hi] {
				mean += v / float64(hi-lo)
			}
			down[i] = mean
		}
		values = down
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range values {
		if finite(v) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	bars := []rune("▁▂▃▄▅▆▇█")
	var b strings.Builder
	for _, v := range values {
		if !finite(v) {
			b.WriteRune(' ')
			continue
		}
		i := 0
		if hi > lo {
			i = int((v/2 - lo/2) / (hi/2 - lo/2) * float64(len(bars)-1))
		}
		b.WriteRune(bars[max(0, min(i, len(bars)-1))])
	}
	return b.String()
}

func (a *app) modelsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List, show and alias registered model versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usage("models needs a subcommand: list, show, alias")
		},
	}
	list := &cobra.Command{
		Use:   "list [NAME]",
		Short: "List model versions and their aliases",
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
			versions, err := reg.ListModelVersions(cmd.Context(), cfg.Project, name)
			if err != nil {
				return fmt.Errorf("list models: %w", err)
			}
			aliases := map[string][]string{}
			names := map[string]bool{}
			for _, v := range versions {
				names[v.Name] = true
			}
			for n := range names {
				as, err := reg.ListModelAliases(cmd.Context(), cfg.Project, n)
				if err != nil {
					return err
				}
				for _, al := range as {
					key := fmt.Sprintf("%s@%d", n, al.Version)
					aliases[key] = append(aliases[key], al.Alias)
				}
			}
			if a.jsonOutput() {
				out := make([]map[string]any, len(versions))
				for i, v := range versions {
					out[i] = map[string]any{"name": v.Name, "version": v.Version, "run_id": v.RunID, "runtime": v.Runtime,
						"feature_service": v.FeatureService, "artifact": v.ArtifactURI, "aliases": aliases[fmt.Sprintf("%s@%d", v.Name, v.Version)], "created_at": v.CreatedAt.UTC()}
				}
				return a.printJSON(out)
			}
			if len(versions) == 0 {
				fmt.Fprintln(a.stdout, "No model versions. Train a job with register_model to make one.")
				return nil
			}
			tw := a.table()
			fmt.Fprintln(tw, "MODEL\tVERSION\tALIASES\tRUNTIME\tFEATURE SERVICE\tRUN\tCREATED")
			for _, v := range versions {
				fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\t%s\t%s\t%s\n", v.Name, v.Version, strings.Join(aliases[fmt.Sprintf("%s@%d", v.Name, v.Version)], ","),
					v.Runtime, v.FeatureService, v.RunID, v.CreatedAt.UTC().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:   "show NAME[@ALIAS|@vN]",
		Short: "Show a model version: its run, dataset, artifact and alias history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			mv, err := training.ResolveModel(cmd.Context(), reg, cfg.Project, args[0])
			if err != nil {
				return err
			}
			aliases, err := reg.ListModelAliases(cmd.Context(), cfg.Project, mv.Name)
			if err != nil {
				return err
			}
			if a.jsonOutput() {
				return a.printJSON(map[string]any{"version": toModelVersionJSON(mv), "aliases": toModelAliasesJSON(aliases)})
			}
			tw := a.table()
			fmt.Fprintf(tw, "Model:\t%s v%d\n", mv.Name, mv.Version)
			fmt.Fprintf(tw, "Runtime:\t%s\n", mv.Runtime)
			fmt.Fprintf(tw, "Feature service:\t%s\n", mv.FeatureService)
			fmt.Fprintf(tw, "Artifact:\t%s (%s)\n", mv.ArtifactURI, shortID(mv.ArtifactHash))
			fmt.Fprintf(tw, "Run:\t%s\n", orDash(string(mv.RunID)))
			fmt.Fprintf(tw, "Created:\t%s by %s\n", mv.CreatedAt.UTC().Format(time.RFC3339), mv.CreatedBy)
			tw.Flush()
			if len(aliases) > 0 {
				fmt.Fprintln(a.stdout, "\nAliases:")
				tw = a.table()
				for _, al := range aliases {
					fmt.Fprintf(tw, "  %s\t-> v%d\tset %s by %s\n", al.Alias, al.Version, al.UpdatedAt.UTC().Format(time.DateTime), al.UpdatedBy)
				}
				tw.Flush()
			}
			return nil
		},
	}
	alias := &cobra.Command{
		Use:   "alias NAME VERSION ALIAS",
		Short: "Point ALIAS (e.g. production) at a model version; servers follow without a restart",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			version, err := strconv.Atoi(strings.TrimPrefix(args[1], "v"))
			if err != nil || version < 1 {
				return usage("VERSION %q: want a version number like 3 or v3", args[1])
			}
			if err := registry.CheckAliasName(args[2]); err != nil {
				return err
			}
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			al, err := reg.SetModelAlias(cmd.Context(), registry.AliasUpdate{Project: cfg.Project, Name: args[0], Alias: args[2], Version: version, By: a.whoAmI()})
			if err != nil {
				return fmt.Errorf("alias %s@%s -> v%d: %w", args[0], args[2], version, err)
			}
			if a.jsonOutput() {
				return a.printJSON(toModelAliasJSON(al))
			}
			fmt.Fprintf(a.stdout, "%s@%s -> v%d\n", al.Name, al.Alias, al.Version)
			return nil
		},
	}
	cmd.AddCommand(list, show, alias)
	return cmd
}

func (a *app) lineageCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "lineage NAME[@ALIAS|@vN]",
		Short: "Trace a model version to its run, dataset, feature definitions (on-demand views and request sources too) and offline snapshots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, reg, err := a.configAndRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			tr, err := training.TraceModel(cmd.Context(), reg, cfg.Project, args[0])
			if err != nil {
				return err
			}
			mv, run, ds, info, lineage := tr.Model, tr.Run, tr.Dataset, tr.Info, tr.Lineage
			if a.jsonOutput() {
				return a.printJSON(map[string]any{
					"model":   map[string]any{"name": mv.Name, "version": mv.Version, "ref": args[0], "artifact": mv.ArtifactURI, "artifact_hash": mv.ArtifactHash},
					"run":     map[string]any{"id": run.ID, "job": run.Job, "status": run.Status, "git_commit": info.GitCommit, "git_dirty": info.GitDirty, "params": info.Params, "definitions": info.Definitions},
					"dataset": map[string]any{"name": ds.Name, "version": ds.Version, "content_id": ds.ContentID, "rows": ds.Rows},
					"lineage": toLineageJSON(lineage),
				})
			}
			w := a.stdout
			fmt.Fprintf(w, "model    %s v%d  (%s)\n", mv.Name, mv.Version, args[0])
			fmt.Fprintf(w, "  artifact  %s  %s\n", mv.ArtifactURI, shortID(mv.ArtifactHash))
			fmt.Fprintf(w, "└─ run    %s  job %s, %s, attempt %d\n", run.ID, run.Job, run.Status, run.Attempt)
			dirty := ""
			if info.GitDirty {
				dirty = " (dirty, diff " + shortID(info.GitDiffSHA256) + ")"
			}
			fmt.Fprintf(w, "     commit %s%s, quiver %s, host %s\n", orDash(info.GitCommit), dirty, info.QuiverVersion, info.Host)
			fmt.Fprintf(w, "   └─ dataset  %s@v%d  %s  %d rows\n", ds.Name, ds.Version, ds.ContentID, ds.Rows)
			fmt.Fprintf(w, "      ├─ entities  %s %s  sha256 %s\n", lineage.Entities.Kind, lineage.Entities.Path+lineage.Entities.SQL, shortID(lineage.Entities.SHA256))
			fmt.Fprintf(w, "      └─ feature service  %s v%d  %s\n", lineage.FeatureService.Name, lineage.FeatureService.Version, shortID(lineage.FeatureService.Hash))
			last := len(tr.Views) + len(tr.OnDemand) - 1 // the service's last child
			for i, v := range tr.Views {
				branch := "├─"
				if i == last {
					branch = "└─"
				}
				src := ""
				if v.Source != "" {
					src = "  source " + v.Source
					if v.SourceVersion != 0 {
						src += fmt.Sprintf(" v%d", v.SourceVersion)
					}
				}
				fmt.Fprintf(w, "         %s feature view  %s v%d  offline snapshot %d%s\n", branch, v.Name, v.Version, v.OfflineSnapshotID, src)
			}
			for i, od := range tr.OnDemand {
				branch, indent := "├─", "         │  "
				if len(tr.Views)+i == last {
					branch, indent = "└─", "            "
				}
				fmt.Fprintf(w, "         %s on-demand view  %s v%d  %s\n", branch, od.Name, od.Version, shortID(od.Hash))
				inputs := make([]string, 0, len(od.RequestSources)+len(od.Views))
				for _, rs := range od.RequestSources {
					if rs.Version != 0 {
						inputs = append(inputs, fmt.Sprintf("request source  %s v%d", rs.Name, rs.Version))
					} else {
						inputs = append(inputs, "request source  "+rs.Name)
					}
				}
				for _, v := range od.Views {
					inputs = append(inputs, "reads feature view  "+v)
				}
				for j, in := range inputs {
					b := "├─"
					if j == len(inputs)-1 {
						b = "└─"
					}
					fmt.Fprintf(w, "%s%s %s\n", indent, b, in)
				}
			}
			return nil
		},
	}
}

// onDemandRefs lists an on-demand view and the request sources and feature views it reads,
// each once (seen is keyed by kind and name).
func onDemandRefs(repo *definitions.Repo, v *definitions.OnDemandFeatureView, seen map[string]bool) []defRef {
	var refs []defRef
	if seen["od:"+v.Name] {
		return nil
	}
	seen["od:"+v.Name] = true
	refs = append(refs, defRef{definitions.KindOnDemandView, v.Name})
	for _, in := range v.Inputs {
		if rs := repo.RequestSource(in); rs != nil {
			if !seen["rs:"+in] {
				seen["rs:"+in] = true
				refs = append(refs, defRef{definitions.KindRequestSource, in})
			}
			continue
		}
		if fv := repo.FeatureView(in); fv != nil && !seen[in] {
			seen[in] = true
			refs = append(refs, defRef{definitions.KindFeatureView, in}, defRef{definitions.KindSource, fv.Source})
		}
	}
	return refs
}
