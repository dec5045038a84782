package training_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/training"
)

// writeEntityParquet writes one batch with the given columns.
func writeEntityParquet(t *testing.T, path string, fields []arrow.Field, cols ...arrow.Array) {
	t.Helper()
	schema := arrow.NewSchema(fields, nil)
	rec := array.NewRecordBatch(schema, cols, int64(cols[0].Len()))
	defer rec.Release()
	f, err := os.Create(path)
	require.NoError(t, err)
	w, err := pqarrow.NewFileWriter(schema, f, nil, pqarrow.DefaultWriterProps())
	require.NoError(t, err)
	require.NoError(t, w.Write(rec))
	require.NoError(t, w.Close())
}

func int64s(v ...int64) arrow.Array {
	b := array.NewInt64Builder(memory.DefaultAllocator)
	b.AppendValues(v, nil)
	return b.NewArray()
}

func timestamps(tt *arrow.TimestampType, v ...int64) arrow.Array {
	b := array.NewTimestampBuilder(memory.DefaultAllocator, tt)
	for _, x := range v {
		b.Append(arrow.Timestamp(x))
	}
	return b.NewArray()
}

func readAll(t *testing.T, e training.EntityFile) (*arrow.Schema, []arrow.RecordBatch, error) {
	t.Helper()
	rr, err := e.Open(context.Background())
	if err != nil {
		return nil, nil, err
	}
	defer rr.Release()
	var out []arrow.RecordBatch
	for rr.Next() {
		rec := rr.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	return rr.Schema(), out, rr.Err()
}

var (
	int32Key = []definitions.Field{{Name: "user_id", Type: definitions.Type{Elem: definitions.Int32}}}
	int64Key = []definitions.Field{{Name: "user_id", Type: definitions.Type{Elem: definitions.Int64}}}
)

// Issue 18 item 5: entity files with duplicate columns, wider integer keys and naive or
// nanosecond timestamps.
func TestEntityFileDuplicateColumns(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "e.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("user_id,event_timestamp,user_id\n1,2026-10-01T00:00:00Z,2\n"), 0o644))
	_, _, err := readAll(t, training.EntityFile{Path: csvPath, Keys: int64Key})
	require.ErrorIs(t, err, training.ErrInvalidInput)
	require.ErrorContains(t, err, `has column "user_id" more than once`)

	pqPath := filepath.Join(dir, "e.parquet")
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	writeEntityParquet(t, pqPath, []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: ts}, {Name: "user_id", Type: arrow.PrimitiveTypes.Int64}},
		int64s(1), timestamps(ts, 0), int64s(2))
	_, _, err = readAll(t, training.EntityFile{Path: pqPath, Keys: int64Key})
	require.ErrorContains(t, err, `has column "user_id" more than once`)
}

func TestEntityFileIntegerKeyWidths(t *testing.T) {
	dir := t.TempDir()
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	fields := []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: ts}}

	// pandas writes int64; an int32 key accepts it when every value fits.
	fits := filepath.Join(dir, "fits.parquet")
	writeEntityParquet(t, fits, fields, int64s(1, -5, 2147483647), timestamps(ts, 1, 2, 3))
	schema, recs, err := readAll(t, training.EntityFile{Path: fits, Keys: int32Key})
	require.NoError(t, err)
	require.Equal(t, arrow.PrimitiveTypes.Int32, schema.Field(0).Type)
	require.Equal(t, []int32{1, -5, 2147483647}, recs[0].Column(0).(*array.Int32).Int32Values())

	// The first value that does not fit is named.
	big := filepath.Join(dir, "big.parquet")
	writeEntityParquet(t, big, fields, int64s(1, 3000000000, 4000000000), timestamps(ts, 1, 2, 3))
	_, _, err = readAll(t, training.EntityFile{Path: big, Keys: int32Key})
	require.ErrorIs(t, err, training.ErrInvalidInput)
	require.ErrorContains(t, err, `join key column "user_id" is int64 and declared int32, but row 2 holds 3000000000, which does not fit int32`)

	// CSV too.
	csvPath := filepath.Join(dir, "big.csv")
	require.NoError(t, os.WriteFile(csvPath, []byte("user_id,event_timestamp\n7,2026-10-01T00:00:00Z\n5000000000,2026-10-01T00:00:00Z\n"), 0o644))
	_, _, err = readAll(t, training.EntityFile{Path: csvPath, Keys: int32Key})
	require.ErrorContains(t, err, "row 2 holds 5000000000, which does not fit int32")

	// A narrower file widens to an int64 key.
	b := array.NewInt32Builder(memory.DefaultAllocator)
	b.AppendValues([]int32{4, 5}, nil)
	narrow := filepath.Join(dir, "narrow.parquet")
	writeEntityParquet(t, narrow, []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int32}, {Name: "event_timestamp", Type: ts}}, b.NewArray(), timestamps(ts, 1, 2))
	schema, recs, err = readAll(t, training.EntityFile{Path: narrow, Keys: int64Key})
	require.NoError(t, err)
	require.Equal(t, arrow.PrimitiveTypes.Int64, schema.Field(0).Type)
	require.Equal(t, []int64{4, 5}, recs[0].Column(0).(*array.Int64).Int64Values())
}

