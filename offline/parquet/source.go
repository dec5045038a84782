// Package parquet is the Parquet source: it reads a feature view's rows from one Parquet file,
// every Parquet file under a directory, or the files matching a glob, streaming them in
// batches with only the needed columns and skipping row groups whose timestamp statistics lie
// outside the requested range.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// DefaultBatchSize is the number of rows per batch read when Options.BatchSize is zero.
const DefaultBatchSize = 64 * 1024

// Options tune a Parquet source. The zero value is valid.
type Options struct {
	// BaseDir resolves a relative path; empty means the working directory.
	BaseDir string
	// BatchSize is the most rows per batch; 0 means DefaultBatchSize.
	BatchSize int64
	// Allocator allocates the batches; nil means memory.DefaultAllocator.
	Allocator memory.Allocator
}

// Source reads Parquet files. It is safe for concurrent use.
type Source struct {
	name    string
	pattern string
	fields  offline.Fields
	opts    Options
}

var _ offline.Source = (*Source)(nil)

// New returns the source for a definition with a parquet block.
func New(src *definitions.Source, opts Options) (*Source, error) {
	if src == nil || src.Parquet == nil || src.Parquet.Path == "" {
		return nil, fmt.Errorf("parquet source: %w: no parquet path", offline.ErrInvalidSource)
	}
	if src.TimestampField == "" {
		return nil, fmt.Errorf("parquet source %q: %w: no timestamp_field", src.Name, offline.ErrInvalidSource)
	}
	p := src.Parquet.Path
	if !filepath.IsAbs(p) && opts.BaseDir != "" {
		p = filepath.Join(opts.BaseDir, p)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Allocator == nil {
		opts.Allocator = memory.DefaultAllocator
	}
	return &Source{
		name:    src.Name,
		pattern: p,
		fields:  offline.Fields{Timestamp: src.TimestampField, Created: src.CreatedTimestampField},
		opts:    opts,
	}, nil
}

func (s *Source) String() string { return fmt.Sprintf("parquet source %q", s.name) }

// Files lists the Parquet files the source reads, sorted: the path itself if it is a file,
// every *.parquet file under it (recursively, skipping names starting with "." or "_") if it
// is a directory, or the files matching it as a glob.
func (s *Source) Files() ([]string, error) {
	fi, err := os.Stat(s.pattern)
	switch {
	case err == nil && !fi.IsDir():
		return []string{s.pattern}, nil
	case err == nil:
		var files []string
		err := filepath.WalkDir(s.pattern, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			base := d.Name()
			if path != s.pattern && (strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.IsDir() && strings.HasSuffix(base, ".parquet") {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("%s: list %s: %w", s, s.pattern, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: %w: no .parquet files under %s", s, offline.ErrInvalidSource, s.pattern)
		}
		return files, nil
	}
	files, gerr := filepath.Glob(s.pattern)
	if gerr != nil {
		return nil, fmt.Errorf("%s: %w: bad path pattern %q: %v", s, offline.ErrInvalidSource, s.pattern, gerr)
	}
	var out []string
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && !fi.IsDir() {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w: no files match %s", s, offline.ErrInvalidSource, s.pattern)
	}
	slices.Sort(out)
	return out, nil
}

// Read streams the rows of every file in turn; each file is checked against vs when the
// stream reaches it. Only the needed columns and the row groups that may hold rows in r are
// read, BatchSize rows at a time.
func (s *Source) Read(ctx context.Context, vs offline.ViewSchema, r offline.Range) (offline.Stream, error) {
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	if err := vs.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", s, err)
	}
	files, err := s.Files()
	if err != nil {
		return nil, err
	}
	st := &stream{src: s, vs: vs, r: r, files: files}
	// Open the first file now so a schema error surfaces from Read.
	if err := st.openNext(ctx); err != nil {
		st.close()
		return nil, err
	}
	return offline.NewFuncStream(vs.Arrow(), st.next, st.close), nil
}

type stream struct {
	src   *Source
	vs    offline.ViewSchema
	r     offline.Range
	files []string

	cur    *openFile
	curIdx int
}

type openFile struct {
	path   string
	pf     *file.Reader
	rr     pqarrow.RecordReader // nil when every row group was pruned
	mapper *offline.Mapper
}

func (f *openFile) close() error {
	if f.rr != nil {
		f.rr.Release()
	}
	return f.pf.Close()
}

func (st *stream) next(ctx context.Context) (arrow.RecordBatch, error) {
	for {
		if st.cur == nil {
			if st.curIdx >= len(st.files) {
				return nil, io.EOF
			}
			if err := st.openNext(ctx); err != nil {
				return nil, err
			}
		}
		f := st.cur
		if f.rr != nil && f.rr.Next() {
			out, err := f.mapper.Map(ctx, f.rr.RecordBatch())
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f.path, err)
			}
			return out, nil
		}
		if f.rr != nil {
			if err := f.rr.Err(); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: read %s: %w", st.src, f.path, err)
			}
		}
		st.cur = nil
		if err := f.close(); err != nil {
			return nil, fmt.Errorf("%s: close %s: %w", st.src, f.path, err)
		}
	}
}

