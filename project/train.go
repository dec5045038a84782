package project

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/offline/iceberg"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// TrainRequest asks to run a training job.
type TrainRequest struct {
	Job    string
	Params map[string]string // --param overrides
	// Dataset is the version to train on (NAME@vN); else one is built (or reused) from
	// Entities, or from the job's entities: input.
	Dataset  string
	Entities string
	// Kubernetes renders the batch/v1 Job manifest (only with DryRun in this build), in
	// Namespace.
	Kubernetes bool
	Namespace  string
	// DryRun builds and runs nothing.
	DryRun bool
	// Output receives the job's output as it runs.
	Output io.Writer
	// Supervisor is the quiver binary that supervises the job (training.JobRequest).
	Supervisor string
}

// Training is what Train did, or would do.
type Training struct {
	Job    *definitions.TrainingJob
	Params map[string]any // resolved
	// Dataset is the version trained on; Version 0 for a dry run that built nothing
	// (DatasetDir is then where it would be built).
	Dataset    registry.Dataset
	DatasetDir string
	// Kubernetes, for a Kubernetes dry run: the rendered Job and the local paths a pod
	// cannot reach unless they are mounted.
	Kubernetes *KubernetesJob
	// Run is the last attempt's run (none for a dry run), with its metrics and the model
	// version it registered, if any.
	Run     registry.TrainingRun
	Metrics []registry.MetricSummary
	Model   *registry.ModelVersion
	Took    time.Duration
}

// KubernetesJob is a rendered Kubernetes Job.
type KubernetesJob struct {
	RunID      string
	Manifest   []byte
	LocalPaths []string
}

// Train runs a training job on a dataset snapshot (the named version, or one built or
// reused from the entity rows), recording the run with what reproduces it — the git state,
// the definition versions it depends on, the dataset's content id — and registering the
// model it writes. With DryRun it only resolves and checks, or renders the Kubernetes Job.
func (p *Project) Train(ctx context.Context, req TrainRequest) (*Training, error) {
	if req.Kubernetes && !req.DryRun {
		return nil, errkind.New(errkind.Usage, "--backend kubernetes renders the Job manifest only in this build: add --dry-run and apply it with kubectl apply -f -")
	}
	if req.Dataset != "" && req.Entities != "" {
		return nil, errkind.New(errkind.Usage, "give --dataset or --entities, not both")
	}
	snap, err := p.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	job := snap.Repo.TrainingJob(req.Job)
	if job == nil {
		return nil, snap.Repo.UnknownError(definitions.KindTrainingJob, req.Job)
	}
	out := &Training{Job: job}
	if out.Params, err = training.ResolveParams(job, req.Params); err != nil {
		return nil, err
	}
	var k8s training.KubernetesJob
	if req.Kubernetes {
		// Checked before any work: a Job Kubernetes would refuse is refused here.
		runID := "r" + time.Now().UTC().Format("20060102t150405")
		k8s = training.KubernetesJob{
			Project: p.Name(), Job: job.Name, RunID: runID, Image: job.Image, Namespace: req.Namespace,
			Command: job.Command, Env: job.Env, Params: out.Params, GPU: job.Resources.GPU, CPU: job.Resources.CPU,
			Memory: job.Resources.Memory, Retries: job.Retries, NodeSelector: job.NodeSelector,
			OutputURI: p.runOutputURI(runID),
		}
		if err := training.ValidateKubernetesJob(k8s); err != nil {
			return nil, err
		}
	}
	if out.Dataset, out.DatasetDir, err = p.trainDataset(ctx, job, req); err != nil {
		return nil, err
	}
	if req.Kubernetes {
		k8s.DatasetURI = out.DatasetDir
		manifest, err := training.RenderKubernetesJob(k8s)
		if err != nil {
			return nil, err
		}
		out.Kubernetes = &KubernetesJob{RunID: k8s.RunID, Manifest: manifest, LocalPaths: training.LocalLocations(k8s)}
		if out.Dataset.Version == 0 {
			p.notice("Dry run: no dataset was built; QUIVER_DATASET_DIR is %s, under which quiver train builds (or reuses) the job's dataset. Pass --dataset NAME@vN to pin a version.", out.DatasetDir)
		}
		if paths := out.Kubernetes.LocalPaths; len(paths) > 0 {
			p.notice("Warning: the Job uses local paths (%s) that a pod cannot read or write unless they are mounted into it at the same place; put the warehouse on object storage (offline.warehouse: s3://...) or mount it.", strings.Join(paths, ", "))
		}
		return out, nil
	}
	if req.DryRun {
		return out, nil
	}
	return out, p.runJob(ctx, out, req)
}

