package iceberg

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/internal/testenv"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

// TestPostgresCatalog keeps the catalog in PostgreSQL, as when it shares the registry's
// database, and checks a second catalog handle sees the committed snapshot.
func TestPostgresCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("starts postgres")
	}
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	cfg := CatalogConfig{URI: pg.NewDatabase(t), Warehouse: filepath.Join(t.TempDir(), "warehouse")}
	open := func() *Store {
		cat, err := OpenCatalog(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, cat.Close()) })
		s, err := NewStore(ctx, cat, StoreOptions{})
		require.NoError(t, err)
		return s
	}
	s := open()
	rows := sourcetest.Rows()
	all := offline.Range{Start: base, End: base.Add(5 * day)}
	res, err := s.WriteInterval(ctx, sourcetest.View(), all, stream(t, memory.DefaultAllocator, rows), "pg")
	require.NoError(t, err)

	other := open()
	snaps, err := other.Snapshots(ctx, "user_stats", 1)
	require.NoError(t, err)
	require.Len(t, snaps, 1)
	require.Equal(t, res.SnapshotID, snaps[0].ID)
	require.Equal(t, "pg", snaps[0].RunID)
	require.Equal(t, sourcetest.Expected(rows, all, true), scanAll(t, other, offline.ScanRequest{}))
}

// TestPostgresCatalogOpenedConcurrently: processes that open a new catalog in one PostgreSQL
// database at the same moment (two quiver stream processes of one consumer group started
// together) all open it; iceberg-go's CREATE TABLE IF NOT EXISTS races with itself there.
func TestPostgresCatalogOpenedConcurrently(t *testing.T) {
	ctx := context.Background()
	pg := testenv.StartPostgres(t)
	for range 3 {
		cfg := CatalogConfig{URI: pg.NewDatabase(t), Warehouse: filepath.Join(t.TempDir(), "warehouse")}
		errs := make(chan error, 8)
		for range cap(errs) {
			go func() {
				cat, err := OpenCatalog(ctx, cfg)
				if err == nil {
					err = cat.Close()
				}
				errs <- err
			}()
		}
		for range cap(errs) {
			require.NoError(t, <-errs)
		}
	}
}
