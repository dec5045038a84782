package main

// The -o json shape of every result: one struct per object (a model version prints the same
// everywhere), built from the domain types, which carry no json tags (or whose stored
// encoding must not change, like a dataset manifest). Every key is snake_case; 64-bit ids
// are strings (idString).

import (
	"encoding/json"
	"time"

	"github.com/quiverfs/quiver/project"
	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

type trainingRunJSON struct {
	ID               string          `json:"id"`
	Project          string          `json:"project"`
	Job              string          `json:"job"`
	Status           string          `json:"status"`
	Attempt          int             `json:"attempt"`
	ExitCode         int             `json:"exit_code"`
	DatasetName      string          `json:"dataset_name"`
	DatasetVersion   int             `json:"dataset_version"`
	DatasetContentID string          `json:"dataset_content_id"`
	GitCommit        string          `json:"git_commit,omitempty"`
	Info             json.RawMessage `json:"info,omitempty"`
	CreatedBy        string          `json:"created_by"`
	StartedAt        time.Time       `json:"started_at"`
	FinishedAt       *time.Time      `json:"finished_at,omitempty"` // absent while running
	// Error is why a run FAILED ("abandoned" for a run reaped after its heartbeat stopped).
	Error string `json:"error,omitempty"`
}

func toTrainingRunJSON(r registry.TrainingRun, withInfo bool) trainingRunJSON {
	out := trainingRunJSON{ID: string(r.ID), Project: r.Project, Job: r.Job, Status: string(r.Status), Attempt: r.Attempt,
		ExitCode: r.ExitCode, DatasetName: r.DatasetName, DatasetVersion: r.DatasetVersion, DatasetContentID: r.DatasetContentID,
		GitCommit: r.GitCommit, CreatedBy: r.CreatedBy, StartedAt: r.StartedAt.UTC(), Error: r.Error}
	if withInfo && json.Valid(r.Info) {
		out.Info = r.Info
	}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	return out
}

type metricPointJSON struct {
	Step  int64     `json:"step"`
	Value float64   `json:"value"`
	Time  time.Time `json:"time"`
}

type metricSummaryJSON struct {
	Name  string          `json:"name"`
	Count int64           `json:"count"`
	Min   float64         `json:"min"`
	Max   float64         `json:"max"`
	Last  metricPointJSON `json:"last"`
}

func toMetricSummariesJSON(ms []registry.MetricSummary) []metricSummaryJSON {
	out := make([]metricSummaryJSON, len(ms))
	for i, m := range ms {
		out[i] = metricSummaryJSON{Name: m.Name, Count: m.Count, Min: m.Min, Max: m.Max,
			Last: metricPointJSON{Step: m.Last.Step, Value: m.Last.Value, Time: m.Last.Time.UTC()}}
	}
	return out
}

type modelVersionJSON struct {
	Project        string    `json:"project"`
	Name           string    `json:"name"`
	Version        int       `json:"version"`
	RunID          string    `json:"run_id,omitempty"`
	Artifact       string    `json:"artifact"`
	ArtifactHash   string    `json:"artifact_hash,omitempty"`
	Runtime        string    `json:"runtime"`
	FeatureService string    `json:"feature_service"`
	Description    string    `json:"description,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by"`
	// Aliases point at the version (models list).
	Aliases []string `json:"aliases,omitempty"`
	// Ref is the reference it was resolved from (lineage).
	Ref string `json:"ref,omitempty"`
}

func toModelVersionJSON(m registry.ModelVersion) modelVersionJSON {
	return modelVersionJSON{Project: m.Project, Name: m.Name, Version: m.Version, RunID: string(m.RunID), Artifact: m.ArtifactURI,
		ArtifactHash: m.ArtifactHash, Runtime: m.Runtime, FeatureService: m.FeatureService, Description: m.Description,
		CreatedAt: m.CreatedAt.UTC(), CreatedBy: m.CreatedBy}
}

type modelAliasJSON struct {
	Project   string    `json:"project"`
	Name      string    `json:"name"`
	Alias     string    `json:"alias"`
	Version   int       `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

func toModelAliasJSON(a registry.ModelAlias) modelAliasJSON {
	return modelAliasJSON{Project: a.Project, Name: a.Name, Alias: a.Alias, Version: a.Version, UpdatedAt: a.UpdatedAt.UTC(), UpdatedBy: a.UpdatedBy}
}

// lineageJSON is a dataset's lineage as printed: the manifest's, with the offline snapshot
// ids as strings (the manifest itself keeps its numbers, as its content id hashes them).
type lineageJSON struct {
	FeatureService training.ObjectRef   `json:"feature_service"`
	FeatureViews   []viewInputJSON      `json:"feature_views"`
	OnDemandViews  []training.ObjectRef `json:"on_demand_views,omitempty"`
	Entities       training.EntityInput `json:"entities"`
	Engine         string               `json:"engine"`
	CreatedCutoff  bool                 `json:"created_cutoff,omitempty"`
	QuiverVersion  string               `json:"quiver_version"`
}

type viewInputJSON struct {
	Name              string `json:"name"`
	Version           int    `json:"version"`
	Hash              string `json:"hash"`
	OfflineSnapshotID string `json:"offline_snapshot_id"`
}

func toLineageJSON(l training.Lineage) lineageJSON {
	views := make([]viewInputJSON, len(l.FeatureViews))
	for i, v := range l.FeatureViews {
		views[i] = viewInputJSON{Name: v.Name, Version: v.Version, Hash: v.Hash, OfflineSnapshotID: idString(v.OfflineSnapshotID)}
	}
	return lineageJSON{FeatureService: l.FeatureService, FeatureViews: views, OnDemandViews: l.OnDemandViews, Entities: l.Entities, Engine: l.Engine,
		CreatedCutoff: l.CreatedCutoff, QuiverVersion: l.QuiverVersion}
}

// datasetJSON is a dataset version; show adds its schema and files.
type datasetJSON struct {
	Name      string                `json:"name"`
	Version   int                   `json:"version"`
	ContentID string                `json:"content_id"`
	Rows      int64                 `json:"rows"`
	Location  string                `json:"location"`
	CreatedAt time.Time             `json:"created_at"`
	CreatedBy string                `json:"created_by"`
	Lineage   *lineageJSON          `json:"lineage,omitempty"`
	Schema    []training.ColumnInfo `json:"schema,omitempty"`
	Files     []training.FileInfo   `json:"files,omitempty"`
}

func toDatasetJSON(d registry.Dataset, withManifest bool) datasetJSON {
	out := datasetJSON{Name: d.Name, Version: d.Version, ContentID: d.ContentID, Rows: d.Rows, Location: d.Location,
		CreatedAt: d.CreatedAt.UTC(), CreatedBy: d.CreatedBy}
	var m training.Manifest
	if err := json.Unmarshal(d.Manifest, &m); err == nil {
		l := toLineageJSON(m.Lineage)
		out.Lineage = &l
		if withManifest {
			out.Schema, out.Files = m.Schema, m.Files
		}
	}
	return out
}

// datasetCreateJSON is dataset create's result: Location is the snapshot's directory.
type datasetCreateJSON struct {
	datasetJSON
	Location string         `json:"location"`
	Reused   bool           `json:"reused"`
	Warnings []coverageJSON `json:"warnings"`
}

type coverageJSON struct {
	View string `json:"view"`
	// MaterializedFrom is where the view's materialized history begins; absent when it has
	// no offline data.
	MaterializedFrom string `json:"materialized_from,omitempty"`
	RowsBefore       int64  `json:"rows_before"`
	Rows             int64  `json:"rows"`
}

type verifyJSON struct {
	Name       string         `json:"name"`
	Version    int            `json:"version"`
	OK         bool           `json:"ok"`
	Mismatches []mismatchJSON `json:"mismatches"`
}

type mismatchJSON struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

type exportJSON struct {
	Name    string   `json:"name"`
	Version int      `json:"version"`
	Files   []string `json:"files"`
}

type diffJSON struct {
	A diffSideJSON `json:"a"`
	B diffSideJSON `json:"b"`
}

type diffSideJSON struct {
	datasetJSON
	Stats map[string]training.ColumnStats `json:"stats"`
}

type datasetRemovedJSON struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Removed bool   `json:"removed"`
}

type initJSON struct {
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
}

// validationJSON is validate's result, valid or not (with the errors).
type validationJSON struct {
	Valid   bool           `json:"valid"`
	Project string         `json:"project,omitempty"`
	Objects map[string]int `json:"objects,omitempty"`
	Errors  []errorJSON    `json:"errors,omitempty"`
}

// errorJSON is one definitions error.
type errorJSON struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// changeJSON and dropJSON are a change of a plan and what its drop deletes (project.Plan).
type (
	changeJSON = project.ChangeReport
	dropJSON   = project.DropReport
)

type describeJSON struct {
	Object     objectJSON   `json:"object"`
	History    []objectJSON `json:"history"`
	Generation int          `json:"generation,omitempty"`
}

type versionOutput struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// runJSON is a materialization run (project.RunReport).
type runJSON = project.RunReport

type watermarkResetJSON struct {
	View string    `json:"view"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

type materializationRunJSON struct {
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

type materializationRunsJSON struct {
	Runs []materializationRunJSON `json:"runs"`
}

type auditEventJSON struct {
	ID     string          `json:"id"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Target string          `json:"target"`
	Detail json.RawMessage `json:"detail,omitempty"`
}

type auditJSON struct {
	Events []auditEventJSON `json:"events"`
}

// pushOutput is the -o json of quiver push.
type pushOutput struct {
	View       string `json:"view"`
	File       string `json:"file"`
	Rows       int64  `json:"rows"`
	OnlineRows int64  `json:"online_rows"`
	// StaleRows are entity rows the online store ignored: it held a newer row.
	StaleRows int64 `json:"stale_rows"`
	// Direct pushes: the offline commit.
	OfflineRows      int64  `json:"offline_rows,omitempty"`
	SnapshotID       string `json:"snapshot_id,omitempty"`
	AlreadyCommitted bool   `json:"already_committed,omitempty"`
	// Pushes through a server: the server's log sequence number of the last batch sent.
	Server      string `json:"server,omitempty"`
	LogSequence string `json:"log_sequence,omitempty"`
	Requests    int    `json:"requests,omitempty"`
}

// statusJSON is one view of quiver status -o json.
type statusJSON = project.ViewStatus

// trainDryRunJSON is what train --dry-run would do: the Kubernetes Job it renders, or the
// run it would start on the dataset it would use.
type trainDryRunJSON struct {
	DryRun       bool           `json:"dry_run"`
	Backend      string         `json:"backend"`
	RunID        string         `json:"run_id,omitempty"`
	Manifest     string         `json:"manifest,omitempty"`
	Job          string         `json:"job,omitempty"`
	Dataset      string         `json:"dataset,omitempty"`
	DatasetBuilt *bool          `json:"dataset_built,omitempty"`
	ContentID    string         `json:"content_id,omitempty"`
	Params       map[string]any `json:"params,omitempty"`
	Command      []string       `json:"command,omitempty"`
}

type trainJSON struct {
	RunID   string              `json:"run_id"`
	Status  string              `json:"status"`
	Attempt int                 `json:"attempt"`
	Dataset string              `json:"dataset"`
	Metrics []metricSummaryJSON `json:"metrics"`
	Model   *modelVersionJSON   `json:"model,omitempty"`
}

type runShowJSON struct {
	Run     trainingRunJSON     `json:"run"`
	Info    any                 `json:"info"`
	Params  map[string]string   `json:"params"`
	Tags    map[string]string   `json:"tags"`
	Metrics []metricSummaryJSON `json:"metrics"`
}

type modelShowJSON struct {
	Version modelVersionJSON `json:"version"`
	Aliases []modelAliasJSON `json:"aliases"`
}

// lineageOutput is a model version traced to its run, dataset and definitions.
type lineageOutput struct {
	Model   modelVersionJSON `json:"model"`
	Run     lineageRunJSON   `json:"run"`
	Dataset datasetJSON      `json:"dataset"`
	Lineage lineageJSON      `json:"lineage"`
}

type lineageRunJSON struct {
	ID          string            `json:"id"`
	Job         string            `json:"job"`
	Status      string            `json:"status"`
	GitCommit   string            `json:"git_commit"`
	GitDirty    bool              `json:"git_dirty"`
	Params      map[string]string `json:"params"`
	Definitions map[string]int    `json:"definitions"`
}
