package training

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/errkind"
	"github.com/quiverfs/quiver/registry"
)

// Runs is the part of the registry the job runner needs.
type Runs interface {
	CreateTrainingRun(ctx context.Context, r registry.TrainingRun) (registry.TrainingRun, error)
	FinishTrainingRun(ctx context.Context, id registry.TrainingRunID, status registry.TrainingStatus, exitCode int) (registry.TrainingRun, error)
	SetRunParams(ctx context.Context, id registry.TrainingRunID, params map[string]string) error
	SetRunTags(ctx context.Context, id registry.TrainingRunID, tags map[string]string) error
	LogMetrics(ctx context.Context, id registry.TrainingRunID, points []registry.Metric) error
	CreateModelVersion(ctx context.Context, m registry.ModelVersion) (registry.ModelVersion, error)
	HeartbeatTrainingRun(ctx context.Context, id registry.TrainingRunID) error
}

// Environment variables a training job is started with.
const (
	EnvRunID       = "QUIVER_RUN_ID"
	EnvDatasetDir  = "QUIVER_DATASET_DIR"
	EnvOutputDir   = "QUIVER_OUTPUT_DIR"
	EnvMetricsFile = "QUIVER_METRICS_FILE"
	EnvParams      = "QUIVER_PARAMS"
)

// ModelFile is the file a job writes into its output directory for register_model.
const ModelFile = "model.onnx"

// Tags the runner sets on every run.
const (
	TagArtifactURI = "quiver.artifact_uri"
	TagLogFile     = "quiver.log"
	// TagProcessGroup records where the attempt's processes run (ProcessGroup, as JSON), so
	// that the reaper can kill them when the run is abandoned.
	TagProcessGroup = "quiver.process_group"
)

// ErrGPUs is returned when a job asks for more GPUs than the host has.
var ErrGPUs = errkind.New(errkind.Invalid, "not enough GPUs")

// JobRequest is one `quiver train`.
type JobRequest struct {
	Project string
	Job     *definitions.TrainingJob
	// Model is the model the job registers a version of (nil without register_model).
	Model *definitions.Model
	// Params overrides the job's parameter defaults; values are parsed to the declared types.
	Params map[string]string
	// Dataset is the snapshot the job trains on.
	Dataset    registry.Dataset
	DatasetDir string
	// Warehouse is the warehouse root; outputs go to the project's content-addressed
	// projects/PROJECT/artifacts/ (see ProjectDir).
	Warehouse string
	// WorkDir is where the command runs (the feature repo).
	WorkDir string
	// Info is recorded with the run for reproducibility (git commit, definition versions, ...).
	Info      RunInfo
	GitCommit string
	CreatedBy string
	// Stdout and Stderr receive the job's output as it runs (also kept as an artifact).
	Stdout, Stderr io.Writer
	// GPUs is how many GPUs the host has (see DetectGPUs).
	GPUs []GPU
	// MetricsPoll is how often the metrics file is read; default 250ms.
	MetricsPoll time.Duration
	// KillGrace is how long a job has to exit after SIGINT before it is killed; default 10s.
	KillGrace time.Duration
	// TempDir is where attempts make their quiver-run-* folders (and where those of killed
	// runs are removed); default os.TempDir().
	TempDir string
	// Heartbeat is how often a running attempt tells the registry it is alive; default
	// registry.HeartbeatInterval(registry.DefaultLease).
	Heartbeat time.Duration
	// Supervisor is the quiver binary, which runs a job supervisor when started with
	// SupervisorArg (see Supervise): it ends the job's whole process group, and on Linux
	// every descendant, when the job exits, when it is killed and when this process dies,
	// even by kill -9. Empty: the job runs directly in a process group of its own, and only
	// its first process dies with quiver (on Linux); the rest is left to the reaper.
	Supervisor string
}

// RunInfo is what makes a run reproducible, stored as the run's Info JSON.
type RunInfo struct {
	GitCommit     string            `json:"git_commit"`
	GitDirty      bool              `json:"git_dirty"`
	GitDiffSHA256 string            `json:"git_diff_sha256,omitempty"`
	Definitions   map[string]int    `json:"definitions"` // "feature_service/churn_v1": 3
	DatasetID     string            `json:"dataset_content_id"`
	Command       []string          `json:"command"`
	Params        map[string]string `json:"params"`
	QuiverVersion string            `json:"quiver_version"`
	Host          string            `json:"host"`
	GPUs          []GPU             `json:"gpus,omitempty"`
	Attempt       int               `json:"attempt"`
}

