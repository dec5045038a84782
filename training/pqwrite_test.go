package training

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/stretchr/testify/require"
)

// snapshotTestBatches makes batches of uneven sizes over every flat type the snapshot writer
// meets (and a list column when withList), with nulls: none, some, all.
func snapshotTestBatches(t *testing.T, withList bool, sizes ...int) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	fields := []arrow.Field{
		{Name: "entity_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "event_timestamp", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: "label", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "v__f", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
		{Name: "v__n", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "v__s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "v__b", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		{Name: "v__none", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}
	if withList {
		fields = append(fields, arrow.Field{Name: "v__emb", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32), Nullable: true})
	}
	md := arrow.NewMetadata([]string{"quiver"}, []string{"test"})
	schema := arrow.NewSchema(fields, &md)
	rng := rand.New(rand.NewPCG(1, 2))
	var out []arrow.RecordBatch
	for _, n := range sizes {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		for i := range n {
			b.Field(0).(*array.Int64Builder).Append(rng.Int64N(1000))
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(rng.Int64N(1 << 50)))
			if rng.IntN(4) == 0 {
				b.Field(2).AppendNull()
			} else {
				b.Field(2).(*array.Float64Builder).Append(rng.Float64())
			}
			if rng.IntN(3) == 0 {
				b.Field(3).AppendNull()
			} else {
				b.Field(3).(*array.Float32Builder).Append(float32(rng.IntN(50)))
			}
			b.Field(4).(*array.Int32Builder).Append(int32(i % 7))
			if rng.IntN(5) == 0 {
				b.Field(5).AppendNull()
			} else {
				b.Field(5).(*array.StringBuilder).Append(string(rune('a' + rng.IntN(26))))
			}
			b.Field(6).(*array.BooleanBuilder).Append(rng.IntN(2) == 0)
			b.Field(7).AppendNull()
			if withList {
				lb := b.Field(8).(*array.ListBuilder)
				if rng.IntN(6) == 0 {
					lb.AppendNull()
				} else {
					lb.Append(true)
					for range rng.IntN(3) {
						lb.ValueBuilder().(*array.Float32Builder).Append(rng.Float32())
					}
				}
			}
		}
		out = append(out, b.NewRecordBatch())
		b.Release()
	}
	return schema, out
}

// writeReference is the snapshot writer as it was before row groups were encoded in
// parallel: pqarrow's FileWriter, WriteBuffered batch by batch, a new file every RowsPerFile
// rows. It returns each file's bytes.
func writeReference(t *testing.T, schema *arrow.Schema, batches []arrow.RecordBatch, opts WriteOptions) [][]byte {
	t.Helper()
	opts = opts.withDefaults()
	props := snapshotWriterProps(opts)
	var (
		files    [][]byte
		buf      *bytesSink
		w        *pqarrow.FileWriter
		fileRows int64
	)
	closeFile := func() {
		require.NoError(t, w.Close())
		files = append(files, buf.b)
		w, fileRows = nil, 0
	}
	for _, rec := range batches {
		for off := int64(0); off < rec.NumRows(); {
			if w == nil {
				buf = &bytesSink{}
				var err error
				w, err = pqarrow.NewFileWriter(schema, buf, props, snapshotArrowProps())
				require.NoError(t, err)
			}
			n := min(rec.NumRows()-off, opts.RowsPerFile-fileRows)
			part := rec.NewSlice(off, off+n)
			require.NoError(t, w.WriteBuffered(part))
			part.Release()
			off += n
			fileRows += n
			if fileRows == opts.RowsPerFile {
				closeFile()
			}
		}
	}
	if w != nil {
		closeFile()
	}
	return files
}

type bytesSink struct{ b []byte }

func (s *bytesSink) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

func writeStagedBatches(t *testing.T, schema *arrow.Schema, batches []arrow.RecordBatch, opts WriteOptions) [][]byte {
	t.Helper()
	i := 0
	next := func(context.Context) (arrow.RecordBatch, error) {
		if i == len(batches) {
			return nil, io.EOF
		}
		i++
		batches[i-1].Retain()
		return batches[i-1], nil
	}
	st, err := WriteStaged(t.Context(), t.TempDir(), schema, make([]ColumnInfo, schema.NumFields()), &Lineage{}, next, opts)
	require.NoError(t, err)
	var files [][]byte
	var rows int64
	for _, f := range st.Manifest.Files {
		b, err := os.ReadFile(filepath.Join(st.Dir, f.Path))
		require.NoError(t, err)
		require.Equal(t, f.Size, int64(len(b)))
		files = append(files, b)
		rows += f.Rows
	}
	require.Equal(t, st.Manifest.Rows, rows)
	return files
}