func (st *stream) close() error {
	if st.cur == nil {
		return nil
	}
	err := st.cur.close()
	st.cur = nil
	return err
}

// openNext opens files[curIdx] and advances curIdx.
func (st *stream) openNext(ctx context.Context) (err error) {
	path := st.files[st.curIdx]
	st.curIdx++
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		return fmt.Errorf("%s: open %s: %w", st.src, path, err)
	}
	f := &openFile{path: path, pf: pf}
	defer func() {
		if err != nil {
			_ = f.close()
		}
	}()
	props := pqarrow.ArrowReadProperties{BatchSize: st.src.opts.BatchSize}
	fr, err := pqarrow.NewFileReader(pf, props, st.src.opts.Allocator)
	if err != nil {
		return fmt.Errorf("%s: read %s: %w", st.src, path, err)
	}
	schema, err := fr.Schema()
	if err != nil {
		return fmt.Errorf("%s: read schema of %s: %w", st.src, path, err)
	}
	name := fmt.Sprintf("%s file %s", st.src, path)
	f.mapper, err = offline.NewMapper(name, schema, st.vs, st.src.fields, st.r, st.src.opts.Allocator)
	if err != nil {
		return err
	}
	var fieldIdx []int
	for _, c := range f.mapper.SourceColumns() {
		fieldIdx = append(fieldIdx, schema.FieldIndices(c)[0])
	}
	leaves := leafColumns(pf, fieldIdx)
	groups := st.rowGroups(pf, fr, schema)
	if len(groups) > 0 {
		f.rr, err = fr.GetRecordReader(ctx, leaves, groups)
		if err != nil {
			return fmt.Errorf("%s: read: %w", name, err)
		}
	}
	st.cur = f
	return nil
}

// leafColumns returns the Parquet leaf column indices of top-level fields, in file order:
// what GetRecordReader and the column chunk statistics are indexed by. They differ from the
// field indices once a nested column (a struct has a leaf per member) comes first.
// (pqarrow's SchemaManifest.GetFieldIndices maps the other way, leaves to fields.)
func leafColumns(pf *file.Reader, fields []int) []int {
	want := make(map[int]bool, len(fields))
	for _, f := range fields {
		want[f] = true
	}
	sch := pf.MetaData().Schema
	var leaves []int
	for i := range sch.NumColumns() {
		if want[sch.Root().FieldIndexByField(sch.ColumnRoot(i))] {
			leaves = append(leaves, i)
		}
	}
	return leaves
}

// rowGroups lists the row groups whose timestamp statistics overlap the range; a row group
// without usable statistics is always read.
func (st *stream) rowGroups(pf *file.Reader, fr *pqarrow.FileReader, schema *arrow.Schema) []int {
	n := pf.NumRowGroups()
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	idx := schema.FieldIndices(st.src.fields.Timestamp)
	if len(idx) == 0 {
		return all
	}
	tsType, ok := schema.Field(idx[0]).Type.(*arrow.TimestampType)
	if !ok {
		return all
	}
	leaves := leafColumns(pf, idx[:1])
	if len(leaves) != 1 {
		return all
	}
	start, end := st.r.Micros()
	var keep []int
	for _, g := range all {
		if overlaps(pf.MetaData().RowGroup(g), leaves[0], tsType.Unit, start, end) {
			keep = append(keep, g)
		}
	}
	return keep
}

func overlaps(rg *metadata.RowGroupMetaData, leaf int, unit arrow.TimeUnit, start, end int64) bool {
	cc, err := rg.ColumnChunk(leaf)
	if err != nil {
		return true
	}
	if set, err := cc.StatsSet(); err != nil || !set {
		return true
	}
	stats, err := cc.Statistics()
	if err != nil || stats == nil || !stats.HasMinMax() {
		return true
	}
	is, ok := stats.(*metadata.Int64Statistics)
	if !ok {
		return true // INT96 timestamps: no usable order
	}
	lo, okLo := toMicros(is.Min(), unit)
	hi, okHi := toMicros(is.Max(), unit)
	if !okLo || !okHi {
		return true
	}
	return hi >= start && lo < end
}

// toMicros converts a timestamp in unit to microseconds, flooring; ok is false on overflow.
func toMicros(v int64, unit arrow.TimeUnit) (us int64, ok bool) {
	const maxSec = (1<<63 - 1) / 1_000_000
	switch unit {
	case arrow.Second:
		if v > maxSec || v < -maxSec {
			return 0, false
		}
		return v * 1_000_000, true
	case arrow.Millisecond:
		if v > maxSec*1000 || v < -maxSec*1000 {
			return 0, false
		}
		return v * 1_000, true
	case arrow.Nanosecond:
		q := v / 1_000
		if v%1_000 < 0 {
			q--
		}
		return q, true
	}
	return v, true
}
