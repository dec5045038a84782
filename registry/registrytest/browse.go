package registrytest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

func testPageTrainingRuns(t *testing.T, s registry.Store) {
	c := ctx(t)
	var ids []registry.TrainingRunID
	for i := range 7 {
		job := "a"
		if i%2 == 1 {
			job = "b"
		}
		r, err := s.CreateTrainingRun(c, registry.TrainingRun{Project: project, Job: job, ID: registry.TrainingRunID(fmt.Sprintf("run-%d", i))})
		require.NoError(t, err)
		ids = append(ids, r.ID)
		if i%3 == 0 {
			require.NoError(t, s.SetRunTags(c, r.ID, map[string]string{"team": "growth"}))
		}
	}
	_, err := s.CreateTrainingRun(c, registry.TrainingRun{Project: "other", Job: "a", ID: "elsewhere"})
	require.NoError(t, err)
	_, err = s.FinishTrainingRun(c, ids[2], registry.TrainingFailed, 1)
	require.NoError(t, err)

	// Pages of 3 walk every run of the project once, newest first (equal start times order by
	// id, descending).
	var seen []registry.TrainingRunID
	for off := 0; off < 9; off += 3 {
		page, total, err := s.PageTrainingRuns(c, registry.TrainingRunPage{Project: project, Limit: 3, Offset: off})
		require.NoError(t, err)
		require.EqualValues(t, 7, total)
		for _, r := range page {
			require.Equal(t, project, r.Project)
			seen = append(seen, r.ID)
		}
	}
	require.ElementsMatch(t, ids, seen)
	require.Len(t, seen, 7)
	for i := 1; i < len(seen); i++ {
		a, err := s.GetTrainingRun(c, seen[i-1])
		require.NoError(t, err)
		b, err := s.GetTrainingRun(c, seen[i])
		require.NoError(t, err)
		require.False(t, a.StartedAt.Before(b.StartedAt), "newest first")
	}

	page, total, err := s.PageTrainingRuns(c, registry.TrainingRunPage{Project: project, Job: "b", Sort: registry.SortStartedAsc})
	require.NoError(t, err)
	require.EqualValues(t, 3, total)
	require.Len(t, page, 3)
	for _, r := range page {
		require.Equal(t, "b", r.Job)
	}
	page, total, err = s.PageTrainingRuns(c, registry.TrainingRunPage{Project: project, Status: registry.TrainingFailed})
	require.NoError(t, err)
	require.EqualValues(t, 1, total)
	require.Equal(t, ids[2], page[0].ID)
	tag := registry.TrainingRunPage{Project: project, Sort: registry.SortJob}
	tag.Tag.Key, tag.Tag.Value = "team", "growth"
	page, total, err = s.PageTrainingRuns(c, tag)
	require.NoError(t, err)
	require.EqualValues(t, 3, total) // runs 0, 3, 6
	require.Equal(t, "a", page[0].Job)
	require.Equal(t, "b", page[2].Job)
	tag.Tag.Value = "nobody"
	_, total, err = s.PageTrainingRuns(c, tag)
	require.NoError(t, err)
	require.Zero(t, total)

	_, _, err = s.PageTrainingRuns(c, registry.TrainingRunPage{Project: project, Sort: "size"})
	require.ErrorIs(t, err, registry.ErrInvalid)
	require.ErrorContains(t, err, "size")
}

