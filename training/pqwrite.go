package training

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"golang.org/x/sync/errgroup"
)

// groupWriter writes a snapshot file one row group at a time. Each call to writeGroup makes
// exactly one row group of the given batches' rows, in order.
type groupWriter interface {
	writeGroup(ctx context.Context, parts []arrow.RecordBatch) error
	Close() error // flushes the footer and closes the sink
}

// newGroupWriter returns the parallel writer when every column is flat, and pqarrow's own
// (one goroutine) writer otherwise. Both give the same bytes for the same batches: the
// parallel one makes the same calls into each column's encoder, only on several goroutines.
func newGroupWriter(schema *arrow.Schema, sink io.Writer, props *parquet.WriterProperties, arrowProps pqarrow.ArrowWriterProperties, par int) (groupWriter, error) {
	if par > 1 && flatSchema(schema) {
		return newParallelWriter(schema, sink, props, arrowProps, par)
	}
	w, err := pqarrow.NewFileWriter(schema, sink, props, arrowProps)
	if err != nil {
		return nil, err
	}
	return serialWriter{w}, nil
}

// serialWriter is pqarrow's FileWriter. Row groups are cut by WriteBuffered at the writer's
// maximum row group length, which every group the caller passes stays within.
type serialWriter struct{ w *pqarrow.FileWriter }

func (s serialWriter) writeGroup(_ context.Context, parts []arrow.RecordBatch) error {
	if err := s.w.NewBufferedRowGroupChecked(); err != nil {
		return err
	}
	for _, p := range parts {
		if err := s.w.WriteBuffered(p); err != nil {
			return err
		}
	}
	return nil
}

func (s serialWriter) Close() error { return s.w.Close() }

// parallelWriter encodes the columns of each row group on up to par goroutines into the row
// group's in-memory column buffers; closing the row group then writes the buffers to the
// sink in column order. The file's bytes do not depend on which goroutine encoded which
// column, or when: each column's encoder sees the same calls, in the same order, as under
// pqarrow's FileWriter.WriteBuffered.
type parallelWriter struct {
	w          *file.Writer
	schema     *arrow.Schema
	arrowProps pqarrow.ArrowWriterProperties
	par        int
}

func newParallelWriter(schema *arrow.Schema, sink io.Writer, props *parquet.WriterProperties, arrowProps pqarrow.ArrowWriterProperties, par int) (*parallelWriter, error) {
	pqschema, err := pqarrow.ToParquet(schema, props, arrowProps)
	if err != nil {
		return nil, err
	}
	// The file's key-value metadata as pqarrow.NewFileWriter writes it: the schema's own,
	// then the serialized Arrow schema (flat schemas need no renaming of list elements).
	meta := make(metadata.KeyValueMetadata, 0)
	md := schema.Metadata()
	for i := range md.Len() {
		if err := meta.Append(md.Keys()[i], md.Values()[i]); err != nil {
			return nil, err
		}
	}
	if err := meta.Append("ARROW:schema", base64.StdEncoding.EncodeToString(flight.SerializeSchema(schema, props.Allocator()))); err != nil {
		return nil, err
	}
	w, err := file.NewParquetWriterWithError(sink, pqschema.Root(), file.WithWriterProps(props), file.WithWriteMetadata(meta))
	if err != nil {
		return nil, err
	}
	return &parallelWriter{w: w, schema: schema, arrowProps: arrowProps, par: par}, nil
}

func (p *parallelWriter) writeGroup(ctx context.Context, parts []arrow.RecordBatch) error {
	rgw, err := p.w.AppendBufferedRowGroupChecked()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.par)
	for c, field := range p.schema.Fields() {
		g.Go(func() error {
			cw, err := rgw.Column(c)
			if err != nil {
				return err
			}
			// Each goroutine has its own write context: it holds scratch buffers.
			wctx := pqarrow.NewArrowWriteContext(gctx, &p.arrowProps)
			for _, part := range parts {
				if err := gctx.Err(); err != nil {
					return err
				}
				if err := writeFlatColumn(wctx, cw, part.Column(c), field.Nullable); err != nil {
					return fmt.Errorf("column %q: %w", field.Name, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return rgw.Close()
}

func (p *parallelWriter) Close() error { return p.w.Close() }

// writeFlatColumn writes a flat column's values with the definition levels pqarrow's level
// builder gives a top-level leaf: none for a required column; for an optional one 1 where a
// value is present and 0 where it is null, the leaf counting as nullable only when it has
// nulls.
func writeFlatColumn(ctx context.Context, cw file.ColumnChunkWriter, a arrow.Array, nullable bool) error {
	if !nullable {
		return pqarrow.WriteArrowToColumn(ctx, cw, a, nil, nil, false)
	}
	n := a.Len()
	def := make([]int16, n)
	nulls := a.NullN()
	switch {
	case nulls == 0:
		for i := range def {
			def[i] = 1
		}
	case nulls < n:
		bits, off := a.NullBitmapBytes(), a.Data().Offset()
		for i := range def {
			if bitutil.BitIsSet(bits, off+i) {
				def[i] = 1
			}
		}
	}
	return pqarrow.WriteArrowToColumn(ctx, cw, a, def, nil, nulls > 0)
}

// flatSchema reports whether every column is a top-level primitive the parallel writer
// handles: no lists, structs, maps, dictionaries or extension types.
func flatSchema(schema *arrow.Schema) bool {
	for _, f := range schema.Fields() {
		switch f.Type.ID() {
		case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64,
			arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
			arrow.FLOAT32, arrow.FLOAT64, arrow.STRING, arrow.LARGE_STRING,
			arrow.BINARY, arrow.LARGE_BINARY, arrow.TIMESTAMP, arrow.DATE32, arrow.DATE64:
		default:
			return false
		}
	}
	return true
}
