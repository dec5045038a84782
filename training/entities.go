package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/csv"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/offline"
)

// EventTimestampColumn is the entity rows' timestamp column.
const EventTimestampColumn = "event_timestamp"

// EntityFile is an entity-rows file: Parquet or CSV, with the join keys of the service's
// views, an event_timestamp column and any other columns (labels), which pass through.
type EntityFile struct {
	Path string
	// Keys are the join keys the service needs, with their declared types.
	Keys []definitions.Field
	// RejectNaiveTimestamps refuses a timestamp column without a time zone instead of reading
	// it as UTC.
	RejectNaiveTimestamps bool
}

// entityFormat picks the reader by extension.
func entityFormat(path string) (string, error) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".parquet", ".pq":
		return "parquet", nil
	case ".csv":
		return "csv", nil
	}
	return "", fmt.Errorf("%w: entity file %s: unknown format; use a .parquet or .csv file", ErrInvalidInput, path)
}

// Open returns a reader over the entity rows, checking that the join keys and the timestamp
// are there with usable types and that no column name repeats. The returned schema is the
// file's, except that join keys are read with their declared types (integer keys of another
// width are converted when every value fits; the first that does not is an error) and
// timestamps as microseconds UTC (a timestamp without a time zone is read as UTC, or refused
// with RejectNaiveTimestamps).
func (e EntityFile) Open(ctx context.Context) (array.RecordReader, error) {
	format, err := entityFormat(e.Path)
	if err != nil {
		return nil, err
	}
	var rr array.RecordReader
	switch format {
	case "parquet":
		rr, err = e.openParquet(ctx, nil)
	case "csv":
		rr, err = e.openCSV()
	}
	if err != nil {
		return nil, err
	}
	if dups := duplicateColumns(rr.Schema()); len(dups) > 0 {
		rr.Release()
		return nil, duplicatesError(e.Path, dups)
	}
	convs, schema, err := e.normalizePlan(rr.Schema())
	if err != nil {
		rr.Release()
		return nil, err
	}
	if err := e.check(schema); err != nil {
		rr.Release()
		return nil, err
	}
	if convs != nil {
		return newNormalizingReader(rr, schema, convs), nil
	}
	return rr, nil
}

// check reports missing or mistyped key and timestamp columns.
func (e EntityFile) check(schema *arrow.Schema) error {
	var problems []string
	for _, k := range e.Keys {
		idx := schema.FieldIndices(k.Name)
		if len(idx) == 0 {
			problems = append(problems, fmt.Sprintf("join key column %q is missing", k.Name))
			continue
		}
		got, ok := offline.TypeFromArrow(schema.Field(idx[0]).Type)
		if !ok || got != k.Type {
			problems = append(problems, fmt.Sprintf("join key column %q is %s, want %s", k.Name, schema.Field(idx[0]).Type, k.Type))
		}
	}
	idx := schema.FieldIndices(EventTimestampColumn)
	if len(idx) == 0 {
		problems = append(problems, fmt.Sprintf("timestamp column %q is missing", EventTimestampColumn))
	} else if schema.Field(idx[0]).Type.ID() != arrow.TIMESTAMP {
		problems = append(problems, fmt.Sprintf("column %q is %s, want a timestamp", EventTimestampColumn, schema.Field(idx[0]).Type))
	}
	if len(problems) > 0 {
		var names []string
		for _, f := range schema.Fields() {
			names = append(names, f.Name)
		}
		return fmt.Errorf("%w: entity file %s: %s (its columns: %s)", ErrInvalidInput, e.Path, strings.Join(problems, "; "), strings.Join(names, ", "))
	}
	return nil
}

func (e EntityFile) openParquet(ctx context.Context, columns []string) (array.RecordReader, error) {
	f, err := os.Open(e.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: entity file: %w", ErrInvalidInput, err)
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: entity file %s is not Parquet: %w", ErrInvalidInput, e.Path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 64 << 10, Parallel: true}, memory.DefaultAllocator)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%w: entity file %s: %w", ErrInvalidInput, e.Path, err)
	}
	var idx []int
	if columns != nil {
		schema, err := fr.Schema()
		if err != nil {
			pf.Close()
			return nil, err
		}
		for _, c := range columns {
			fi := schema.FieldIndices(c)
			if len(fi) == 0 {
				pf.Close()
				return nil, fmt.Errorf("%w: entity file %s has no column %q", ErrInvalidInput, e.Path, c)
			}
			idx = append(idx, fr.Manifest.Fields[fi[0]].ColIndex)
		}
	}
	rr, err := fr.GetRecordReader(ctx, idx, nil)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("%w: entity file %s: %w", ErrInvalidInput, e.Path, err)
	}
	return &closingReader{RecordReader: rr, close: pf.Close}, nil
}

func (e EntityFile) openCSV() (array.RecordReader, error) {
	f, err := os.Open(e.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: entity file: %w", ErrInvalidInput, err)
	}
	types := map[string]arrow.DataType{EventTimestampColumn: offline.TimestampType}
	for _, k := range e.Keys {
		t, err := offline.ArrowType(k.Type)
		if err != nil {
			f.Close()
			return nil, err
		}
		if k.Type == (definitions.Type{Elem: definitions.Int32}) {
			// Read wide and narrow while normalizing, so that a value that does not fit
			// is reported by name, row and value.
			t = arrow.PrimitiveTypes.Int64
		}
		types[k.Name] = t
	}
	r := csv.NewInferringReader(f,
		csv.WithHeader(true),
		csv.WithColumnTypes(types),
		csv.WithChunk(64<<10),
		csv.WithNullReader(true, ""),
	)
	cr := &csvReader{RecordReader: r, file: f, path: e.Path}
	// The inferring reader knows its schema only after reading the first chunk: read it now,
	// and hand it out again on the first Next.
	if !r.Next() {
		err := cr.Err()
		cr.Release()
		if err == nil {
			err = fmt.Errorf("%w: entity file %s has no rows", ErrInvalidInput, e.Path)
		}
		return nil, err
	}
	cr.first = r.RecordBatch()
	cr.first.Retain()
	return cr, nil
}

type closingReader struct {
	array.RecordReader
	close func() error
	done  bool
}

func (r *closingReader) Release() {
	r.RecordReader.Release()
	if !r.done {
		r.done = true
		_ = r.close()
	}
}

// csvReader closes the file and names the file in parse errors.
type csvReader struct {
	array.RecordReader
	file  *os.File
	path  string
	done  bool
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
	err := r.RecordReader.Err()
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	return fmt.Errorf("%w: entity file %s: %w", ErrInvalidInput, r.path, err)
}

func (r *csvReader) Release() {
	if r.first != nil {
		r.first.Release()
		r.first = nil
	}
	r.RecordReader.Release()
	if !r.done {
		r.done = true
		r.file.Close()
	}
}