// GPU is one GPU of the host, as nvidia-smi reports it.
type GPU struct {
	Index   int    `json:"index"`
	Name    string `json:"name"`
	Driver  string `json:"driver"`
	MemoryM int    `json:"memory_mib"`
}

// DetectGPUs asks nvidia-smi for the host's GPUs; none when it is absent or fails.
func DetectGPUs(ctx context.Context) []GPU {
	out, err := exec.CommandContext(ctx, "nvidia-smi", "--query-gpu=index,name,driver_version,memory.total", "--format=csv,noheader,nounits").Output()
	if err != nil {
		return nil
	}
	var gpus []GPU
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 4 {
			continue
		}
		idx, _ := strconv.Atoi(strings.TrimSpace(f[0]))
		mem, _ := strconv.Atoi(strings.TrimSpace(f[3]))
		gpus = append(gpus, GPU{Index: idx, Name: strings.TrimSpace(f[1]), Driver: strings.TrimSpace(f[2]), MemoryM: mem})
	}
	return gpus
}

// ResolveParams merges overrides into the job's declared defaults, checking names and types.
// Every declared parameter must end with a value.
func ResolveParams(job *definitions.TrainingJob, overrides map[string]string) (map[string]any, error) {
	out := map[string]any{}
	for name, p := range job.Params {
		if p.Default != nil {
			out[name] = p.Default
		}
	}
	for name, s := range overrides {
		p, ok := job.Params[name]
		if !ok {
			names := make([]string, 0, len(job.Params))
			for n := range job.Params {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("%w: training job %q has no param %q (its params: %s)%s", ErrInvalidParam, job.Name, name, strings.Join(names, ", "), definitions.Suggest(name, names))
		}
		v, err := definitions.ParseParam(p.Type, s)
		if err != nil {
			return nil, fmt.Errorf("%w: --param %s=%s: %w", ErrInvalidParam, name, s, err)
		}
		out[name] = v
	}
	for name := range job.Params {
		if _, ok := out[name]; !ok {
			return nil, fmt.Errorf("%w: training job %q param %q has no default; pass --param %s=VALUE", ErrInvalidParam, job.Name, name, name)
		}
	}
	return out, nil
}

// RunJob runs a training job locally: it creates a run per attempt, launches the command with
// the QUIVER_* environment, streams its output, collects metrics while it runs, retries a
// failure up to the job's retries, forwards cancellation (Ctrl-C) as SIGINT, keeps the output
// directory as a content-addressed artifact, and registers a model version when asked. It
// returns the last attempt's run.
func RunJob(ctx context.Context, runs Runs, req JobRequest) (registry.TrainingRun, error) {
	job := req.Job
	if len(job.Command) == 0 {
		return registry.TrainingRun{}, fmt.Errorf("%w: training job %q has no command", ErrInvalidJob, job.Name)
	}
	if job.Resources.GPU > len(req.GPUs) {
		return registry.TrainingRun{}, fmt.Errorf("%w: training job %q asks for %d GPU(s) (resources.gpu) but this host has %d; run it on a GPU host or with --backend kubernetes", ErrGPUs, job.Name, job.Resources.GPU, len(req.GPUs))
	}
	params, err := ResolveParams(job, req.Params)
	if err != nil {
		return registry.TrainingRun{}, err
	}
	paramsJSON, _ := json.Marshal(params)
	paramText := map[string]string{}
	for k, v := range params {
		paramText[k] = fmt.Sprint(v)
	}
	if req.MetricsPoll <= 0 {
		req.MetricsPoll = 250 * time.Millisecond
	}
	if req.KillGrace <= 0 {
		req.KillGrace = 10 * time.Second
	}
	var run registry.TrainingRun
	for attempt := 1; attempt <= job.Retries+1; attempt++ {
		var retry bool
		run, retry, err = runAttempt(ctx, runs, req, attempt, paramText, string(paramsJSON))
		if err != nil && run.ID != "" {
			err = errkind.Mark(errkind.Failed, err) // the run is recorded: it ran and failed
		}
		if !retry || attempt == job.Retries+1 {
			return run, err
		}
		fmt.Fprintf(req.Stderr, "quiver: attempt %d of %d failed with exit code %d; retrying\n", attempt, job.Retries+1, run.ExitCode)
	}
	return run, nil
}

// runAttempt runs the command once. retry reports a failure worth retrying.
func runAttempt(ctx context.Context, runs Runs, req JobRequest, attempt int, params map[string]string, paramsJSON string) (registry.TrainingRun, bool, error) {
	job := req.Job
	info := req.Info
	info.Attempt, info.Params, info.Command, info.GPUs = attempt, params, job.Command, req.GPUs
	infoJSON, _ := json.Marshal(info)
	run, err := runs.CreateTrainingRun(ctx, registry.TrainingRun{
		Project: req.Project, Job: job.Name, Attempt: attempt,
		DatasetName: req.Dataset.Name, DatasetVersion: req.Dataset.Version, DatasetContentID: req.Dataset.ContentID,
		GitCommit: req.GitCommit, Info: infoJSON, CreatedBy: req.CreatedBy,
	})
	if err != nil {
		return run, false, fmt.Errorf("record training run: %w", err)
	}
	stopBeat := heartbeat(ctx, req.Heartbeat, func(ctx context.Context) error { return runs.HeartbeatTrainingRun(ctx, run.ID) })
	defer stopBeat()
	if err := runs.SetRunParams(ctx, run.ID, params); err != nil {
		return run, false, fmt.Errorf("record params of run %s: %w", run.ID, err)
	}
	RemoveStaleWorkDirs(req.TempDir, req.Project)
	work, err := newWorkDir(req.TempDir, req.Project)
	if err != nil {
		return run, false, err
	}
	defer os.RemoveAll(work)
	outDir := filepath.Join(work, "output")
	metricsFile := filepath.Join(work, "metrics.jsonl")
	logFile := filepath.Join(outDir, "quiver-job.log")
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return run, false, err
	}
	if err := os.WriteFile(metricsFile, nil, 0o644); err != nil {
		return run, false, err
	}
	logf, err := os.Create(logFile)
	if err != nil {
		return run, false, err
	}
	defer logf.Close()

	path, err := commandPath(job.Command[0], req.WorkDir)
	if err != nil {
		return startFailed(ctx, runs, run, job, err)
	}
	cmd := &exec.Cmd{Path: path, Args: job.Command, SysProcAttr: jobProcAttr()}
	if req.Supervisor != "" {
		// The supervisor leads the job's process group and ends all of it (see Supervise).
		cmd = &exec.Cmd{Path: req.Supervisor, SysProcAttr: supervisorProcAttr(),
			Args: append([]string{req.Supervisor, SupervisorArg, strconv.Itoa(os.Getpid()), path}, job.Command...)}
	}
	cmd.Dir = req.WorkDir
	cmd.Env = append(os.Environ(),
		EnvRunID+"="+string(run.ID),
		EnvDatasetDir+"="+req.DatasetDir,
		EnvOutputDir+"="+outDir,
		EnvMetricsFile+"="+metricsFile,
		EnvParams+"="+paramsJSON,
		"CUDA_VISIBLE_DEVICES="+visibleDevices(job.Resources.GPU, req.GPUs),
	)
	for k, v := range job.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logMu sync.Mutex
	cmd.Stdout = io.MultiWriter(req.Stdout, &lockedWriter{w: logf, mu: &logMu})
	cmd.Stderr = io.MultiWriter(req.Stderr, &lockedWriter{w: logf, mu: &logMu})
	// A process the job left behind may hold its output open: once the job has exited, its
	// output is read for at most this long.
	cmd.WaitDelay = 5 * time.Second
	// The job (or its supervisor) is in its own process group, so Ctrl-C reaches it through
	// us, once, and the whole group can be signalled. Its parent-death signal is sent when the
	// thread that started it exits, not the process: the goroutine that starts and waits for
	// it keeps its thread until then.
	started := make(chan error, 1)
	waitErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waitErr <- cmd.Wait()
	}()
	if err := <-started; err != nil {
		return startFailed(ctx, runs, run, job, err)
	}
	pgid := cmd.Process.Pid
	if pg, err := json.Marshal(ThisProcessGroup(pgid)); err == nil {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		if err := runs.SetRunTags(tctx, run.ID, map[string]string{TagProcessGroup: string(pg)}); err != nil {
			fmt.Fprintf(req.Stderr, "quiver: run %s: record its process group: %v\n", run.ID, err)
		}
		cancel()
	}

	// Collect metrics while the job runs.
	tail := &metricsTail{path: metricsFile, runs: runs, run: run.ID}
	stopTail := make(chan struct{})
	tailDone := make(chan struct{})
	go func() {
		defer close(tailDone)
		t := time.NewTicker(req.MetricsPoll)
		defer t.Stop()
		for {
			select {
			case <-stopTail:
				return
			case <-t.C:
				tail.poll(context.WithoutCancel(ctx))
			}
		}
	}()

	killed := false
	var werr error
	select {
	case werr = <-waitErr:
	case <-ctx.Done():
		killed = true
		_ = syscall.Kill(-pgid, syscall.SIGINT)
		select {
		case werr = <-waitErr:
		case <-time.After(req.KillGrace):
			werr = killJob(pgid, req.Supervisor != "", waitErr)
		}
	}
	// Whatever is left of the group: a job whose supervisor was killed from outside, or
	// what a job run without one left behind.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	close(stopTail)
	<-tailDone
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	tail.poll(finishCtx) // whatever was written last
	if tail.err != nil {
		fmt.Fprintf(req.Stderr, "quiver: run %s: %v\n", run.ID, tail.err)
	}

	exitCode := 0
	var exitErr *exec.ExitError
	switch {
	case werr == nil, errors.Is(werr, exec.ErrWaitDelay): // exited 0; its output was cut off
	case errors.As(werr, &exitErr):
		exitCode = exitErr.ExitCode()
		if exitCode < 0 { // killed by a signal
			exitCode = 128 + int(exitErr.Sys().(syscall.WaitStatus).Signal())
		}
	default:
		exitCode = 1
	}
	logf.Close()

	tags := map[string]string{}
	artifact, artErr := storeArtifact(outDir, ProjectDir(req.Warehouse, req.Project))
	if artErr == nil {
		tags[TagArtifactURI] = artifact
		tags[TagLogFile] = filepath.Join(artifact, "quiver-job.log")
	}
	if len(tags) > 0 {
		if err := runs.SetRunTags(finishCtx, run.ID, tags); err != nil {
			return run, false, fmt.Errorf("tag run %s: %w", run.ID, err)
		}
	}
	status := registry.TrainingFinished
	switch {
	case killed:
		status = registry.TrainingKilled
	case exitCode != 0:
		status = registry.TrainingFailed
	}
	run, err = runs.FinishTrainingRun(finishCtx, run.ID, status, exitCode)
	if err != nil {
		return run, false, fmt.Errorf("finish run: %w", err)
	}
	switch status {
	case registry.TrainingKilled:
		return run, false, fmt.Errorf("training job %q was interrupted: run %s KILLED", job.Name, run.ID)
	case registry.TrainingFailed:
		return run, true, fmt.Errorf("training job %q failed with exit code %d (run %s)", job.Name, exitCode, run.ID)
	}
	if artErr != nil {
		return run, false, fmt.Errorf("keep the output of run %s: %w", run.ID, artErr)
	}
	if req.Model != nil {
		model := filepath.Join(artifact, ModelFile)
		sum, err := HashFile(model)
		if err != nil {
			return run, false, fmt.Errorf("training job %q registers model %q but wrote no %s in $%s: %w", job.Name, req.Model.Name, ModelFile, EnvOutputDir, err)
		}
		if _, err := runs.CreateModelVersion(finishCtx, registry.ModelVersion{
			Project: req.Project, Name: req.Model.Name, RunID: run.ID, ArtifactURI: model, ArtifactHash: "sha256:" + sum,
			Runtime: req.Model.Runtime, FeatureService: job.FeatureService, CreatedBy: req.CreatedBy,
		}); err != nil {
			return run, false, fmt.Errorf("register model %q: %w", req.Model.Name, err)
		}
	}
	return run, false, nil
}

