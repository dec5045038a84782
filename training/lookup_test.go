package training_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

func TestParseModelRef(t *testing.T) {
	for _, tc := range []struct {
		ref, name string
		version   int
		alias     string
	}{
		{"churn", "churn", 0, ""},
		{"churn@v3", "churn", 3, ""},
		{"churn@3", "churn", 3, ""},
		{"churn@production", "churn", 0, "production"},
		{"churn@v", "churn", 0, "v"},
		{"churn@03", "churn", 0, "03"},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			name, version, alias := training.ParseModelRef(tc.ref)
			require.Equal(t, tc.name, name)
			require.Equal(t, tc.version, version)
			require.Equal(t, tc.alias, alias)
		})
	}
}

// TestTraceModelAndDiffDatasets: a model version traces to its run, dataset and the views'
// sources; two datasets diff by schema, lineage and statistics.
func TestTraceModelAndDiffDatasets(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	wh := filepath.Join(fx.dir, "warehouse")
	write := func(name, content string) string {
		p := filepath.Join(fx.dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	a, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{Project: project, Name: "a", Service: "churn",
		Entities: write("a.csv", "user_id,event_timestamp\n1,"+at(7).Format(time.RFC3339)+"\n"), Warehouse: wh})
	require.NoError(t, err)
	b, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{Project: project, Name: "b", Service: "interleaved",
		Entities: write("b.csv", "user_id,event_timestamp\n1,"+at(7).Format(time.RFC3339)+"\n3,"+at(2).Format(time.RFC3339)+"\n"), Warehouse: wh})
	require.NoError(t, err)

	info, _ := json.Marshal(training.RunInfo{Definitions: map[string]int{"source/activity": 1}})
	run, err := fx.reg.CreateTrainingRun(ctx, registry.TrainingRun{Project: project, Job: "j", ID: "run-a", DatasetName: "a", DatasetVersion: 1, Info: info})
	require.NoError(t, err)
	mv, err := fx.reg.CreateModelVersion(ctx, registry.ModelVersion{Project: project, Name: "churn", RunID: run.ID, ArtifactURI: "x"})
	require.NoError(t, err)
	_, err = fx.reg.SetModelAlias(ctx, registry.AliasUpdate{Project: project, Name: "churn", Alias: "production", Version: mv.Version})
	require.NoError(t, err)

	for _, ref := range []string{"churn", "churn@v1", "churn@production"} {
		tr, err := training.TraceModel(ctx, fx.reg, project, ref)
		require.NoError(t, err, ref)
		require.Equal(t, mv.Version, tr.Model.Version)
		require.Equal(t, run.ID, tr.Run.ID)
		require.Equal(t, a.Dataset.ContentID, tr.Dataset.ContentID)
		require.Equal(t, "churn", tr.Lineage.FeatureService.Name)
		require.Len(t, tr.Views, 1)
		require.Equal(t, "user_stats", tr.Views[0].Name)
		require.Equal(t, "activity", tr.Views[0].Source)
		require.Equal(t, 1, tr.Views[0].SourceVersion)
	}
	_, err = training.TraceModel(ctx, fx.reg, project, "churn@v9")
	require.ErrorIs(t, err, registry.ErrNotFound)
	_, err = training.TraceModel(ctx, fx.reg, "other", "churn")
	require.ErrorIs(t, err, registry.ErrNotFound, "another project's model is not found")

	d, err := training.DiffDatasets(ctx, wh, a.Dataset, a.Dataset)
	require.NoError(t, err)
	require.True(t, d.Identical)
	d, err = training.DiffDatasets(ctx, wh, a.Dataset, b.Dataset)
	require.NoError(t, err)
	require.False(t, d.Identical)
	require.Equal(t, []training.ColumnChange{{Op: "+", Name: "visits", Type: "int64"}}, d.Columns)
	require.True(t, d.ServiceChanged)
	require.True(t, d.EntitiesChanged)
	require.Len(t, d.Views, 1)
	require.Equal(t, "user_visits", d.Views[0].New.Name)
	require.Zero(t, d.Views[0].Old.Version, "a did not read user_visits")
	require.EqualValues(t, 1, d.A.StatsByName()["user_id"].Distinct)
	require.EqualValues(t, 2, d.B.StatsByName()["user_id"].Distinct)
}