// The parallel encoder must give exactly the bytes the one-goroutine pqarrow writer gave,
// whatever the parallelism and however the batches fall across row groups and files: that
// is what keeps a rebuilt snapshot byte-identical.
func TestWriteStagedParallelIsByteIdentical(t *testing.T) {
	for _, tc := range []struct {
		name     string
		withList bool
		sizes    []int
		opts     WriteOptions
	}{
		{"one row group", false, []int{500}, WriteOptions{}},
		{"batches across row groups and files", false, []int{3, 1000, 2047, 1, 4096, 777, 2500}, WriteOptions{RowGroupRows: 1000, RowsPerFile: 3000}},
		{"file boundary on a batch boundary", false, []int{1000, 2000, 3000}, WriteOptions{RowGroupRows: 1000, RowsPerFile: 3000}},
		{"a list column: pqarrow's writer", true, []int{10, 1500, 700}, WriteOptions{RowGroupRows: 1000, RowsPerFile: 2000}},
		{"no rows", false, nil, WriteOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			schema, batches := snapshotTestBatches(t, tc.withList, tc.sizes...)
			defer func() {
				for _, b := range batches {
					b.Release()
				}
			}()
			want := writeReference(t, schema, batches, tc.opts)
			if len(tc.sizes) == 0 { // the reference writes no file; WriteStaged writes one empty file
				sink := &bytesSink{}
				w, err := pqarrow.NewFileWriter(schema, sink, snapshotWriterProps(tc.opts.withDefaults()), snapshotArrowProps())
				require.NoError(t, err)
				require.NoError(t, w.Close())
				want = [][]byte{sink.b}
			}
			for _, par := range []int{1, 2, 5} {
				opts := tc.opts
				opts.Parallelism = par
				got := writeStagedBatches(t, schema, batches, opts)
				require.Equal(t, len(want), len(got), "files, parallelism %d", par)
				for i := range want {
					require.True(t, string(want[i]) == string(got[i]), "file %d differs from the one-goroutine writer's at parallelism %d", i, par)
				}
			}
		})
	}
}

// A failing batch source stops the writer with its error, the staging directory removed.
func TestWriteStagedSourceErrorCleansUp(t *testing.T) {
	schema, batches := snapshotTestBatches(t, false, 100, 100, 100)
	defer func() {
		for _, b := range batches {
			b.Release()
		}
	}()
	boom := errors.New("boom")
	i := 0
	next := func(context.Context) (arrow.RecordBatch, error) {
		if i == 2 {
			return nil, boom
		}
		i++
		batches[i-1].Retain()
		return batches[i-1], nil
	}
	parent := t.TempDir()
	_, err := WriteStaged(t.Context(), parent, schema, make([]ColumnInfo, schema.NumFields()), &Lineage{}, next, WriteOptions{RowGroupRows: 64, Parallelism: 2})
	require.ErrorIs(t, err, boom)
	left, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Empty(t, left, "the staging directory is removed")
}

// A column with few distinct values keeps its dictionary; one whose dictionary would pass
// snapshotDictLimit (random doubles) switches its data pages to plain encoding, instead of
// hashing the whole row group into a dictionary as large as the column.
func TestWriteStagedDictionaryFallback(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "cat", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "x", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	rng := rand.New(rand.NewPCG(3, 4))
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	const n = 50_000
	for i := range n {
		b.Field(0).(*array.Int64Builder).Append(int64(i % 5))
		b.Field(1).(*array.Float64Builder).Append(rng.Float64())
	}
	rec := b.NewRecordBatch()
	b.Release()
	defer rec.Release()
	i := 0
	next := func(context.Context) (arrow.RecordBatch, error) {
		if i == 1 {
			return nil, io.EOF
		}
		i++
		rec.Retain()
		return rec, nil
	}
	st, err := WriteStaged(t.Context(), t.TempDir(), schema, make([]ColumnInfo, 2), &Lineage{}, next, WriteOptions{})
	require.NoError(t, err)
	pf, err := file.OpenParquetFile(filepath.Join(st.Dir, st.Manifest.Files[0].Path), false)
	require.NoError(t, err)
	defer pf.Close()
	require.Equal(t, 1, pf.NumRowGroups())
	dataPageEncodings := func(col int) map[string]bool {
		cc, err := pf.MetaData().RowGroup(0).ColumnChunk(col)
		require.NoError(t, err)
		out := map[string]bool{}
		for _, s := range cc.EncodingStats() {
			if s.PageType.String() == "DATA_PAGE" || s.PageType.String() == "DATA_PAGE_V2" {
				out[s.Encoding.String()] = true
			}
		}
		return out
	}
	require.Equal(t, map[string]bool{parquet.Encodings.RLEDict.String(): true}, dataPageEncodings(0), "a 5-value column stays dictionary-encoded")
	require.True(t, dataPageEncodings(1)[parquet.Encodings.Plain.String()], "random doubles fall back to plain: %v", dataPageEncodings(1))
}
