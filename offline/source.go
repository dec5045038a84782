package offline

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Source streams a feature view's rows out of the place they live.
//
// A Source is built from a definitions.Source (see offline/sources) and is safe for
// concurrent use; each Read is independent.
type Source interface {
	// Read streams the rows whose timestamp field lies in r, as batches in the canonical
	// schema of vs (vs.Arrow()): the join keys, EventTS (the timestamp field), CreatedTS (the
	// created timestamp field, or null when the source declares none) and the features, each
	// converted to its declared type. The time filter is pushed down to the engine where it
	// can be; rows with a null timestamp are never returned. A missing column or one whose
	// type cannot be read as declared fails Read (or, for engines that only learn the schema
	// while reading, the first Next) with an error naming the column, its type and the
	// declared type. Rows come in no particular order.
	Read(ctx context.Context, vs ViewSchema, r Range) (Stream, error)
	// String names the source for messages, e.g. `parquet source "user_activity"`.
	String() string
}

// Stream is a pull iterator over record batches that all have Schema(). It holds at most a
// few batches in memory at a time, whatever the size of the data behind it.
//
// A Stream is used by one goroutine. Close must always be called, also after an error or
// before the end; it is safe to call more than once.
type Stream interface {
	Schema() *arrow.Schema
	// Next returns the next non-empty batch, which the caller owns and must Release. It
	// returns io.EOF after the last batch.
	Next(ctx context.Context) (arrow.RecordBatch, error)
	Close() error
}

// SnapshotStream is implemented by streams read from a versioned table (Iceberg): SnapshotID
// is the table snapshot that was read, for lineage. It is 0 for a table with no snapshot yet.
type SnapshotStream interface {
	Stream
	SnapshotID() int64
}

// ReadAll drains a stream into a table, for tests and small results; it closes the stream.
func ReadAll(ctx context.Context, s Stream) (arrow.Table, error) {
	defer s.Close()
	var recs []arrow.RecordBatch
	defer func() {
		for _, r := range recs {
			r.Release()
		}
	}()
	for {
		rec, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	return array.NewTableFromRecords(s.Schema(), recs), nil
}

// SliceStream is a Stream over batches already in memory. It takes ownership of the batches.
type SliceStream struct {
	schema *arrow.Schema
	recs   []arrow.RecordBatch
}

// NewSliceStream returns a stream over recs, which must all have schema; empty batches are
// skipped.
func NewSliceStream(schema *arrow.Schema, recs ...arrow.RecordBatch) *SliceStream {
	return &SliceStream{schema: schema, recs: recs}
}

func (s *SliceStream) Schema() *arrow.Schema { return s.schema }

func (s *SliceStream) Next(ctx context.Context) (arrow.RecordBatch, error) {
	for len(s.recs) > 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec := s.recs[0]
		s.recs = s.recs[1:]
		if rec.NumRows() > 0 {
			return rec, nil
		}
		rec.Release()
	}
	return nil, io.EOF
}

func (s *SliceStream) Close() error {
	for _, r := range s.recs {
		r.Release()
	}
	s.recs = nil
	return nil
}

// FuncStream adapts a next and a close function to a Stream. It skips empty batches and makes
// Close idempotent.
type FuncStream struct {
	schema *arrow.Schema
	next   func(ctx context.Context) (arrow.RecordBatch, error)
	close  func() error
	closed bool
	done   bool
}

// NewFuncStream returns a stream calling next until it returns io.EOF or an error; close
// (which may be nil) runs once on Close.
func NewFuncStream(schema *arrow.Schema, next func(ctx context.Context) (arrow.RecordBatch, error), close func() error) *FuncStream {
	return &FuncStream{schema: schema, next: next, close: close}
}

func (s *FuncStream) Schema() *arrow.Schema { return s.schema }

func (s *FuncStream) Next(ctx context.Context) (arrow.RecordBatch, error) {
	if s.closed || s.done {
		return nil, io.EOF
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, err := s.next(ctx)
		if errors.Is(err, io.EOF) {
			s.done = true
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if rec == nil {
			return nil, fmt.Errorf("stream: nil batch without error")
		}
		if rec.NumRows() > 0 {
			return rec, nil
		}
		rec.Release()
	}
}

func (s *FuncStream) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.close != nil {
		return s.close()
	}
	return nil
}
