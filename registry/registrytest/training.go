package registrytest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

func newRun(t *testing.T, s registry.Store, job string) registry.TrainingRun {
	t.Helper()
	r, err := s.CreateTrainingRun(ctx(t), registry.TrainingRun{Project: project, Job: job})
	require.NoError(t, err)
	return r
}

func testTrainingRuns(t *testing.T, s registry.Store) {
	c := ctx(t)
	before := time.Now().Add(-time.Second)
	info := json.RawMessage(`{"command":["python","train.py"],  "gpus":[]}`)
	r, err := s.CreateTrainingRun(c, registry.TrainingRun{Project: project, Job: "churn_train", ID: "run-1",
		DatasetName: "train", DatasetVersion: 3, DatasetContentID: "c3", GitCommit: registry.GitDirty, Info: info, CreatedBy: "alice",
		Status: registry.TrainingFinished}) // the status given is ignored
	require.NoError(t, err)
	require.Equal(t, registry.TrainingRunID("run-1"), r.ID)
	require.Equal(t, registry.TrainingRunning, r.Status)
	require.Equal(t, 1, r.Attempt)
	require.WithinRange(t, r.StartedAt, before, time.Now().Add(time.Second))

	got, err := s.GetTrainingRun(c, "run-1")
	require.NoError(t, err)
	require.Equal(t, r, got)
	require.Equal(t, string(info), string(got.Info))

	_, err = s.CreateTrainingRun(c, registry.TrainingRun{Project: project, Job: "churn_train", ID: "run-1"})
	require.ErrorIs(t, err, registry.ErrConflict)
	_, err = s.CreateTrainingRun(c, registry.TrainingRun{Project: project})
	require.ErrorIs(t, err, registry.ErrInvalid)

	gen := newRun(t, s, "churn_train")
	require.NotEmpty(t, gen.ID)
	other := newRun(t, s, "other_job")
	require.NotEqual(t, gen.ID, other.ID)

	failed, err := s.FinishTrainingRun(c, "run-1", registry.TrainingFailed, 2)
	require.NoError(t, err)
	require.Equal(t, registry.TrainingFailed, failed.Status)
	require.Equal(t, 2, failed.ExitCode)
	require.False(t, failed.FinishedAt.IsZero())
	_, err = s.FinishTrainingRun(c, "run-1", registry.TrainingFinished, 0)
	require.ErrorIs(t, err, registry.ErrConflict)
	_, err = s.FinishTrainingRun(c, gen.ID, registry.TrainingRunning, 0)
	require.ErrorIs(t, err, registry.ErrInvalid)
	_, err = s.FinishTrainingRun(c, "nope", registry.TrainingKilled, -1)
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.GetTrainingRun(c, "nope")
	require.ErrorIs(t, err, registry.ErrNotFound)

	runs, err := s.ListTrainingRuns(c, registry.TrainingRunFilter{Project: project, Job: "churn_train"})
	require.NoError(t, err)
	require.Len(t, runs, 2)
	failedRuns, err := s.ListTrainingRuns(c, registry.TrainingRunFilter{Project: project, Status: registry.TrainingFailed})
	require.NoError(t, err)
	require.Len(t, failedRuns, 1)
	require.Equal(t, registry.TrainingRunID("run-1"), failedRuns[0].ID)
	limited, err := s.ListTrainingRuns(c, registry.TrainingRunFilter{Project: project, Limit: 2})
	require.NoError(t, err)
	require.Len(t, limited, 2)
}

func testRunParamsWriteOnce(t *testing.T, s registry.Store) {
	c := ctx(t)
	r := newRun(t, s, "job")
	require.NoError(t, s.SetRunParams(c, r.ID, map[string]string{"lr": "0.1", "epochs": "5"}))
	require.NoError(t, s.SetRunParams(c, r.ID, map[string]string{"lr": "0.1", "batch": "32"}), "same value again is fine")
	err := s.SetRunParams(c, r.ID, map[string]string{"lr": "0.2", "dropout": "0.5"})
	require.ErrorIs(t, err, registry.ErrConflict)
	require.Contains(t, err.Error(), `param "lr" is already "0.1"`)
	params, err := s.RunParams(c, r.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"lr": "0.1", "epochs": "5", "batch": "32"}, params, "nothing of the refused call was written")

	other := newRun(t, s, "job")
	params, err = s.RunParams(c, other.ID)
	require.NoError(t, err)
	require.Empty(t, params)
	require.ErrorIs(t, s.SetRunParams(c, "nope", map[string]string{"a": "b"}), registry.ErrNotFound)
	_, err = s.RunParams(c, "nope")
	require.ErrorIs(t, err, registry.ErrNotFound)
}

