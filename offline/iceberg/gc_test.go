package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestCollectGarbage: files no snapshot references (a failed or killed write's) go without
// expiring anything; then snapshots past the retention go except the current and the pinned
// ones, whose rows stay readable; reads before the horizon are refused naming the retention;
// a second collection finds nothing.
func TestCollectGarbage(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, StoreOptions{})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	var ids []int64
	for i := range 3 {
		res, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, memory.DefaultAllocator, rows[:i+3]), "run")
		require.NoError(t, err)
		ids = append(ids, res.SnapshotID)
	}
	tbl, err := s.load(ctx, "user_stats", 1)
	require.NoError(t, err)
	root, ok := localPath(tbl.Location())
	require.True(t, ok)
	orphans := []string{filepath.Join(root, "data", "event_ts_day=2024-03-01", "00000-failed.parquet"), filepath.Join(root, "metadata", "snap-1-failed.avro")}
	for _, p := range orphans {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("half a file"), 0o644))
	}

	res, err := s.CollectGarbage(ctx, "user_stats", GCOptions{OrphansOnly: true})
	require.NoError(t, err)
	require.Empty(t, res.ExpiredSnapshots)
	var removed []string
	for _, f := range res.Files {
		removed = append(removed, f.Path)
	}
	require.Subset(t, removed, orphans)
	for _, p := range orphans {
		require.NoFileExists(t, p)
	}
	snaps, err := s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 3)
	for i, id := range ids {
		require.Len(t, scanAll(t, s, offline.ScanRequest{SnapshotID: id}), i+3, "snapshot %d is intact", i)
	}

	// Retention 0, the first snapshot pinned (a dataset was built from it).
	now := time.Now().Add(time.Second)
	dry, err := s.CollectGarbage(ctx, "user_stats", GCOptions{Now: now, Pinned: map[int64]bool{ids[0]: true}, DryRun: true})
	require.NoError(t, err)
	res, err = s.CollectGarbage(ctx, "user_stats", GCOptions{Now: now, Pinned: map[int64]bool{ids[0]: true}})
	require.NoError(t, err)
	require.Equal(t, []int64{ids[1]}, res.ExpiredSnapshots)
	require.Equal(t, dry.ExpiredSnapshots, res.ExpiredSnapshots)
	require.Len(t, res.Files, len(dry.Files), "the dry run lists what the real run removes")
	require.Len(t, scanAll(t, s, offline.ScanRequest{SnapshotID: ids[0]}), 3, "the pinned snapshot reads")
	require.Len(t, scanAll(t, s, offline.ScanRequest{}), 5, "the current snapshot reads")
	_, err = s.Count(ctx, "user_stats", offline.ScanRequest{SnapshotID: ids[1]})
	require.ErrorIs(t, err, offline.ErrSnapshotNotFound)

	err = s.CheckRetention(ctx, "user_stats", 1, now.Add(-time.Minute))
	require.ErrorIs(t, err, ErrBeforeRetention)
	require.ErrorContains(t, err, "retention --older-than 0s")
	require.NoError(t, s.CheckRetention(ctx, "user_stats", 1, now.Add(time.Minute)))
	require.NoError(t, s.CheckRetention(ctx, "user_stats", 1, time.Time{}))

	again, err := s.CollectGarbage(ctx, "user_stats", GCOptions{Now: now, Pinned: map[int64]bool{ids[0]: true}})
	require.NoError(t, err)
	require.Empty(t, again.ExpiredSnapshots)
	require.Empty(t, again.Files, "only live files are left")
	views, err := s.Views(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"user_stats"}, views)
}

// TestCollectGarbageKeepsYoungOrphans: a file no snapshot references that was written just
// now (another engine's write in flight) survives a collection with MinOrphanAge, and is
// counted; one whose mtime is older goes; the expired snapshot's own files go whatever their
// age, since they are known to be committed.
func TestCollectGarbageKeepsYoungOrphans(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, StoreOptions{})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	for i := range 2 {
		_, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, memory.DefaultAllocator, rows[:i+3]), "run")
		require.NoError(t, err)
	}
	tbl, err := s.load(ctx, "user_stats", 1)
	require.NoError(t, err)
	root, ok := localPath(tbl.Location())
	require.True(t, ok)
	youngFile := filepath.Join(root, "data", "event_ts_day=2024-03-01", "trino-in-flight.parquet")
	oldFile := filepath.Join(root, "data", "event_ts_day=2024-03-01", "killed-long-ago.parquet")
	for _, p := range []string{youngFile, oldFile} {
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte("half a file"), 0o644))
	}
	long := time.Now().Add(-48 * time.Hour)
	require.NoError(t, os.Chtimes(oldFile, long, long))

	opts := GCOptions{MinOrphanAge: 24 * time.Hour, Now: time.Now().Add(time.Second)}
	dry, err := s.CollectGarbage(ctx, "user_stats", GCOptions{MinOrphanAge: opts.MinOrphanAge, Now: opts.Now, DryRun: true})
	require.NoError(t, err)
	res, err := s.CollectGarbage(ctx, "user_stats", opts)
	require.NoError(t, err)
	require.Len(t, res.ExpiredSnapshots, 1, "retention 0: the first snapshot expires")
	require.Equal(t, 1, res.YoungOrphans, "the young orphan is kept and counted")
	require.Equal(t, dry.YoungOrphans, res.YoungOrphans, "the dry run counts the same")
	require.FileExists(t, youngFile, "a file written now survives gc")
	require.NoFileExists(t, oldFile, "an unreferenced file older than the minimum age goes")
	kinds := map[string]int{}
	for _, f := range res.Files {
		kinds[f.Kind]++
		require.NotEqual(t, youngFile, f.Path)
	}
	require.Len(t, res.Files, len(dry.Files), "the dry run listed what gc removed")
	require.Positive(t, kinds["manifest-list"], "the expired snapshot's manifest list goes at once, young as it is: %v", kinds)
	require.Len(t, scanAll(t, s, offline.ScanRequest{}), 4, "the current snapshot reads as before")
}
