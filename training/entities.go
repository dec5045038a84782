package training

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/quiverfs/quiver/definitions"
	"github.com/quiverfs/quiver/internal/tabular"
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

// Open returns a reader over the entity rows, checking that the join keys and the timestamp
// are there with usable types and that no column name repeats. The returned schema is the
// file's, except that join keys are read with their declared types (integer keys of another
// width are converted when every value fits; the first that does not is an error) and
// timestamps as microseconds UTC (a timestamp without a time zone is read as UTC, or refused
// with RejectNaiveTimestamps).
func (e EntityFile) Open(ctx context.Context) (array.RecordReader, error) {
	format, err := tabular.FormatOf(e.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: entity file %s: %w", ErrInvalidInput, e.Path, err)
	}
	opts := tabular.Options{Parallel: true}
	if format == tabular.CSV {
		if opts.CSVTypes, err = e.csvTypes(); err != nil {
			return nil, err
		}
	}
	src, err := tabular.Open(ctx, e.Path, opts)
	if errors.Is(err, tabular.ErrNoRows) {
		return nil, fmt.Errorf("%w: entity file %s has no rows", ErrInvalidInput, e.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: entity file %s: %w", ErrInvalidInput, e.Path, err)
	}
	rr := array.RecordReader(&namedReader{RecordReader: src, path: e.Path})
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

// csvTypes are the Arrow types of a CSV entity file's key and timestamp columns.
func (e EntityFile) csvTypes() (map[string]arrow.DataType, error) {
	types := map[string]arrow.DataType{EventTimestampColumn: offline.TimestampType}
	for _, k := range e.Keys {
		t, err := offline.ArrowType(k.Type)
		if err != nil {
			return nil, err
		}
		if k.Type == (definitions.Type{Elem: definitions.Int32}) {
			// Read wide and narrow while normalizing, so that a value that does not fit
			// is reported by name, row and value.
			t = arrow.PrimitiveTypes.Int64
		}
		types[k.Name] = t
	}
	return types, nil
}

// namedReader names the entity file in read errors.
type namedReader struct {
	array.RecordReader
	path string
}

func (r *namedReader) Err() error {
	if err := r.RecordReader.Err(); err != nil {
		return fmt.Errorf("%w: entity file %s: %w", ErrInvalidInput, r.path, err)
	}
	return nil
}
