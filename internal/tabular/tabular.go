// Package tabular reads the tabular files users hand Quiver — pushed rows (`quiver push`) and
// the entity rows of `quiver dataset create` — Parquet or CSV by their extension, as Arrow
// record batches. What the rows must hold is the caller's business.
package tabular

import (
	"context"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// Format is a file format.
type Format string

// The formats.
const (
	Parquet Format = "parquet"
	CSV     Format = "csv"
)

// ErrNoRows is returned for a CSV file with no rows: its column types are learnt from its
// first rows, so there is no schema to read without one.
var ErrNoRows = errors.New("no rows")

// FormatOf is the format of path by its extension: .parquet or .pq, or .csv (any case).
func FormatOf(path string) (Format, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return Parquet, nil
	case ".csv":
		return CSV, nil
	}
	return "", errors.New("unknown format; use a .parquet or .csv file")
}

// Options tune a reader. The zero Options are valid.
type Options struct {
	// CSVTypes are the Arrow types of the named CSV columns; the other columns' types are
	// inferred from the first rows. CSV timestamps are read as RFC 3339; an empty field is null.
	CSVTypes map[string]arrow.DataType
	// BatchSize is the most rows a batch holds. Default 64Ki.
	BatchSize int
	// Parallel decodes a Parquet batch's columns in parallel.
	Parallel bool
	// Allocator allocates the batches. Default memory.DefaultAllocator.
	Allocator memory.Allocator
}

// File is what a reader reads: an *os.File, for one.
type File interface {
	io.Reader
	io.ReaderAt
	io.Seeker
}

// Open opens the file at path and returns a reader of its rows, in its format by extension.
// Releasing the reader closes the file. Errors do not repeat the path.
func Open(ctx context.Context, path string, opts Options) (array.RecordReader, error) {
	format, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the caller names the path
		}
		return nil, err
	}
	rr, err := NewReader(ctx, f, format, opts)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &closing{RecordReader: rr, close: f.Close}, nil
}

// NewReader returns a reader of the rows of f, in format. The caller closes f after releasing
// the reader. Its Schema is known at once (a CSV file's first chunk is read ahead), and its Err
// is nil at the end of the rows.
func NewReader(ctx context.Context, f File, format Format, opts Options) (array.RecordReader, error) {
	mem := opts.Allocator
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = 64 << 10
	}
	switch format {
	case Parquet:
		pf, err := file.NewParquetReader(f)
		if err != nil {
			return nil, fmt.Errorf("not Parquet: %w", err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: int64(batch), Parallel: opts.Parallel}, mem)
		if err != nil {
			pf.Close()
			return nil, err
		}
		rr, err := fr.GetRecordReader(ctx, nil, nil)
		if err != nil {
			pf.Close()
			return nil, err
		}
		return &closing{RecordReader: rr, close: pf.Close}, nil
	case CSV:
		// The inferring reader learns its schema from the first row, and fails on a file that
		// has none (arrow-go panics): look for one first, without moving f.
		peek := stdcsv.NewReader(io.NewSectionReader(f, 0, math.MaxInt64))
		if _, err := peek.Read(); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if _, err := peek.Read(); errors.Is(err, io.EOF) {
			return nil, ErrNoRows
		}
		r := csv.NewInferringReader(f, csv.WithHeader(true), csv.WithColumnTypes(opts.CSVTypes),
			csv.WithChunk(batch), csv.WithNullReader(true, ""), csv.WithAllocator(mem))
		c := &csvReader{RecordReader: r}
		// The inferring reader knows its schema only after reading the first chunk: read it
		// now, and hand it out again on the first Next.
		if !r.Next() {
			err := c.Err()
			c.Release()
			if err == nil {
				err = ErrNoRows
			}
			return nil, err
		}
		c.first = r.RecordBatch()
		c.first.Retain()
		return c, nil
	}
	return nil, fmt.Errorf("unknown format %q; use parquet or csv", format)
}

// closing runs close once, when the reader is released.
type closing struct {
	array.RecordReader
	close func() error
	done  bool
}

func (r *closing) Release() {
	r.RecordReader.Release()
	if !r.done {
		r.done = true
		_ = r.close()
	}
}

// csvReader hands out the batch read ahead first, and ends without error at the end of the
// file.
type csvReader struct {
	array.RecordReader
	first arrow.RecordBatch // read ahead to learn the schema; returned by the first Next
	cur   arrow.RecordBatch
}

func (r *csvReader) Next() bool {
	if r.cur != nil && r.cur == r.first {
		r.first.Release()
		r.first = nil
	}
	if r.first != nil {
		r.cur = r.first
		return true
	}
	if !r.RecordReader.Next() {
		r.cur = nil
		return false
	}
	r.cur = r.RecordReader.RecordBatch()
	return true
}

func (r *csvReader) RecordBatch() arrow.RecordBatch { return r.cur }

// Record is RecordBatch.
//
// Deprecated: use RecordBatch.
func (r *csvReader) Record() arrow.RecordBatch { return r.cur }

func (r *csvReader) Err() error {
	if err := r.RecordReader.Err(); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (r *csvReader) Release() {
	if r.first != nil {
		r.first.Release()
		r.first = nil
	}
	r.RecordReader.Release()
}