// runJob runs the job of t on its dataset and fills in the run, its metrics and model.
func (p *Project) runJob(ctx context.Context, t *Training, req TrainRequest) error {
	lease, err := p.Lease()
	if err != nil {
		return err
	}
	if err := p.Reap(ctx); err != nil {
		return err
	}
	snap, err := p.Catalog(ctx)
	if err != nil {
		return err
	}
	reg, err := p.Registry(ctx)
	if err != nil {
		return err
	}
	job := t.Job
	var model *definitions.Model
	if job.RegisterModel != "" {
		model = snap.Repo.Model(job.RegisterModel)
	}
	commit, dirty, diffHash := GitState(ctx, p.Config.Root)
	recorded := commit
	if dirty {
		recorded = registry.GitDirty
	}
	host, _ := os.Hostname()
	info := training.RunInfo{GitCommit: commit, GitDirty: dirty, GitDiffSHA256: diffHash, DatasetID: t.Dataset.ContentID,
		QuiverVersion: p.opts.Version, Host: host, Definitions: training.RunDefinitions(snap, job)}
	began := time.Now()
	t.Run, err = training.RunJob(ctx, reg, training.JobRequest{
		Project: p.Name(), Job: job, Model: model, Params: req.Params, Dataset: t.Dataset, DatasetDir: t.DatasetDir,
		Warehouse: p.FilesDir(), WorkDir: p.Config.Root, Info: info, GitCommit: recorded, CreatedBy: p.Actor(),
		Stdout: req.Output, Stderr: req.Output, GPUs: training.DetectGPUs(ctx), Heartbeat: registry.HeartbeatInterval(lease),
		TempDir: p.tempDir(), Supervisor: req.Supervisor,
	})
	t.Took = time.Since(began)
	if perr := p.pushArtifact(ctx, reg, t.Run.ID); perr != nil {
		err = errors.Join(err, perr)
	}
	if err != nil {
		return err
	}
	t.Metrics, _ = reg.MetricSummaries(ctx, t.Run.ID)
	if model != nil {
		if versions, err := reg.ListModelVersions(ctx, p.Name(), model.Name); err == nil {
			for i := range versions {
				if versions[i].RunID == t.Run.ID {
					t.Model = &versions[i]
				}
			}
		}
	}
	return nil
}

