package training_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/registry"
	"github.com/quiverfs/quiver/training"
)

// TestCollectDatasetGarbage: removed versions' content goes unless a live version shares it;
// dead builds' staging and orphan staging folders go; live builds, live content and anything
// younger than the grace period stay; a dry run removes nothing.
func TestCollectDatasetGarbage(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	wh := filepath.Join(fx.dir, "warehouse")
	entsA := filepath.Join(fx.dir, "a.csv")
	entsB := filepath.Join(fx.dir, "b.csv")
	require.NoError(t, os.WriteFile(entsA, []byte("user_id,event_timestamp\n1,"+at(7).Format(time.RFC3339)+"\n"), 0o644))
	require.NoError(t, os.WriteFile(entsB, []byte("user_id,event_timestamp\n3,"+at(2).Format(time.RFC3339)+"\n"), 0o644))
	create := func(name, ents string, rebuild bool) *training.DatasetResult {
		res, err := training.CreateDataset(ctx, fx.reg, fx.off, fx.snap, training.DatasetRequest{
			Project: project, Name: name, Service: "churn", Entities: ents, Warehouse: wh, Rebuild: rebuild})
		require.NoError(t, err)
		return res
	}
	a1 := create("a", entsA, false)
	a2 := create("a", entsA, true) // same content as a1
	require.Equal(t, a1.Dir, a2.Dir)
	b1 := create("b", entsB, false)
	require.NotEqual(t, a1.Dir, b1.Dir)
	// A version of another name shares a's content (the name is not part of the content).
	c1 := create("c", entsA, true)
	require.Equal(t, a1.Dir, c1.Dir)

	require.NoError(t, fx.reg.DeleteDataset(ctx, project, "a", 1))
	require.NoError(t, fx.reg.DeleteDataset(ctx, project, "b", 1))

	// Staging: a dead build's folder, a folder with no build, and a live build's folder.
	host, _ := os.Hostname()
	exited := exec.Command("true")
	require.NoError(t, exited.Run())
	dead, err := fx.reg.BeginDatasetBuild(ctx, registry.DatasetBuild{Project: project, Name: "a", Host: host, PID: exited.Process.Pid})
	require.NoError(t, err)
	live, err := fx.reg.BeginDatasetBuild(ctx, registry.DatasetBuild{Project: project, Name: "a", Host: host, PID: os.Getpid()})
	require.NoError(t, err)
	orphan := filepath.Join(training.StagingRoot(wh, project), "b424242")
	for _, d := range []string{training.StagingDir(wh, project, dead.ID), training.StagingDir(wh, project, live.ID), orphan} {
		require.NoError(t, os.MkdirAll(filepath.Join(d, ".staging-x"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(d, ".staging-x", "part-00000.parquet"), make([]byte, 1000), 0o444))
	}

	// Everything is fresh: with the default grace only the staging garbage qualifies.
	res, err := training.CollectDatasetGarbage(ctx, fx.reg, wh, project, training.GCOptions{DryRun: true})
	require.NoError(t, err)
	require.Equal(t, []string{orphan, training.StagingDir(wh, project, dead.ID)}, paths(res))
	require.EqualValues(t, 2000, res.Bytes)

	// Age the content folders past the grace period.
	old := time.Now().Add(-2 * time.Hour)
	for _, d := range []string{a1.Dir, b1.Dir} {
		require.NoError(t, os.Chtimes(d, old, old))
	}
	res, err = training.CollectDatasetGarbage(ctx, fx.reg, wh, project, training.GCOptions{DryRun: true})
	require.NoError(t, err)
	require.Equal(t, []string{orphan, training.StagingDir(wh, project, dead.ID), b1.Dir}, paths(res), "a1's content is shared with live a2 and c1")
	require.DirExists(t, b1.Dir, "a dry run removes nothing")
	require.Greater(t, res.Items[2].Bytes, int64(0))

	res, err = training.CollectDatasetGarbage(ctx, fx.reg, wh, project, training.GCOptions{})
	require.NoError(t, err)
	require.Len(t, res.Items, 3)
	require.NoDirExists(t, b1.Dir)
	require.NoDirExists(t, orphan)
	require.NoDirExists(t, training.StagingDir(wh, project, dead.ID))
	require.DirExists(t, training.StagingDir(wh, project, live.ID))
	builds, err := fx.reg.ListDatasetBuilds(ctx, project)
	require.NoError(t, err)
	require.Len(t, builds, 1, "the dead build's row is cleared")
	require.Equal(t, live.ID, builds[0].ID)
	for _, d := range []registry.Dataset{a2.Dataset, c1.Dataset} {
		_, err := training.Verify(training.DatasetDir(wh, d), d.ContentID)
		require.NoError(t, err, "%s@v%d", d.Name, d.Version)
	}

	// Once every version sharing it is removed, the content goes too.
	require.NoError(t, fx.reg.DeleteDataset(ctx, project, "a", 2))
	require.NoError(t, fx.reg.DeleteDataset(ctx, project, "c", 1))
	res, err = training.CollectDatasetGarbage(ctx, fx.reg, wh, project, training.GCOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{a1.Dir}, paths(res))
	require.NoDirExists(t, a1.Dir)

	// Another project's files are never looked at.
	res, err = training.CollectDatasetGarbage(ctx, fx.reg, wh, "other", training.GCOptions{Grace: time.Nanosecond})
	require.NoError(t, err)
	require.Empty(t, res.Items)
	require.DirExists(t, training.StagingDir(wh, project, live.ID))
}

func paths(res training.GCResult) []string {
	var out []string
	for _, it := range res.Items {
		out = append(out, it.Path)
	}
	return out
}
