package main

// Dedicated -o json shapes for registry and training types, which carry no json tags (or
// whose stored encoding must not change, like a dataset manifest). Every key is snake_case;
// 64-bit ids are strings.

import (
	"encoding/json"
	"time"

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

func toTrainingRunsJSON(runs []registry.TrainingRun) []trainingRunJSON {
	out := make([]trainingRunJSON, len(runs))
	for i, r := range runs {
		out[i] = toTrainingRunJSON(r, false)
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

func toModelAliasesJSON(as []registry.ModelAlias) []modelAliasJSON {
	out := make([]modelAliasJSON, len(as))
	for i, a := range as {
		out[i] = toModelAliasJSON(a)
	}
	return out
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