// trainDataset resolves the dataset a training run uses: the named version, or one built (or
// reused) from the entity file.
func (p *Project) trainDataset(ctx context.Context, job *definitions.TrainingJob, req TrainRequest) (registry.Dataset, string, error) {
	if req.Dataset != "" {
		return p.Dataset(ctx, req.Dataset)
	}
	entities := req.Entities
	if entities == "" {
		switch {
		case job.Entities != nil && job.Entities.Path != "":
			path, err := definitions.PathPolicy{Root: p.Config.Root, Allowed: p.Config.AllowedPaths}.Resolve(job.Entities.Path)
			if err != nil {
				return registry.Dataset{}, "", fmt.Errorf("training job %q entities: %w", job.Name, err)
			}
			entities = path
		case job.Entities != nil && job.Entities.SQL != "":
			return registry.Dataset{}, "", errkind.Errorf(errkind.Usage, "training job %q reads its entities with SQL, which needs the Trino engine this build does not have; pass --entities FILE or --dataset NAME@vN", job.Name)
		default:
			return registry.Dataset{}, "", errkind.Errorf(errkind.Usage, "training job %q declares no entities: input; pass --entities FILE or --dataset NAME@vN", job.Name)
		}
	}
	if req.DryRun {
		// A dry run builds nothing: it checks that the entity rows are there and names the
		// dataset the run would build or reuse.
		if _, err := os.Stat(entities); err != nil {
			return registry.Dataset{}, "", errkind.Errorf(errkind.Invalid, "training job %q entities: %w", job.Name, err)
		}
		return registry.Dataset{Name: job.Name}, training.DatasetsDir(p.FilesDir(), p.Name()), nil
	}
	res, err := p.CreateDataset(ctx, DatasetRequest{Name: job.Name, Service: job.FeatureService, Entities: entities})
	if err != nil {
		return registry.Dataset{}, "", err
	}
	if res.Reused {
		p.notice("Dataset cache hit: reusing %s@v%d (content id %s), built from the same inputs.", res.Dataset.Name, res.Dataset.Version, shortID(res.Dataset.ContentID))
	} else {
		p.notice("Built dataset %s@v%d: %d rows (content id %s).", res.Dataset.Name, res.Dataset.Version, res.Dataset.Rows, shortID(res.Dataset.ContentID))
	}
	return res.Dataset, res.Dir, nil
}

// WriteText says what the run did (or, for a dry run, would do), for people: its status,
// metrics and the model it registered.
func (t *Training) WriteText(w io.Writer) {
	ds, job := t.Dataset, t.Job
	switch {
	case t.Run.ID == "" && ds.Version == 0:
		fmt.Fprintf(w, "Dry run: would build (or reuse) a dataset %q from the job's entity rows, then run %q with params %v, command %s\n",
			ds.Name, job.Name, t.Params, strings.Join(job.Command, " "))
	case t.Run.ID == "":
		fmt.Fprintf(w, "Dry run: would run %q on %s@v%d (%s) with params %v, command %s\n",
			job.Name, ds.Name, ds.Version, shortID(ds.ContentID), t.Params, strings.Join(job.Command, " "))
	default:
		fmt.Fprintf(w, "Run %s %s in %.1fs (attempt %d), on %s@v%d\n", t.Run.ID, t.Run.Status, t.Took.Seconds(), t.Run.Attempt, ds.Name, ds.Version)
		for _, s := range t.Metrics {
			fmt.Fprintf(w, "  %s: last %.4g (step %d), min %.4g, max %.4g\n", s.Name, s.Last.Value, s.Last.Step, s.Min, s.Max)
		}
		if m := t.Model; m != nil {
			fmt.Fprintf(w, "Registered model %s v%d (%s)\n", m.Name, m.Version, m.ArtifactURI)
		}
	}
}

// runOutputURI is where a Kubernetes Job's trainer writes its outputs: the project's runs/ID/output
// under the warehouse, a URL on object storage (the pod writes there itself).
func (p *Project) runOutputURI(runID string) string {
	wh := p.Config.Offline.Warehouse
	if IsObjectStore(wh) {
		return strings.TrimSuffix(wh, "/") + "/" + path.Join("projects", iceberg.ProjectKey(p.Name()), "runs", runID, "output")
	}
	return filepath.Join(training.ProjectDir(p.FilesDir(), p.Name()), "runs", runID, "output")
}

// pushArtifact copies a run's artifact folder (its outputs and log) to an object-store
// warehouse, beside the dataset snapshots (nothing with a local warehouse).
func (p *Project) pushArtifact(ctx context.Context, reg registry.Store, id registry.TrainingRunID) error {
	r := p.remote()
	if r == nil || id == "" {
		return nil
	}
	tags, err := reg.RunTags(ctx, id)
	if err != nil {
		return fmt.Errorf("run %s: %w", id, err)
	}
	dir := tags[training.TagArtifactURI]
	if dir == "" {
		return nil
	}
	if err := r.Push(ctx, p.FilesDir(), dir); err != nil {
		return fmt.Errorf("run %s: its artifact is on local disk (%s) but not in the warehouse: %w", id, dir, err)
	}
	return nil
}