func testRunTags(t *testing.T, s registry.Store) {
	c := ctx(t)
	r := newRun(t, s, "job")
	require.NoError(t, s.SetRunTags(c, r.ID, map[string]string{"team": "growth", "stage": "dev"}))
	require.NoError(t, s.SetRunTags(c, r.ID, map[string]string{"stage": "prod"}))
	tags, err := s.RunTags(c, r.ID)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"team": "growth", "stage": "prod"}, tags)
	require.ErrorIs(t, s.SetRunTags(c, "nope", map[string]string{"a": "b"}), registry.ErrNotFound)
}

func testRunMetrics(t *testing.T, s registry.Store) {
	c := ctx(t)
	r := newRun(t, s, "job")
	var points []registry.Metric
	for step := range int64(25) {
		points = append(points,
			registry.Metric{Name: "loss", Step: step, Value: 1 / float64(step+1), Time: t0.Add(time.Duration(step) * time.Second)},
			registry.Metric{Name: "acc", Step: step, Value: float64(step) / 25})
	}
	require.NoError(t, s.LogMetrics(c, r.ID, points[:10]))
	// Visible while the run goes on.
	page, err := s.Metrics(c, r.ID, registry.MetricQuery{})
	require.NoError(t, err)
	require.Len(t, page, 10)
	require.NoError(t, s.LogMetrics(c, r.ID, points[10:]))
	// A second value at an existing step is appended, not replacing the first.
	require.NoError(t, s.LogMetrics(c, r.ID, []registry.Metric{{Name: "loss", Step: 24, Value: 0.01}}))

	// Page through the loss history.
	var loss []registry.Metric
	after := int64(0)
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		page, err := s.Metrics(c, r.ID, registry.MetricQuery{Name: "loss", AfterSeq: after, Limit: 7})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		require.LessOrEqual(t, len(page), 7)
		loss = append(loss, page...)
		after = page[len(page)-1].Seq
	}
	require.Len(t, loss, 26)
	for i, m := range loss[:25] {
		require.Equal(t, "loss", m.Name)
		require.Equal(t, int64(i), m.Step)
		require.Equal(t, t0.Add(time.Duration(i)*time.Second), m.Time)
		if i > 0 {
			require.Greater(t, m.Seq, loss[i-1].Seq)
		}
	}
	require.Equal(t, 0.01, loss[25].Value)
	require.False(t, loss[25].Time.IsZero())

	sums, err := s.MetricSummaries(c, r.ID)
	require.NoError(t, err)
	require.Len(t, sums, 2)
	require.Equal(t, "acc", sums[0].Name)
	require.Equal(t, int64(25), sums[0].Count)
	require.Equal(t, 0.0, sums[0].Min)
	require.Equal(t, 24.0/25, sums[0].Max)
	require.Equal(t, "loss", sums[1].Name)
	require.Equal(t, int64(26), sums[1].Count)
	require.Equal(t, 0.01, sums[1].Min)
	require.Equal(t, 1.0, sums[1].Max)
	require.Equal(t, int64(24), sums[1].Last.Step)
	require.Equal(t, 0.01, sums[1].Last.Value, "last logged among equal steps")

	require.ErrorIs(t, s.LogMetrics(c, "nope", points[:1]), registry.ErrNotFound)
	require.ErrorIs(t, s.LogMetrics(c, r.ID, []registry.Metric{{Step: 1}}), registry.ErrInvalid)
	_, err = s.Metrics(c, "nope", registry.MetricQuery{})
	require.ErrorIs(t, err, registry.ErrNotFound)
}