// killJob ends a job that outlived its kill grace and returns its Wait error: through its
// supervisor, which kills the group and every descendant (SIGTERM), or by SIGKILL to the
// group when there is none or it does not exit within 5 seconds.
func killJob(pgid int, supervised bool, waitErr <-chan error) error {
	if supervised {
		_ = syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case err := <-waitErr:
			return err
		case <-time.After(5 * time.Second):
		}
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	return <-waitErr
}

// startFailed records a run whose command could not be started as FAILED with exit code 127.
func startFailed(ctx context.Context, runs Runs, run registry.TrainingRun, job *definitions.TrainingJob, err error) (registry.TrainingRun, bool, error) {
	finishCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	run, _ = runs.FinishTrainingRun(finishCtx, run.ID, registry.TrainingFailed, 127)
	return run, false, fmt.Errorf("%w: start training job %q: %w", ErrInvalidJob, job.Name, err)
}

// commandPath is the executable a job's command runs: a name without a slash is looked up
// in $PATH; a relative path is relative to the job's working directory dir. A path is
// returned absolute, as the process that runs it starts in dir.
func commandPath(name, dir string) (string, error) {
	if !strings.ContainsRune(name, '/') {
		return exec.LookPath(name)
	}
	if !filepath.IsAbs(name) && dir != "" {
		name = filepath.Join(dir, name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	return filepath.Abs(p)
}

// visibleDevices is CUDA_VISIBLE_DEVICES for n GPUs: the first n indexes, or "" (none).
func visibleDevices(n int, gpus []GPU) string {
	ids := make([]string, 0, n)
	for i := 0; i < n && i < len(gpus); i++ {
		ids = append(ids, strconv.Itoa(gpus[i].Index))
	}
	return strings.Join(ids, ",")
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// metricsTail reads new JSON lines from a metrics file and logs them to the registry.
type metricsTail struct {
	path   string
	runs   Runs
	run    registry.TrainingRunID
	offset int64
	step   int64
	err    error
}

type metricLine struct {
	Key   string   `json:"key"`
	Value *float64 `json:"value"`
	Step  *int64   `json:"step"`
}

func (m *metricsTail) poll(ctx context.Context) {
	f, err := os.Open(m.path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(m.offset, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReader(f)
	var points []registry.Metric
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // a partial last line is read next time
		}
		m.offset += int64(len(line))
		var ml metricLine
		if jerr := json.Unmarshal(line, &ml); jerr != nil || ml.Key == "" || ml.Value == nil {
			m.err = fmt.Errorf("metrics file: skipped a line that is not {\"key\": ..., \"value\": ..., \"step\": ...}: %q", strings.TrimSpace(string(line)))
			continue
		}
		step := m.step
		if ml.Step != nil {
			step = *ml.Step
		}
		m.step = step + 1
		points = append(points, registry.Metric{Name: ml.Key, Value: *ml.Value, Step: step, Time: time.Now().UTC()})
	}
	if len(points) > 0 {
		if err := m.runs.LogMetrics(ctx, m.run, points); err != nil {
			m.err = fmt.Errorf("log metrics: %w", err)
		}
	}
}

// storeArtifact copies a directory into root/artifacts/sha256-<tree hash>/, where the
// tree hash covers every file's path and content. The same output lands in the same place.
func storeArtifact(dir, root string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	tree := sha256.New()
	for _, f := range files {
		sum, err := HashFile(f)
		if err != nil {
			return "", err
		}
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(tree, "%s %s\n", sum, filepath.ToSlash(rel))
	}
	dest := filepath.Join(root, "artifacts", "sha256-"+hex.EncodeToString(tree.Sum(nil)))
	if _, err := os.Stat(dest); err == nil {
		return dest, nil // already stored
	}
	tmp := dest + ".tmp-" + strconv.Itoa(os.Getpid())
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tmp, rel)), 0o755); err != nil {
			return "", err
		}
		if err := copyFile(f, filepath.Join(tmp, rel)); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil { // an empty output still gets a directory
		return "", err
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.RemoveAll(tmp)
		if _, serr := os.Stat(dest); serr == nil {
			return dest, nil // stored concurrently by someone else
		}
		return "", err
	}
	return dest, nil
}