func TestEntityFileTimestampsBecomeMicrosUTC(t *testing.T) {
	dir := t.TempDir()
	when := time.Date(2026, 10, 1, 7, 30, 0, 123456789, time.UTC)
	for name, tt := range map[string]*arrow.TimestampType{
		"naive ns": {Unit: arrow.Nanosecond},
		"utc ns":   {Unit: arrow.Nanosecond, TimeZone: "UTC"},
		"ny ms":    {Unit: arrow.Millisecond, TimeZone: "America/New_York"},
		"naive s":  {Unit: arrow.Second},
	} {
		t.Run(name, func(t *testing.T) {
			var v int64
			switch tt.Unit {
			case arrow.Nanosecond:
				v = when.UnixNano()
			case arrow.Millisecond:
				v = when.UnixMilli()
			case arrow.Second:
				v = when.Unix()
			}
			path := filepath.Join(dir, name+".parquet")
			writeEntityParquet(t, path, []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: tt}}, int64s(1), timestamps(tt, v))
			schema, recs, err := readAll(t, training.EntityFile{Path: path, Keys: int64Key})
			require.NoError(t, err)
			require.True(t, arrow.TypeEqual(offline.TimestampType, schema.Field(1).Type), "got %s", schema.Field(1).Type)
			got := recs[0].Column(1).(*array.Timestamp).Value(0)
			want := when.Truncate(map[arrow.TimeUnit]time.Duration{arrow.Nanosecond: time.Microsecond, arrow.Millisecond: time.Millisecond, arrow.Second: time.Second}[tt.Unit]).UnixMicro()
			require.Equal(t, want, int64(got))

			_, _, err = readAll(t, training.EntityFile{Path: path, Keys: int64Key, RejectNaiveTimestamps: true})
			if tt.TimeZone == "" {
				require.ErrorIs(t, err, training.ErrInvalidInput)
				require.ErrorContains(t, err, `column "event_timestamp" is timestamp[`)
				require.ErrorContains(t, err, "without a time zone")
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// A dataset built from a pandas-style entity file (int64 keys, naive nanosecond timestamps)
// has its event_timestamp as timestamp[us, UTC].
func TestCreateDatasetNormalizesEntityTimestamps(t *testing.T) {
	fx := newFixture(t)
	ns := &arrow.TimestampType{Unit: arrow.Nanosecond}
	ents := filepath.Join(fx.dir, "pandas.parquet")
	writeEntityParquet(t, ents, []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Int64}, {Name: "event_timestamp", Type: ns}},
		int64s(1, 2), timestamps(ns, at(7).UnixNano()+999, at(8).UnixNano()))
	req := training.DatasetRequest{Project: project, Name: "pandas", Service: "churn", Entities: ents, Warehouse: filepath.Join(fx.dir, "warehouse")}
	res, err := training.CreateDataset(context.Background(), fx.reg, fx.off, fx.snap, req)
	require.NoError(t, err)
	m, _, err := training.ReadManifest(res.Dir)
	require.NoError(t, err)
	rr, err := training.OpenFiles(context.Background(), res.Dir, m)
	require.NoError(t, err)
	defer rr.Release()
	f, _ := rr.Schema().FieldsByName("event_timestamp")
	require.Len(t, f, 1)
	require.True(t, arrow.TypeEqual(offline.TimestampType, f[0].Type), "got %s", f[0].Type)
	require.True(t, rr.Next())
	require.Equal(t, at(7).UnixMicro(), int64(rr.RecordBatch().Column(rr.Schema().FieldIndices("event_timestamp")[0]).(*array.Timestamp).Value(0)))

	req.Name, req.RejectNaiveTimestamps = "strict", true
	_, err = training.CreateDataset(context.Background(), fx.reg, fx.off, fx.snap, req)
	require.ErrorIs(t, err, training.ErrInvalidInput)
	require.ErrorContains(t, err, "without a time zone")
}

// TestEntityFileStringForBytesKey: a string column for a bytes join key is read as its UTF-8
// bytes, as serving takes a string for a bytes key (value.Coerce); a float column for an int
// key is refused, as serving refuses it.
func TestEntityFileStringForBytesKey(t *testing.T) {
	dir := t.TempDir()
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	sb := array.NewStringBuilder(memory.DefaultAllocator)
	sb.AppendValues([]string{"a", "é"}, nil)
	path := filepath.Join(dir, "s.parquet")
	writeEntityParquet(t, path, []arrow.Field{{Name: "device", Type: arrow.BinaryTypes.String}, {Name: "event_timestamp", Type: ts}}, sb.NewArray(), timestamps(ts, 1, 2))
	bytesKey := []definitions.Field{{Name: "device", Type: definitions.MustType("bytes")}}
	schema, recs, err := readAll(t, training.EntityFile{Path: path, Keys: bytesKey})
	require.NoError(t, err)
	require.Equal(t, arrow.BinaryTypes.Binary, schema.Field(0).Type)
	col := recs[0].Column(0).(*array.Binary)
	require.Equal(t, []byte("a"), col.Value(0))
	require.Equal(t, []byte("é"), col.Value(1))

	fb := array.NewFloat64Builder(memory.DefaultAllocator)
	fb.AppendValues([]float64{1, 2}, nil)
	path = filepath.Join(dir, "f.parquet")
	writeEntityParquet(t, path, []arrow.Field{{Name: "user_id", Type: arrow.PrimitiveTypes.Float64}, {Name: "event_timestamp", Type: ts}}, fb.NewArray(), timestamps(ts, 1, 2))
	_, _, err = readAll(t, training.EntityFile{Path: path, Keys: int64Key})
	require.ErrorIs(t, err, training.ErrInvalidInput)
	require.ErrorContains(t, err, `join key column "user_id" is float64, want int64`)
}

// TestEntityFileWithoutRows: a CSV entity file with a header and no rows is refused naming it
// (arrow-go's CSV reader panicked on it).
func TestEntityFileWithoutRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "e.csv")
	require.NoError(t, os.WriteFile(path, []byte("user_id,event_timestamp\n"), 0o644))
	_, _, err := readAll(t, training.EntityFile{Path: path, Keys: int64Key})
	require.ErrorIs(t, err, training.ErrInvalidInput)
	require.ErrorContains(t, err, "entity file "+path+" has no rows")
}