func testMetricSeries(t *testing.T, s registry.Store) {
	c := ctx(t)
	r := newRun(t, s, "job")
	var points []registry.Metric
	for step := range int64(1000) {
		points = append(points, registry.Metric{Name: "loss", Step: step, Value: float64(step)})
	}
	points = append(points, registry.Metric{Name: "acc", Step: 0, Value: 0.5}, registry.Metric{Name: "acc", Step: 10, Value: 0.75})
	require.NoError(t, s.LogMetrics(c, r.ID, points))

	// Few points: all of them, in step order.
	acc, err := s.MetricSeries(c, r.ID, "acc", 10)
	require.NoError(t, err)
	require.Len(t, acc, 2)
	require.Equal(t, 0.75, acc[1].Value)
	require.EqualValues(t, 10, acc[1].Step)

	// Many points: sampled by step, from the first point to the last.
	loss, err := s.MetricSeries(c, r.ID, "loss", 100)
	require.NoError(t, err)
	require.LessOrEqual(t, len(loss), 100)
	require.Greater(t, len(loss), 90)
	require.EqualValues(t, 0, loss[0].Step)
	require.EqualValues(t, 999, loss[len(loss)-1].Step)
	for i, m := range loss {
		require.Equal(t, float64(m.Step), m.Value, "each point is a logged point")
		if i > 0 {
			require.Greater(t, m.Step, loss[i-1].Step)
		}
	}
	// A second point logged at the last step is the series' end.
	require.NoError(t, s.LogMetrics(c, r.ID, []registry.Metric{{Name: "loss", Step: 999, Value: -1}}))
	loss, err = s.MetricSeries(c, r.ID, "loss", 100)
	require.NoError(t, err)
	require.Equal(t, -1.0, loss[len(loss)-1].Value)

	latest, err := s.LatestMetrics(c, r.ID)
	require.NoError(t, err)
	require.Len(t, latest, 2)
	require.Equal(t, "acc", latest[0].Name)
	require.EqualValues(t, 10, latest[0].Step)
	require.Equal(t, 0.75, latest[0].Value)
	require.Equal(t, "loss", latest[1].Name)
	require.Equal(t, -1.0, latest[1].Value)
	other := newRun(t, s, "job")
	latest, err = s.LatestMetrics(c, other.ID)
	require.NoError(t, err)
	require.Empty(t, latest)
	_, err = s.LatestMetrics(c, "no-such-run")
	require.ErrorIs(t, err, registry.ErrNotFound)

	none, err := s.MetricSeries(c, r.ID, "missing", 100)
	require.NoError(t, err)
	require.Empty(t, none)
	_, err = s.MetricSeries(c, "no-such-run", "loss", 100)
	require.True(t, errors.Is(err, registry.ErrNotFound), "got %v", err)
}

func testModelAliasEvents(t *testing.T, s registry.Store) {
	c := ctx(t)
	for range 3 {
		_, err := s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "churn", ArtifactURI: "a"})
		require.NoError(t, err)
	}
	_, err := s.CreateModelVersion(c, registry.ModelVersion{Project: project, Name: "other", ArtifactURI: "a"})
	require.NoError(t, err)
	set := func(alias string, v int, by string) {
		_, err := s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "churn", Alias: alias, Version: v, By: by})
		require.NoError(t, err)
	}
	set("production", 1, "alice")
	set("staging", 2, "bob")
	set("production", 3, "carol")
	require.NoError(t, s.DeleteModelAlias(c, project, "churn", "staging", "dave"))
	_, err = s.SetModelAlias(c, registry.AliasUpdate{Project: project, Name: "other", Alias: "production", Version: 1, By: "eve"})
	require.NoError(t, err)

	evs, err := s.ModelAliasEvents(c, project, "churn", 0)
	require.NoError(t, err)
	require.Len(t, evs, 4) // the removed staging alias's moves included; the other model's not
	require.Equal(t, "staging", evs[0].Alias)
	require.Equal(t, "dave", evs[0].ChangedBy)
	require.Equal(t, 2, evs[0].FromVersion)
	require.Zero(t, evs[0].ToVersion)
	require.Equal(t, "production", evs[1].Alias)
	require.Equal(t, 1, evs[1].FromVersion)
	require.Equal(t, 3, evs[1].ToVersion)
	require.Equal(t, "alice", evs[3].ChangedBy)
	require.Zero(t, evs[3].FromVersion)

	two, err := s.ModelAliasEvents(c, project, "churn", 2)
	require.NoError(t, err)
	require.Equal(t, evs[:2], two)
	none, err := s.ModelAliasEvents(c, project, "nobody", 0)
	require.NoError(t, err)
	require.Empty(t, none)
}
