package iceberg

import (
	"context"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

func TestProjectNamespace(t *testing.T) {
	require.Equal(t, "quiver_shop", ProjectNamespace("shop"))
	require.Equal(t, "quiver_shop_2", ProjectNamespace("shop_2"))
	upper := ProjectNamespace("Shop")
	require.Regexp(t, `^quiver_shop_[0-9a-f]{8}$`, upper)
	require.NotEqual(t, ProjectNamespace("shop"), upper, "case never merges two projects")
	require.NotEqual(t, ProjectNamespace("SHOP"), upper)
	require.Regexp(t, `^quiver_a_b_[0-9a-f]{8}$`, ProjectNamespace("a.b"))
}

// TestProjectsSharingACatalogAreIsolated: two projects' stores over one catalog write tables
// of the same view name; each reads only its own rows.
func TestProjectsSharingACatalogAreIsolated(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	cat := openCatalog(t)
	a, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("a")})
	require.NoError(t, err)
	b, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("b")})
	require.NoError(t, err)
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err = a.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows[:3]), "1")
	require.NoError(t, err)
	_, err = b.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows[3:]), "2")
	require.NoError(t, err)
	require.Equal(t, sourcetest.Expected(rows[:3], all, true), scanAll(t, a, offline.ScanRequest{}))
	require.Equal(t, sourcetest.Expected(rows[3:], all, true), scanAll(t, b, offline.ScanRequest{}))
	require.Equal(t, "quiver_a.user_stats", a.tableName("user_stats", 1))
}

// TestAdoptLegacyTables: a table in the old shared namespace moves to the project whose run
// wrote it, keeping its rows and snapshots; another project's table and an empty one stay.
func TestAdoptLegacyTables(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	cat := openCatalog(t)
	legacy, err := NewStore(ctx, cat, StoreOptions{})
	require.NoError(t, err)
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	_, err = legacy.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "7")
	require.NoError(t, err)
	other := sourcetest.View()
	other.View = "merchant_stats"
	_, err = legacy.WriteInterval(ctx, other, all, stream(t, mem, rows[:2]), "8")
	require.NoError(t, err)
	empty := sourcetest.View()
	empty.View = "never_written"
	require.NoError(t, legacy.EnsureTable(ctx, empty))
	before, err := legacy.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)

	// Run 7 is shop's run of user_stats; run 8 belongs to another project.
	owns := func(_ context.Context, view, runID string) (bool, error) {
		return runID == "7" && view == "user_stats", nil
	}
	shop, err := NewStore(ctx, cat, StoreOptions{Namespace: ProjectNamespace("shop")})
	require.NoError(t, err)
	moved, err := shop.AdoptLegacyTables(ctx, owns)
	require.NoError(t, err)
	require.Equal(t, []string{"user_stats"}, moved)
	require.Equal(t, sourcetest.Expected(rows, all, true), scanAll(t, shop, offline.ScanRequest{}))
	after, err := shop.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Equal(t, before, after, "history moves with the table")
	_, err = legacy.Snapshots(ctx, "user_stats", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound)
	_, err = legacy.Snapshots(ctx, "merchant_stats", 1)
	require.NoError(t, err, "another project's table stays")
	_, err = shop.Snapshots(ctx, "never_written", 1)
	require.ErrorIs(t, err, offline.ErrTableNotFound, "an empty table is not adopted")

	// Idempotent; and writes continue on the adopted table.
	moved, err = shop.AdoptLegacyTables(ctx, owns)
	require.NoError(t, err)
	require.Empty(t, moved)
	_, err = shop.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "9")
	require.NoError(t, err)
	after, err = shop.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, after, len(before)+1)
}

// TestEmptyWriteCommitsNothing: a write with no rows over an interval that holds none commits
// no snapshot; over an interval that holds rows it commits (removing them).
func TestEmptyWriteCommitsNothing(t *testing.T) {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	s, _ := newStore(t, StoreOptions{})
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	none := func() offline.Stream { return offline.NewSliceStream(sourcetest.View().Arrow()) }

	// Nothing ever written: no snapshot.
	res, err := s.WriteInterval(ctx, sourcetest.View(), all, none(), "1")
	require.NoError(t, err)
	require.True(t, res.NoOp)
	require.Zero(t, res.SnapshotID)
	snaps, err := s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Empty(t, snaps)

	_, err = s.WriteInterval(ctx, sourcetest.View(), all, stream(t, mem, rows), "2")
	require.NoError(t, err)
	later := offline.Range{Start: all.End, End: all.End.Add(30 * 24 * time.Hour)}
	for i := range 5 {
		res, err := s.WriteInterval(ctx, sourcetest.View(), later, none(), "3")
		require.NoError(t, err, "run %d", i)
		require.True(t, res.NoOp)
	}
	snaps, err = s.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 1, "no-op writes add no snapshot")

	// Re-materializing an interval whose source is now empty does remove its rows.
	res, err = s.WriteInterval(ctx, sourcetest.View(), all, none(), "4")
	require.NoError(t, err)
	require.False(t, res.NoOp)
	require.NotZero(t, res.SnapshotID)
	require.Empty(t, scanAll(t, s, offline.ScanRequest{}))
}
