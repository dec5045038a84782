package parquet

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	pq "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
	"github.com/quiverfs/quiver/offline/sourcetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// writeParquet writes rec to path in row groups of rowGroup rows.
func writeParquet(t testing.TB, path string, rec arrow.RecordBatch, rowGroup int64) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	require.NoError(t, err)
	tbl := array.NewTableFromRecords(rec.Schema(), []arrow.RecordBatch{rec})
	defer tbl.Release()
	props := pq.NewWriterProperties(pq.WithStats(true), pq.WithMaxRowGroupLength(rowGroup))
	require.NoError(t, pqarrow.WriteTable(tbl, f, rowGroup, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())))
	_ = f.Close() // WriteTable closes it already
}

func newSource(t testing.TB, path string, fields offline.Fields, opts Options) *Source {
	t.Helper()
	s, err := New(&definitions.Source{
		Name: "events", Parquet: &definitions.ParquetSource{Path: path},
		TimestampField: fields.Timestamp, CreatedTimestampField: fields.Created,
	}, opts)
	require.NoError(t, err)
	return s
}

func TestConformance(t *testing.T) {
	sourcetest.Run(t, func(t *testing.T, data arrow.RecordBatch, fields offline.Fields) offline.Source {
		path := filepath.Join(t.TempDir(), "data.parquet")
		writeParquet(t, path, data, 4) // several row groups, so pruning is exercised
		return newSource(t, path, fields, Options{BatchSize: 3})
	})
}

func TestPaths(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rows := sourcetest.Rows()
	dir := t.TempDir()
	half := len(rows) / 2
	first, second := sourcetest.SourceBatch(mem, rows[:half]), sourcetest.SourceBatch(mem, rows[half:])
	defer first.Release()
	defer second.Release()
	writeParquet(t, filepath.Join(dir, "tbl", "a.parquet"), first, 100)
	writeParquet(t, filepath.Join(dir, "tbl", "sub", "b.parquet"), second, 100)
	writeParquet(t, filepath.Join(dir, "tbl", "_tmp", "c.parquet"), second, 100) // skipped: "_" prefix
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tbl", "README"), []byte("x"), 0o644))

	all := offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(10 * 24 * time.Hour)}
	cases := []struct {
		name  string
		path  string
		base  string
		files int
		rows  []sourcetest.Row
	}{
		{"file", filepath.Join(dir, "tbl", "a.parquet"), "", 1, rows[:half]},
		{"directory, recursive", filepath.Join(dir, "tbl"), "", 2, rows},
		{"glob", filepath.Join(dir, "tbl", "s*", "*.parquet"), "", 1, rows[half:]},
		{"relative to base dir", "tbl", dir, 2, rows},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, tc.path, sourcetest.Fields(), Options{BaseDir: tc.base, Allocator: mem})
			files, err := s.Files()
			require.NoError(t, err)
			require.Len(t, files, tc.files)
			st, err := s.Read(context.Background(), sourcetest.View(), all)
			require.NoError(t, err)
			tbl, err := offline.ReadAll(context.Background(), st)
			require.NoError(t, err)
			defer tbl.Release()
			require.Equal(t, sourcetest.Expected(tc.rows, all, true), sourcetest.RowStrings(t, tbl))
		})
	}
}

func TestBadPaths(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "not.parquet"), []byte("garbage"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "empty"), 0o755))
	all := offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(time.Hour)}
	cases := []struct {
		name string
		path string
		is   error
		mesg string
	}{
		{"no such file", filepath.Join(dir, "missing.parquet"), offline.ErrInvalidSource, "no files match"},
		{"empty directory", filepath.Join(dir, "empty"), offline.ErrInvalidSource, "no .parquet files"},
		{"bad glob", filepath.Join(dir, "[x"), offline.ErrInvalidSource, "bad path pattern"},
		{"not parquet", filepath.Join(dir, "not.parquet"), nil, "not.parquet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, tc.path, sourcetest.Fields(), Options{})
			_, err := s.Read(context.Background(), sourcetest.View(), all)
			require.Error(t, err)
			if tc.is != nil {
				require.ErrorIs(t, err, tc.is)
			}
			require.Contains(t, err.Error(), tc.mesg)
			require.Contains(t, err.Error(), `parquet source "events"`)
		})
	}
	_, err := New(&definitions.Source{Name: "x"}, Options{})
	require.ErrorIs(t, err, offline.ErrInvalidSource)
}