func testModelVersions(t *testing.T, s registry.Store) {
	c := ctx(t)
	_, err := s.GetModelVersion(c, project, "churn", 0)
	require.ErrorIs(t, err, registry.ErrNotFound)

	m1, err := s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "churn", RunID: "run-1",
		ArtifactURI: "warehouse/models/abc/model.onnx", ArtifactHash: "abc", Runtime: "onnx", FeatureService: "churn_v1", CreatedBy: "alice"})
	require.NoError(t, err)
	require.Equal(t, 1, m1.Version)
	m2, err := s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "churn", ArtifactURI: "b"})
	require.NoError(t, err)
	require.Equal(t, 2, m2.Version)
	_, err = s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "fraud", ArtifactURI: "c"})
	require.NoError(t, err)
	_, err = s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "fraud"})
	require.ErrorIs(t, err, registry.ErrInvalid)

	got, err := s.GetModelVersion(c, project, "churn", 1)
	require.NoError(t, err)
	require.Equal(t, m1, got)
	latest, err := s.GetModelVersion(c, project, "churn", 0)
	require.NoError(t, err)
	require.Equal(t, 2, latest.Version)
	_, err = s.GetModelVersion(c, project, "churn", 3)
	require.ErrorIs(t, err, registry.ErrNotFound)

	all, err := s.ListModelVersions(c, project, "")
	require.NoError(t, err)
	require.Len(t, all, 3)
	churn, err := s.ListModelVersions(c, project, "churn")
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, []int{churn[0].Version, churn[1].Version})
}

func testModelAliases(t *testing.T, s registry.Store) {
	c := ctx(t)
	for range 2 {
		_, err := s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "churn", ArtifactURI: "a"})
		require.NoError(t, err)
	}
	_, err := s.ResolveModelAlias(c, project, "churn", "production")
	require.ErrorIs(t, err, registry.ErrNotFound)

	a, err := s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "churn", Alias: "production", Version: 1, By: "alice"})
	require.NoError(t, err)
	require.Equal(t, 1, a.Version)
	require.Equal(t, "alice", a.UpdatedBy)
	m, err := s.ResolveModelAlias(c, project, "churn", "production")
	require.NoError(t, err)
	require.Equal(t, 1, m.Version)

	_, err = s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "churn", Alias: "production", Version: 2, By: "bob"})
	require.NoError(t, err)
	m, err = s.ResolveModelAlias(c, project, "churn", "production")
	require.NoError(t, err)
	require.Equal(t, 2, m.Version)

	_, err = s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "churn", Alias: "production", Version: 7, By: "eve"})
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "churn", Alias: "", Version: 1})
	require.ErrorIs(t, err, registry.ErrInvalid)

	_, err = s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "churn", Alias: "staging", Version: 1, By: "alice"})
	require.NoError(t, err)
	aliases, err := s.ListModelAliases(c, project, "churn")
	require.NoError(t, err)
	require.Len(t, aliases, 2)
	require.Equal(t, "production", aliases[0].Alias)
	require.Equal(t, 2, aliases[0].Version)
	require.Equal(t, "staging", aliases[1].Alias)

	require.NoError(t, s.DeleteModelAlias(c, project, "churn", "production", "carol"))
	require.ErrorIs(t, s.DeleteModelAlias(c, project, "churn", "production", "carol"), registry.ErrNotFound)
	_, err = s.ResolveModelAlias(c, project, "churn", "production")
	require.ErrorIs(t, err, registry.ErrNotFound)

	hist, err := s.ModelAliasHistory(c, project, "churn", "production")
	require.NoError(t, err)
	type move struct {
		from, to int
		by       string
	}
	var moves []move
	for _, e := range hist {
		require.False(t, e.ChangedAt.IsZero())
		moves = append(moves, move{e.FromVersion, e.ToVersion, e.ChangedBy})
	}
	require.Equal(t, []move{{0, 1, "alice"}, {1, 2, "bob"}, {2, 0, "carol"}}, moves)
}

func testConcurrentAliasMoves(t *testing.T, s registry.Store) {
	const n = 6
	for range n {
		_, err := s.CreateModelVersion(ctx(t), registry.ModelVersion{Project: project, Name: "churn", ArtifactURI: "a"})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.SetModelAlias(context.Background(), registry.AliasUpdate{Project: project, Name: "churn",
				Alias: "production", Version: i + 1, By: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	// The audit trail is a chain: each move starts where the previous one ended.
	hist, err := s.ModelAliasHistory(ctx(t), project, "churn", "production")
	require.NoError(t, err)
	require.Len(t, hist, n)
	prev := 0
	for _, e := range hist {
		require.Equal(t, prev, e.FromVersion)
		prev = e.ToVersion
	}
	m, err := s.ResolveModelAlias(ctx(t), project, "churn", "production")
	require.NoError(t, err)
	require.Equal(t, prev, m.Version)
}
