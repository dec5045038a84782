package iceberg

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestWriteIntervalKeepsOtherEnginesDeletes: rows another engine deleted with position deletes
// (Trino's DELETE, MERGE and UPDATE on a v2 table; here iceberg-go's merge-on-read delete,
// which writes the same) stay deleted when a later run rewrites the rest of their day. Found
// against the real Trino (issue 30): iceberg-go's copy-on-write overwrite rewrote a day's file
// from the file alone, without its delete files, and the deleted rows came back, in Quiver's
// scan and in Trino's.
func TestWriteIntervalKeepsOtherEnginesDeletes(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t, StoreOptions{})
	vs := sourcetest.View()
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err := s.WriteInterval(ctx, vs, all, stream(t, memory.DefaultAllocator, rows), "run-1")
	require.NoError(t, err)
	before := scanAll(t, s, offline.ScanRequest{})

	// Another engine deletes every row of users 2 and 3, with position deletes.
	tbl, err := s.load(ctx, "user_stats", 1)
	require.NoError(t, err)
	tx := tbl.NewTransaction()
	require.NoError(t, tx.SetProperties(ice.Properties{table.WriteDeleteModeKey: table.WriteModeMergeOnRead}))
	require.NoError(t, tx.Delete(ctx, ice.NewOr(ice.EqualTo(ice.Reference("user_id"), int64(2)), ice.EqualTo(ice.Reference("user_id"), int64(3))), nil))
	tbl, err = tx.Commit(ctx)
	require.NoError(t, err)
	tasks, err := tbl.Scan().PlanFiles(ctx)
	require.NoError(t, err)
	positionDeletes := 0
	for _, task := range tasks {
		positionDeletes += len(task.DeleteFiles)
	}
	require.Positive(t, positionDeletes, "the delete wrote position deletes")
	var want []string
	for _, r := range before {
		if !strings.HasPrefix(r, "2|") && !strings.HasPrefix(r, "3|") {
			want = append(want, r)
		}
	}
	require.Equal(t, want, scanAll(t, s, offline.ScanRequest{}))

	// A run over the first 90 minutes of day 1 (users 1 and 2 have rows at 01:00 and 02:00 of
	// each day, user 3 at 03:00): the files of day 1 are rewritten around the interval.
	morning := offline.Range{Start: base.Add(day), End: base.Add(day + 90*time.Minute)}
	var again []sourcetest.Row
	for _, r := range rows {
		if !r.TS.Before(morning.Start) && r.TS.Before(morning.End) {
			again = append(again, r)
		}
	}
	require.NotEmpty(t, again)
	_, err = s.WriteInterval(ctx, vs, morning, stream(t, memory.DefaultAllocator, again), "run-2")
	require.NoError(t, err)
	got := scanAll(t, s, offline.ScanRequest{})
	for _, r := range got {
		require.False(t, strings.HasPrefix(r, "2|") || strings.HasPrefix(r, "3|"), "a deleted row came back: %s", r)
	}
	require.Equal(t, want, got)
}