func TestRowGroupPruning(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	// 48 hourly rows, 6 per row group: 8 row groups of 6 hours each.
	var rows []sourcetest.Row
	for h := range 48 {
		rows = append(rows, sourcetest.Row{UserID: int64(h), TS: sourcetest.Base.Add(time.Duration(h) * time.Hour), Created: sourcetest.Base})
	}
	rec := sourcetest.SourceBatch(mem, rows)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "hours.parquet")
	writeParquet(t, path, rec, 6)

	cases := []struct {
		name       string
		start, end int // hours
		groups     []int
	}{
		{"one group", 6, 12, []int{1}},
		{"straddles two", 11, 13, []int{1, 2}},
		{"end exclusive at group start", 0, 6, []int{0}},
		{"before all", -10, -1, nil},
		{"everything", -1, 100, []int{0, 1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := offline.Range{Start: sourcetest.Base.Add(time.Duration(tc.start) * time.Hour), End: sourcetest.Base.Add(time.Duration(tc.end) * time.Hour)}
			s := newSource(t, path, sourcetest.Fields(), Options{Allocator: mem})
			pf, err := file.OpenParquetFile(path, false)
			require.NoError(t, err)
			defer pf.Close()
			fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
			require.NoError(t, err)
			schema, err := fr.Schema()
			require.NoError(t, err)
			st := &stream{src: s, vs: sourcetest.View(), r: r}
			require.Equal(t, tc.groups, st.rowGroups(pf, fr, schema))

			// and the rows read are exactly the range's
			out, err := s.Read(context.Background(), sourcetest.View(), r)
			require.NoError(t, err)
			tbl, err := offline.ReadAll(context.Background(), out)
			require.NoError(t, err)
			defer tbl.Release()
			require.Equal(t, sourcetest.Expected(rows, r, true), sourcetest.RowStrings(t, tbl))
		})
	}
}

// TestConversions reads a file whose columns need widening and timestamp unit changes.
func TestConversions(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "k", Type: arrow.PrimitiveTypes.Int32},
		{Name: "t", Type: &arrow.TimestampType{Unit: arrow.Nanosecond}}, // no zone: taken as UTC
		{Name: "f", Type: arrow.PrimitiveTypes.Float32},
		{Name: "s", Type: arrow.BinaryTypes.LargeString},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: "m", Type: &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "Europe/Paris"}},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	ts := sourcetest.Base.Add(90*time.Minute + 1500*time.Nanosecond)
	b.Field(0).(*array.Int32Builder).Append(7)
	b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixNano()))
	b.Field(2).(*array.Float32Builder).Append(1.5)
	b.Field(3).(*array.LargeStringBuilder).Append("héllo")
	lb := b.Field(4).(*array.ListBuilder)
	lb.Append(true)
	lb.ValueBuilder().(*array.Int32Builder).AppendValues([]int32{1, 2}, nil)
	b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(sourcetest.Base.UnixMilli()))
	rec := b.NewRecordBatch()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "conv.parquet")
	writeParquet(t, path, rec, 10)

	vs := offline.ViewSchema{
		View:     "conv",
		JoinKeys: []offline.Column{{Name: "k", Type: definitions.MustType("int64")}},
		Features: []offline.Column{
			{Name: "f", Type: definitions.MustType("float64")},
			{Name: "s", Type: definitions.MustType("string")},
			{Name: "l", Type: definitions.MustType("array<int64>")},
			{Name: "m", Type: definitions.MustType("timestamp")},
		},
	}
	s := newSource(t, path, offline.Fields{Timestamp: "t"}, Options{Allocator: mem})
	st, err := s.Read(context.Background(), vs, offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(time.Hour * 2)})
	require.NoError(t, err)
	tbl, err := offline.ReadAll(context.Background(), st)
	require.NoError(t, err)
	defer tbl.Release()
	require.Equal(t, []string{"7|2024-03-01T01:30:00.000001Z|null|1.5|héllo|[1,2]|2024-03-01T00:00:00.000000Z"}, sourcetest.RowStrings(t, tbl))
}

func TestBatchesAreBounded(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rows := sourcetest.Rows()
	rec := sourcetest.SourceBatch(mem, rows)
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "d.parquet")
	writeParquet(t, path, rec, 100)
	s := newSource(t, path, sourcetest.Fields(), Options{BatchSize: 4, Allocator: mem})
	st, err := s.Read(context.Background(), sourcetest.View(), offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(100 * time.Hour)})
	require.NoError(t, err)
	defer st.Close()
	var n int64
	for {
		b, err := st.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		require.LessOrEqual(t, b.NumRows(), int64(4))
		n += b.NumRows()
		b.Release()
	}
	require.Equal(t, int64(len(rows)), n)
	// Closing early, twice, is fine.
	st2, err := s.Read(context.Background(), sourcetest.View(), offline.Range{Start: sourcetest.Base, End: sourcetest.Base.Add(100 * time.Hour)})
	require.NoError(t, err)
	b, err := st2.Next(context.Background())
	require.NoError(t, err)
	b.Release()
	require.NoError(t, st2.Close())
	require.NoError(t, st2.Close())
}
