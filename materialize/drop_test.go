package materialize_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/materialize"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/online"
	"github.com/quiverfs/quiver/registry"
)

// failingDropper fails every DropTable: the process "dies" after the online rows are gone.
type failingDropper struct{}

func (failingDropper) DropTable(context.Context, string, int) error {
	return errors.New("offline store down")
}

// TestDropIsResumable: a drop interrupted after its online rows are deleted stays pending
// and is finished by the next run; finishing is idempotent; a view declared again starts a
// new generation that never sees the old rows.
func TestDropIsResumable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	rows := genRows(1, 40, 20)
	writeParquet(t, filepath.Join(dir, "activity.parquet"), rows)
	e := openEnv(t, dir, 64)
	spec := func(hash string) registry.Change {
		return registry.Change{Kind: definitions.KindFeatureView, Name: "user_stats", Hash: hash, Spec: []byte(`{"h":"` + hash + `"}`)}
	}
	_, err := e.reg.Apply(ctx, registry.ApplyRequest{Project: project, Changes: []registry.Change{spec("a")}})
	require.NoError(t, err)
	_, err = materialize.Run(ctx, e.reg, e.job, day(0), day(10), materialize.Options{})
	require.NoError(t, err)
	counter := e.online.(online.Counter)
	n, err := counter.CountView(ctx, e.job.OnlineView)
	require.NoError(t, err)
	require.EqualValues(t, 40, n)

	preview := materialize.PreviewDrop(ctx, project, "user_stats", 1, counter, e.offline, nil)
	require.EqualValues(t, 40, preview.OnlineRows)
	require.True(t, preview.OfflineExists)
	require.Equal(t, expectOffline(rows, day(0), day(10)), preview.OfflineRows)

	res, err := e.reg.Apply(ctx, registry.ApplyRequest{Project: project, BaseRevision: 1,
		Changes: []registry.Change{{Kind: definitions.KindFeatureView, Name: "user_stats", Delete: true}}})
	require.NoError(t, err)
	require.Len(t, res.Drops, 1)
	_, err = e.reg.Watermark(ctx, project, "user_stats")
	require.ErrorIs(t, err, registry.ErrWatermarkNotFound, "a removed view forgets its watermark")

	// Interrupted after the online delete.
	done, err := materialize.FinishDrops(ctx, e.reg, project, materialize.DropStores{Online: e.online, Offline: failingDropper{}})
	require.ErrorContains(t, err, "offline store down")
	require.Empty(t, done)
	n, err = counter.CountView(ctx, e.job.OnlineView)
	require.NoError(t, err)
	require.Zero(t, n)
	pending, err := e.reg.PendingDrops(ctx, project)
	require.NoError(t, err)
	require.Len(t, pending, 1, "still pending")
	_, err = e.offline.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err, "the table is still there")

	// The next run finishes it; a third finds nothing to do.
	done, err = materialize.FinishDrops(ctx, e.reg, project, materialize.DropStores{Online: e.online, Offline: e.offline})
	require.NoError(t, err)
	require.Len(t, done, 1)
	_, err = e.offline.Snapshots(ctx, "user_stats", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	done, err = materialize.FinishDrops(ctx, e.reg, project, materialize.DropStores{})
	require.NoError(t, err)
	require.Empty(t, done)

	// Declared again: generation 2, its own table and online rows.
	_, err = e.reg.Apply(ctx, registry.ApplyRequest{Project: project, BaseRevision: 2, Changes: []registry.Change{spec("b")}})
	require.NoError(t, err)
	gens, err := e.reg.Generations(ctx, project)
	require.NoError(t, err)
	require.Equal(t, 2, registry.Generation(gens, "user_stats"))
	job := e.job
	job.Schema.Generation = 2
	job.OnlineView = e.job.OnlineView.WithGeneration(2)
	_, err = materialize.Run(ctx, e.reg, job, day(0), day(5), materialize.Options{})
	require.NoError(t, err)
	snaps, err := e.offline.Snapshots(ctx, "user_stats", 2)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	n, err = counter.CountView(ctx, job.OnlineView)
	require.NoError(t, err)
	require.Positive(t, n)
}
