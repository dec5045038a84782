package registrytest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
)

// testDatasetBuilds: a build is recorded before any file is written, finishing it registers the
// next version in the same transaction, and an abandoned build can never register one.
func testDatasetBuilds(t *testing.T, s registry.Store) {
	c := ctx(t)
	b1, err := s.BeginDatasetBuild(c, registry.DatasetBuild{Project: project, Name: "train", Host: "h1", PID: 42})
	require.NoError(t, err)
	require.NotZero(t, b1.ID)
	require.False(t, b1.StartedAt.IsZero())
	b2, err := s.BeginDatasetBuild(c, registry.DatasetBuild{Project: project, Name: "train", Host: "h2", PID: 7})
	require.NoError(t, err)
	require.NotEqual(t, b1.ID, b2.ID)
	other, err := s.BeginDatasetBuild(c, registry.DatasetBuild{Project: "other", Name: "train"})
	require.NoError(t, err)

	builds, err := s.ListDatasetBuilds(c, project)
	require.NoError(t, err)
	require.Len(t, builds, 2)
	require.Equal(t, b1.ID, builds[0].ID)
	require.Equal(t, "h1", builds[0].Host)
	require.Equal(t, 42, builds[0].PID)
	require.Equal(t, b1.StartedAt, builds[0].StartedAt)

	// Nothing is registered while a build is in flight.
	_, err = s.GetDataset(c, project, "train", 0)
	require.ErrorIs(t, err, registry.ErrDatasetNotFound)

	// The second build finishes first: it gets version 1.
	d, err := s.FinishDatasetBuild(c, b2.ID, registry.Dataset{Project: project, Name: "train", ContentID: "c2", Location: "l2"})
	require.NoError(t, err)
	require.Equal(t, 1, d.Version)
	// An abandoned build cannot register.
	require.NoError(t, s.AbandonDatasetBuild(c, b1.ID))
	require.NoError(t, s.AbandonDatasetBuild(c, b1.ID), "abandoning twice is not an error")
	_, err = s.FinishDatasetBuild(c, b1.ID, registry.Dataset{Project: project, Name: "train", ContentID: "c1"})
	require.ErrorIs(t, err, registry.ErrDatasetBuildNotFound)
	require.ErrorIs(t, err, registry.ErrNotFound)
	// A build finishes only under the name and project it began with.
	_, err = s.FinishDatasetBuild(c, other.ID, registry.Dataset{Project: project, Name: "train", ContentID: "c3"})
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = s.FinishDatasetBuild(c, other.ID, registry.Dataset{Project: "other", Name: "train"})
	require.ErrorIs(t, err, registry.ErrInvalid)

	list, err := s.ListDatasets(c, project, "train")
	require.NoError(t, err)
	require.Equal(t, []string{"train@1"}, datasetNames(list))
	builds, err = s.ListDatasetBuilds(c, project)
	require.NoError(t, err)
	require.Empty(t, builds)

	// Removed versions keep their number.
	require.NoError(t, s.DeleteDataset(c, project, "train", 1))
	b3, err := s.BeginDatasetBuild(c, registry.DatasetBuild{Project: project, Name: "train"})
	require.NoError(t, err)
	d, err = s.FinishDatasetBuild(c, b3.ID, registry.Dataset{Project: project, Name: "train", ContentID: "c2"})
	require.NoError(t, err)
	require.Equal(t, 2, d.Version)

	_, err = s.BeginDatasetBuild(c, registry.DatasetBuild{Project: project})
	require.ErrorIs(t, err, registry.ErrInvalid)
}

// testConcurrentDatasetBuilds: builds finishing at once get distinct versions with no gaps.
func testConcurrentDatasetBuilds(t *testing.T, s registry.Store) {
	c := ctx(t)
	const n = 8
	var wg sync.WaitGroup
	versions := make(chan int, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.BeginDatasetBuild(c, registry.DatasetBuild{Project: project, Name: "sweep"})
			if err != nil {
				errs <- err
				return
			}
			d, err := s.FinishDatasetBuild(c, b.ID, registry.Dataset{Project: project, Name: "sweep", ContentID: fmt.Sprintf("c%d", i)})
			if err != nil {
				errs <- err
				return
			}
			versions <- d.Version
		}()
	}
	wg.Wait()
	close(versions)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	seen := map[int]bool{}
	for v := range versions {
		require.False(t, seen[v], "version %d given twice", v)
		seen[v] = true
	}
	for v := 1; v <= n; v++ {
		require.True(t, seen[v], "version %d missing", v)
	}
}

// testModelVersionsTrainedOn: one query finds the model versions whose run read a dataset
// version, in this project only.
func testModelVersionsTrainedOn(t *testing.T, s registry.Store) {
	c := ctx(t)
	run := func(p, id, ds string, v int) {
		_, err := s.CreateTrainingRun(c, registry.TrainingRun{Project: p, Job: "j", ID: registry.TrainingRunID(id), DatasetName: ds, DatasetVersion: v})
		require.NoError(t, err)
	}
	model := func(p, name, runID string) {
		_, err := s.CreateModelVersion(c, registry.ModelVersion{Project: p, Name: name, RunID: registry.TrainingRunID(runID), ArtifactURI: "a"})
		require.NoError(t, err)
	}
	run(project, "r1", "train", 1)
	run(project, "r2", "train", 2)
	run(project, "r3", "train", 1)
	run("other", "o1", "train", 1)
	model(project, "churn", "r1") // churn v1
	model(project, "churn", "r2") // churn v2
	model(project, "fraud", "r3") // fraud v1
	model(project, "churn", "")   // churn v3, no run
	model("other", "churn", "o1")

	got, err := s.ModelVersionsTrainedOn(c, project, "train", 1)
	require.NoError(t, err)
	var refs []string
	for _, m := range got {
		require.Equal(t, project, m.Project)
		refs = append(refs, fmt.Sprintf("%s@v%d", m.Name, m.Version))
	}
	require.Equal(t, []string{"churn@v1", "fraud@v1"}, refs)
	got, err = s.ModelVersionsTrainedOn(c, project, "train", 9)
	require.NoError(t, err)
	require.Empty(t, got)
}
