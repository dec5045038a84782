package registry

import (
	"context"
	"encoding/json"
	"time"
)

// TrainingStore records training runs: status, params (write-once), metrics (append-only,
// read in pages) and tags.
type TrainingStore interface {
	// CreateTrainingRun records a new RUNNING run and returns it with StartedAt set (and ID,
	// when empty, set to a new random id). ErrConflict when the id is taken.
	CreateTrainingRun(ctx context.Context, r TrainingRun) (TrainingRun, error)
	// FinishTrainingRun ends a RUNNING run as FINISHED, FAILED or KILLED with the process's
	// exit code. ErrNotFound for an unknown id; ErrConflict when it already ended.
	FinishTrainingRun(ctx context.Context, id TrainingRunID, status TrainingStatus, exitCode int) (TrainingRun, error)
	// GetTrainingRun returns one run; ErrNotFound when unknown.
	GetTrainingRun(ctx context.Context, id TrainingRunID) (TrainingRun, error)
	// ListTrainingRuns returns runs matching the filter, newest first.
	ListTrainingRuns(ctx context.Context, f TrainingRunFilter) ([]TrainingRun, error)

	// SetRunParams records params. A param is written once: setting it again to the same
	// value is a no-op, to another value is ErrConflict (and nothing of the call is written).
	SetRunParams(ctx context.Context, id TrainingRunID, params map[string]string) error
	// RunParams returns a run's params (empty map when none).
	RunParams(ctx context.Context, id TrainingRunID) (map[string]string, error)
	// SetRunTags sets tags, replacing earlier values of the same keys.
	SetRunTags(ctx context.Context, id TrainingRunID, tags map[string]string) error
	// RunTags returns a run's tags (empty map when none).
	RunTags(ctx context.Context, id TrainingRunID) (map[string]string, error)

	// LogMetrics appends metric points to a run; points are never changed or removed. A zero
	// Time is set to now.
	LogMetrics(ctx context.Context, id TrainingRunID, points []Metric) error
	// Metrics returns one page of a run's metric points in the order they were logged.
	Metrics(ctx context.Context, id TrainingRunID, q MetricQuery) ([]Metric, error)
	// MetricSummaries returns, per metric name, the count, min, max and last point.
	MetricSummaries(ctx context.Context, id TrainingRunID) ([]MetricSummary, error)
}

// TrainingRunID identifies a training run (QUIVER_RUN_ID).
type TrainingRunID string

// TrainingStatus is the state of a training run.
type TrainingStatus string

// Training run states.
const (
	TrainingRunning  TrainingStatus = "RUNNING"
	TrainingFinished TrainingStatus = "FINISHED"
	TrainingFailed   TrainingStatus = "FAILED"
	TrainingKilled   TrainingStatus = "KILLED"
)

// TrainingRun is one attempt of a training job.
type TrainingRun struct {
	ID      TrainingRunID
	Project string
	Job     string
	Status  TrainingStatus
	Attempt int // 1 for the first attempt, 2 for the first retry, ...
	// ExitCode is the job's exit status; meaningful once the run ended.
	ExitCode         int
	DatasetName      string
	DatasetVersion   int
	DatasetContentID string
	GitCommit        string // the feature repo's commit, or GitDirty
	// Info is JSON describing the run for reproducibility: command, host, GPUs, definition
	// versions, Quiver version, the diff hash of a dirty repo. Stored as given.
	Info       json.RawMessage
	CreatedBy  string
	StartedAt  time.Time
	FinishedAt time.Time // zero while running
	// Error says why a run FAILED when no exit code does: AbandonedReason for a run reaped
	// after its process died. Empty otherwise.
	Error string
}

// TrainingRunFilter selects training runs. Empty fields match everything; Limit <= 0 means all.
type TrainingRunFilter struct {
	Project string
	Job     string
	Status  TrainingStatus
	Limit   int
}

// Metric is one logged value of a named metric at a step.
type Metric struct {
	Name  string
	Step  int64
	Value float64
	Time  time.Time
	// Seq orders points in the order they were logged; set by the store. It is the cursor
	// for MetricQuery.AfterSeq.
	Seq int64
}

// MaxMetricPage is the largest page Metrics returns.
const MaxMetricPage = 10000

// MetricQuery selects a page of metric points: those after AfterSeq, of Name (all names when
// empty), at most Limit (1000 when <= 0, never more than MaxMetricPage).
type MetricQuery struct {
	Name     string
	AfterSeq int64
	Limit    int
}

// MetricSummary summarizes one metric of a run.
type MetricSummary struct {
	Name     string
	Count    int64
	Min, Max float64
	Last     Metric // the point with the greatest step (the latest logged among equal steps)
}

// ModelStore is the model registry: versions of named models and aliases that point at them.
type ModelStore interface {
	// CreateModelVersion registers m as the next version of m.Name (1, 2, ...) and returns it
	// with Version and CreatedAt set.
	CreateModelVersion(ctx context.Context, m ModelVersion) (ModelVersion, error)
	// GetModelVersion returns one version; version 0 means the latest. ErrNotFound when none.
	GetModelVersion(ctx context.Context, project, name string, version int) (ModelVersion, error)
	// ListModelVersions returns versions by name then version; an empty name lists all models.
	ListModelVersions(ctx context.Context, project, name string) ([]ModelVersion, error)
	// ModelVersionsTrainedOn returns the project's model versions whose training run read
	// version datasetVersion of dataset datasetName, by name then version.
	ModelVersionsTrainedOn(ctx context.Context, project, datasetName string, datasetVersion int) ([]ModelVersion, error)
	// SetModelAlias points an alias at a version, atomically, recording who moved it in the
	// alias's audit trail. ErrNotFound when the version does not exist.
	SetModelAlias(ctx context.Context, u AliasUpdate) (ModelAlias, error)
	// DeleteModelAlias removes an alias (recorded in the audit trail). ErrNotFound when unset.
	DeleteModelAlias(ctx context.Context, project, name, alias, by string) error
	// ResolveModelAlias returns the version an alias points at; ErrNotFound when unset.
	ResolveModelAlias(ctx context.Context, project, name, alias string) (ModelVersion, error)
	// ListModelAliases returns a model's aliases by alias name; all models' when name is empty.
	ListModelAliases(ctx context.Context, project, name string) ([]ModelAlias, error)
	// ModelAliasHistory returns every move of an alias, oldest first.
	ModelAliasHistory(ctx context.Context, project, name, alias string) ([]AliasEvent, error)
}

// ModelVersion is one registered version of a model.
type ModelVersion struct {
	Project        string
	Name           string
	Version        int // set by CreateModelVersion
	RunID          TrainingRunID
	ArtifactURI    string // where the model file is
	ArtifactHash   string
	Runtime        string // onnx, oip
	FeatureService string
	Description    string
	CreatedAt      time.Time
	CreatedBy      string
}

// AliasUpdate moves (or creates) an alias.
type AliasUpdate struct {
	Project string
	Name    string
	Alias   string
	Version int
	By      string
}

// ModelAlias is a named pointer at a model version (churn@production).
type ModelAlias struct {
	Project   string
	Name      string
	Alias     string
	Version   int
	UpdatedAt time.Time
	UpdatedBy string
}

// AliasEvent is one entry of an alias's audit trail. FromVersion 0: the alias was created;
// ToVersion 0: it was removed.
type AliasEvent struct {
	Project     string
	Name        string
	Alias       string
	FromVersion int
	ToVersion   int
	ChangedAt   time.Time
	ChangedBy   string
}
