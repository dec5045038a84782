package pitjoin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// TestBenchDriver is the end-to-end benchmark behind docs/BENCHMARKS.md. It is skipped unless
// PITJOIN_DRIVER is set:
//
//	PITJOIN_DRIVER=gen  PITJOIN_DIR=/tmp/pit   writes entities.parquet and view_N.parquet
//	PITJOIN_DRIVER=join PITJOIN_DIR=/tmp/pit   reads them, joins, writes out.parquet, and
//	                                           prints rows/s and the peak RSS (VmHWM)
//
// with the sizes of benchSpecFromEnv. Run it as a test binary under /usr/bin/time -v so that
// nothing else lives in the process.
// TestBenchDriver is the end-to-end benchmark behind docs/BENCHMARKS.md, driven by
// PITJOIN_DRIVER:
//
//	PITJOIN_DRIVER=gen  PITJOIN_DIR=/tmp/pit   writes entities.parquet and view_N.parquet
//	PITJOIN_DRIVER=join PITJOIN_DIR=/tmp/pit   reads them, joins, writes out.parquet, and
//	                                           prints rows/s and the peak RSS (VmHWM)
//
// with the sizes of benchSpecFromEnv. Run it as a test binary under /usr/bin/time -v so that
// nothing else lives in the process. Without PITJOIN_DRIVER (the test suite) it runs both steps
// on small data, so the driver keeps working.
func TestBenchDriver(t *testing.T) {
	mode := os.Getenv("PITJOIN_DRIVER")
	if mode == "" {
		dir := t.TempDir()
		s := benchSpec{featureRows: 20_000, entities: 2_000, entityRows: 4_000, views: 2, features: 3}
		benchDriverGen(t, dir, s)
		if rows := benchDriverJoin(t, dir, s); rows != int64(s.entityRows) {
			t.Fatalf("joined %d rows, want one per entity row (%d)", rows, s.entityRows)
		}
		return
	}
	dir := os.Getenv("PITJOIN_DIR")
	if dir == "" {
		t.Fatal("PITJOIN_DIR is not set")
	}
	s := benchSpecFromEnv()
	switch mode {
	case "gen":
		benchDriverGen(t, dir, s)
	case "join":
		benchDriverJoin(t, dir, s)
	default:
		t.Fatalf("PITJOIN_DRIVER=%q: want gen or join", mode)
	}
}

// benchDriverGen writes the benchmark's entity and feature Parquet files into dir.
func benchDriverGen(t *testing.T, dir string, s benchSpec) {
	must(t, os.MkdirAll(dir, 0o755))
	mem := memory.DefaultAllocator
	schema, ent := genEntityBatches(mem, s)
	must(t, writeParquet(filepath.Join(dir, "entities.parquet"), schema, ent))
	for v := range s.views {
		must(t, genParquet(filepath.Join(dir, fmt.Sprintf("view_%d.parquet", v)), mem, uint64(v+10), s))
	}
}

// benchDriverJoin joins the files benchDriverGen wrote, writes out.parquet, prints the figures
// and returns the rows joined.
func benchDriverJoin(t *testing.T, dir string, s benchSpec) int64 {
	ctx := context.Background()
	mem := memory.DefaultAllocator
	start := time.Now()
	ent, closeEnt, err := readParquet(ctx, filepath.Join(dir, "entities.parquet"), mem)
	must(t, err)
	defer closeEnt()
	var views []View
	for v := range s.views {
		path := filepath.Join(dir, fmt.Sprintf("view_%d.parquet", v))
		var feats []string
		for f := range s.features {
			feats = append(feats, fmt.Sprintf("f%d", f))
		}
		var closers []func()
		defer func() {
			for _, c := range closers {
				c()
			}
		}()
		views = append(views, View{
			Name: fmt.Sprintf("v%d", v), JoinKeys: []string{"user_id"}, Features: feats,
			Open: func(ctx context.Context, er EventRange) (array.RecordReader, error) {
				r, c, err := readParquet(ctx, path, mem)
				closers = append(closers, c)
				return r, err
			},
		})
	}
	opts := Options{MemoryBudget: s.budget, FullFeatureNames: s.views > 1}
	res, err := Join(ctx, ent, views, opts)
	must(t, err)
	joined := time.Since(start)
	out, err := os.Create(filepath.Join(dir, "out.parquet"))
	must(t, err)
	w, err := pqarrow.NewFileWriter(res.Schema(), out, parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false)), pqarrow.DefaultWriterProps())
	must(t, err)
	rows := int64(0)
	for res.Next() {
		rows += res.RecordBatch().NumRows()
		must(t, w.Write(res.RecordBatch()))
	}
	must(t, res.Err())
	must(t, w.Close())
	total := time.Since(start)
	st := res.Stats()
	res.Release()
	fmt.Printf("PITJOIN entity_rows=%d views=%d feature_rows_per_view=%d budget=%d\n", rows, s.views, s.featureRows, opts.MemoryBudget)
	fmt.Printf("PITJOIN read+join=%.2fs total(incl. parquet write)=%.2fs rows/s(total)=%.0f rows/s(read+join)=%.0f\n",
		joined.Seconds(), total.Seconds(), float64(rows)/total.Seconds(), float64(rows)/joined.Seconds())
	fmt.Printf("PITJOIN stats=%+v %s\n", st, vmHWM())
	return rows
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			return strings.Join(strings.Fields(l), " ")
		}
	}
	return ""
}

func writeParquet(path string, schema *arrow.Schema, recs []arrow.RecordBatch) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false), parquet.WithMaxRowGroupLength(1<<20))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := w.Write(r); err != nil {
			return err
		}
		r.Release()
	}
	return w.Close()
}

func genParquet(path string, mem memory.Allocator, seed uint64, s benchSpec) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var w *pqarrow.FileWriter
	var werr error
	schema := genFeatures(mem, seed, s, func(rec arrow.RecordBatch) error {
		defer rec.Release()
		if w == nil {
			props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false), parquet.WithMaxRowGroupLength(1<<20))
			if w, werr = pqarrow.NewFileWriter(rec.Schema(), f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema())); werr != nil {
				return werr
			}
		}
		if werr = w.Write(rec); werr != nil {
			return werr
		}
		return nil
	})
	if werr != nil {
		return werr
	}
	if w == nil {
		return fmt.Errorf("no rows generated for %s", schema)
	}
	return w.Close()
}

func readParquet(ctx context.Context, path string, mem memory.Allocator) (array.RecordReader, func(), error) {
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, func() {}, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10, Parallel: true}, mem)
	if err != nil {
		pf.Close()
		return nil, func() {}, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		pf.Close()
		return nil, func() {}, err
	}
	return rr, func() { pf.Close() }, nil
}
