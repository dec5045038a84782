package tabular_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/internal/tabular"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readAll reads every row of path: the schema and the batches' rows as one table's columns.
func readAll(t *testing.T, path string, opts tabular.Options) (*arrow.Schema, int64, error) {
	t.Helper()
	rr, err := tabular.Open(context.Background(), path, opts)
	if err != nil {
		return nil, 0, err
	}
	defer rr.Release()
	schema := rr.Schema()
	var n int64
	for rr.Next() {
		n += rr.RecordBatch().NumRows()
	}
	return schema, n, rr.Err()
}

func TestParquet(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rows.PQ")
	schema := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int64}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range 1000 {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())

	got, n, err := readAll(t, path, tabular.Options{BatchSize: 100, Parallel: true})
	require.NoError(t, err)
	require.Equal(t, 1, got.NumFields())
	require.Equal(t, "id", got.Field(0).Name)
	require.Equal(t, arrow.PrimitiveTypes.Int64, got.Field(0).Type)
	require.Equal(t, int64(1000), n)
}

func TestCSV(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rows.csv")
	require.NoError(t, os.WriteFile(path, []byte("id,name,at\n1,a,2026-01-02T03:04:05Z\n2,,2026-01-02T03:04:06Z\n"), 0o644))
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	rr, err := tabular.Open(context.Background(), path, tabular.Options{CSVTypes: map[string]arrow.DataType{"at": ts}})
	require.NoError(t, err)
	defer rr.Release()
	require.Equal(t, []string{"id", "name", "at"}, []string{rr.Schema().Field(0).Name, rr.Schema().Field(1).Name, rr.Schema().Field(2).Name}, "the schema is known before the first Next")
	require.Equal(t, arrow.PrimitiveTypes.Int64, rr.Schema().Field(0).Type, "inferred")
	require.True(t, arrow.TypeEqual(ts, rr.Schema().Field(2).Type), "as asked")
	require.True(t, rr.Next())
	rec := rr.RecordBatch()
	require.Equal(t, int64(2), rec.NumRows())
	require.True(t, rec.Column(1).IsNull(1), "an empty field is null")
	require.False(t, rr.Next())
	require.NoError(t, rr.Err(), "the end of the file is not an error")

	// A file with a header and no rows, or nothing at all, has no rows (arrow-go's CSV reader
	// panicked on the first).
	for _, content := range []string{"id,name\n", "id,name", ""} {
		empty := filepath.Join(dir, "empty.csv")
		require.NoError(t, os.WriteFile(empty, []byte(content), 0o644))
		_, _, err = readAll(t, empty, tabular.Options{})
		require.ErrorIs(t, err, tabular.ErrNoRows, "%q", content)
	}

	bad := filepath.Join(dir, "bad.csv")
	require.NoError(t, os.WriteFile(bad, []byte("id\n1\n2\n"), 0o644))
	_, _, err = readAll(t, bad, tabular.Options{CSVTypes: map[string]arrow.DataType{"id": arrow.FixedWidthTypes.Boolean}})
	require.Error(t, err, "a value that does not parse as its column's type")
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := tabular.Open(context.Background(), filepath.Join(dir, "rows.json"), tabular.Options{})
	require.ErrorContains(t, err, "unknown format; use a .parquet or .csv file")

	missing := filepath.Join(dir, "missing.parquet")
	_, err = tabular.Open(context.Background(), missing, tabular.Options{})
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NotContains(t, err.Error(), missing, "the caller names the path")

	notParquet := filepath.Join(dir, "text.parquet")
	require.NoError(t, os.WriteFile(notParquet, []byte("id\n1\n"), 0o644))
	_, err = tabular.Open(context.Background(), notParquet, tabular.Options{})
	require.ErrorContains(t, err, "not Parquet")
}
