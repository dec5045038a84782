package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestCollectGarbageKeepsStatisticsFiles: the table metadata names statistics files (Puffin
// files Trino's ANALYZE writes, per snapshot; partition statistics likewise) that no manifest
// lists. gc keeps those of the snapshots that stay, and removes those of expired snapshots
// (dropped from the metadata with them), the dry run listing the same. Found against the real
// Trino (issue 30): gc removed the .stats file of the current snapshot.
func TestCollectGarbageKeepsStatisticsFiles(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, StoreOptions{})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	var ids []int64
	for i := range 2 {
		res, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, memory.DefaultAllocator, rows[:i+3]), "run")
		require.NoError(t, err)
		ids = append(ids, res.SnapshotID)
	}
	tbl, err := s.load(ctx, "user_stats", 1)
	require.NoError(t, err)
	root, ok := localPath(tbl.Location())
	require.True(t, ok)
	files := map[string]string{}
	var updates []table.Update
	for i, id := range ids {
		stats := filepath.Join(root, "metadata", "analyze-"+string(rune('a'+i))+".stats")
		part := filepath.Join(root, "metadata", "partition-stats-"+string(rune('a'+i))+".parquet")
		for _, p := range []string{stats, part} {
			require.NoError(t, os.WriteFile(p, []byte("puffin"), 0o644))
		}
		files[stats], files[part] = "stats", "partition stats"
		updates = append(updates,
			table.NewSetStatisticsUpdate(table.StatisticsFile{SnapshotID: id, StatisticsPath: "file://" + stats, FileSizeInBytes: 6, BlobMetadata: []table.BlobMetadata{}}),
			table.NewSetPartitionStatisticsUpdate(table.PartitionStatisticsFile{SnapshotID: id, StatisticsPath: "file://" + part, FileSizeInBytes: 6}))
	}
	cur := ids[1]
	_, _, err = s.cat.cat.CommitTable(ctx, s.Identifier("user_stats", 1), []table.Requirement{table.AssertRefSnapshotID(table.MainBranch, &cur)}, updates)
	require.NoError(t, err)

	res, err := s.CollectGarbage(ctx, "user_stats", GCOptions{OrphansOnly: true})
	require.NoError(t, err)
	for p, kind := range files {
		require.FileExists(t, p, "the %s file of a snapshot that stays", kind)
	}
	for _, f := range res.Files {
		require.NotContains(t, files, f.Path)
	}

	// The first snapshot expires: its statistics go with it, the current one's stay.
	now := time.Now().Add(time.Second)
	dry, err := s.CollectGarbage(ctx, "user_stats", GCOptions{Now: now, DryRun: true})
	require.NoError(t, err)
	res, err = s.CollectGarbage(ctx, "user_stats", GCOptions{Now: now})
	require.NoError(t, err)
	require.Equal(t, []int64{ids[0]}, res.ExpiredSnapshots)
	removed := map[string]bool{}
	for _, f := range res.Files {
		removed[f.Path] = true
	}
	var dryRemoved []string
	for _, f := range dry.Files {
		dryRemoved = append(dryRemoved, f.Path)
	}
	for p := range files {
		expired := filepath.Base(p) == "analyze-a.stats" || filepath.Base(p) == "partition-stats-a.parquet"
		require.Equal(t, expired, removed[p], p)
		require.Equal(t, expired, !fileExists(p), p)
		if expired {
			require.Contains(t, dryRemoved, p, "the dry run lists it")
		}
	}
	require.Len(t, scanAll(t, s, offline.ScanRequest{}), 4)
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
