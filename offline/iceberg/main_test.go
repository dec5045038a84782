package iceberg

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	ice "github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(childWriteEnv); dir != "" {
		os.Exit(childWrite(dir))
	}
	goleak.VerifyTestMain(m)
}

// openCatalog opens a fresh SQL catalog over SQLite in a temporary directory.
func openCatalog(t testing.TB) *Catalog {
	t.Helper()
	dir := t.TempDir()
	cat, err := OpenCatalog(context.Background(), CatalogConfig{
		URI:       "sqlite://" + filepath.Join(dir, "catalog.db"),
		Warehouse: filepath.Join(dir, "warehouse"),
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, cat.Close()) })
	return cat
}

func TestConformance(t *testing.T) {
	cat := openCatalog(t)
	ctx := context.Background()
	require.NoError(t, cat.ensureNamespace(ctx, table.Identifier{"analytics"}))
	n := 0
	sourcetest.Run(t, func(t *testing.T, data arrow.RecordBatch, fields offline.Fields) offline.Source {
		n++
		name := "analytics.events_" + string(rune('a'+n))
		ident, err := ParseIdentifier(name)
		require.NoError(t, err)
		sc, err := table.ArrowSchemaToIcebergWithFreshIDs(data.Schema(), false)
		require.NoError(t, err)
		// Partition the source by day of its timestamp so the scan's filter prunes.
		tsField, ok := sc.FindFieldByName(fields.Timestamp)
		require.True(t, ok)
		spec := ice.NewPartitionSpec(ice.PartitionField{SourceIDs: []int{tsField.ID}, FieldID: 1000, Name: "ts_day", Transform: ice.DayTransform{}})
		tbl, err := cat.cat.CreateTable(ctx, ident, sc, catalog.WithPartitionSpec(&spec))
		require.NoError(t, err)
		tt := array.NewTableFromRecords(data.Schema(), []arrow.RecordBatch{data})
		defer tt.Release()
		_, err = tbl.AppendTable(ctx, tt, 1024, nil)
		require.NoError(t, err)
		src, err := NewSource(&definitions.Source{
			Name: "events", Iceberg: &definitions.IcebergSource{Table: name},
			TimestampField: fields.Timestamp, CreatedTimestampField: fields.Created,
		}, cat, SourceOptions{})
		require.NoError(t, err)
		return src
	})
}

func TestSourceReportsSnapshot(t *testing.T) {
	cat := openCatalog(t)
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	require.NoError(t, cat.ensureNamespace(ctx, table.Identifier{"db"}))
	data := sourcetest.SourceBatch(mem, sourcetest.Rows())
	defer data.Release()
	sc, err := table.ArrowSchemaToIcebergWithFreshIDs(data.Schema(), false)
	require.NoError(t, err)
	tbl, err := cat.cat.CreateTable(ctx, table.Identifier{"db", "t"}, sc)
	require.NoError(t, err)
	def := &definitions.Source{Name: "s", Iceberg: &definitions.IcebergSource{Table: "db.t"}, TimestampField: sourcetest.ColTS}
	src, err := NewSource(def, cat, SourceOptions{Allocator: mem})
	require.NoError(t, err)
	all := offline.Range{Start: sourcetest.Base, End: sourcetest.Base.AddDate(0, 0, 10)}

	// An empty table reads as no rows at snapshot 0.
	st, err := src.Read(ctx, sourcetest.View(), all)
	require.NoError(t, err)
	require.Equal(t, int64(0), st.(offline.SnapshotStream).SnapshotID())
	require.NoError(t, st.Close())

	tt := array.NewTableFromRecords(data.Schema(), []arrow.RecordBatch{data})
	defer tt.Release()
	tbl, err = tbl.AppendTable(ctx, tt, 1024, nil)
	require.NoError(t, err)
	st, err = src.Read(ctx, sourcetest.View(), all)
	require.NoError(t, err)
	require.Equal(t, tbl.CurrentSnapshot().SnapshotID, st.(offline.SnapshotStream).SnapshotID())
	got, err := offline.ReadAll(ctx, st)
	require.NoError(t, err)
	defer got.Release()
	require.Equal(t, int64(len(sourcetest.Rows())), got.NumRows())

	missing, err := NewSource(&definitions.Source{Name: "m", Iceberg: &definitions.IcebergSource{Table: "db.nope"}, TimestampField: "ts"}, cat, SourceOptions{})
	require.NoError(t, err)
	_, err = missing.Read(ctx, sourcetest.View(), all)
	require.ErrorIs(t, err, offline.ErrTableNotFound)

	_, err = NewSource(&definitions.Source{Name: "m", Iceberg: &definitions.IcebergSource{Table: "nodots"}, TimestampField: "ts"}, cat, SourceOptions{})
	require.ErrorIs(t, err, offline.ErrInvalidSource)
}
